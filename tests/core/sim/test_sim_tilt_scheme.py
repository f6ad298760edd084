from tomoforge.core.sim.tilt_scheme import bidirectional_tilts, dose_symmetric_tilts, parse_custom_tilts


def test_dose_symmetric_default_is_41_views_alternating():
    t = dose_symmetric_tilts(3.0, 60.0)
    assert len(t) == 41
    assert t[:5] == [0.0, 3.0, -3.0, 6.0, -6.0]
    assert sorted(t) == [-60.0 + 3 * i for i in range(41)]


def test_dose_symmetric_groups_and_pretilt():
    t = dose_symmetric_tilts(3.0, 9.0, group=2, start_deg=10.0)
    assert t == [10.0, 13.0, 16.0, 7.0, 4.0, 19.0, 1.0]


def test_bidirectional_goes_up_then_down():
    t = bidirectional_tilts(10.0, 30.0, start_deg=-10.0)
    assert t == [-10.0, 0.0, 10.0, 20.0, 30.0, -20.0, -30.0]


def test_custom():
    assert parse_custom_tilts("0, 5;-5") == [0.0, 5.0, -5.0]
