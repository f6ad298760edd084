"""The simulated session on disk: counts, drift, bytes, mdoc and truth schema."""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import mrcfile
import numpy as np
import pytest
import torch

from tomoforge.errors import ParamError, ParseError
from tomoforge.io.sim_session import load_truth, make_config, session_path, simulate_case
from tomoforge.io.tiff import read_tiff_movie


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return simulate_case("tiny", tmp_path_factory.mktemp("tiny"), seed=0)


@pytest.fixture(scope="module")
def drifting(tmp_path_factory) -> Path:
    """A few high-dose views with a large drift and local motion off, for measuring frame shifts."""
    return simulate_case("tiny", tmp_path_factory.mktemp("drift"), seed=4,
                         overrides={"tilt_scheme": "custom", "custom_tilts_deg": "0,20,-20,40",
                                    "drift_total_px": "6", "dose_per_tilt_e_per_a2": "12",
                                    "frames_per_movie": "5", "hot_pixels_per_mpx_frame": "0"})


def _gain(truth_path: Path) -> np.ndarray:
    t = load_truth(truth_path)
    return mrcfile.read(session_path(truth_path, t.gain_reference)).astype(np.float64)


def test_truth_files_exist_and_volumes_carry_the_pixel_size(tiny):
    t = load_truth(tiny)
    assert t.case == "tiny" and t.seed == 0
    ts = t.tilt_series[0]
    assert len(ts.views) == 21
    assert [v.acquisition_order for v in ts.views] == list(range(21))
    with mrcfile.open(session_path(tiny, ts.volume.path)) as m:
        assert m.data.shape == tuple(ts.volume.shape_zyx)
        assert float(m.voxel_size.x) == pytest.approx(ts.volume.voxel_size_a, rel=1e-5)
        assert m.data.max() > 1.0  # rings and beads are in it
    for v in ts.views:
        assert session_path(tiny, v.movie).is_file()
    assert load_truth(tiny.parent.parent).case == "tiny"  # the session folder works too
    # nominal vs true geometry really differ, as the brief asks
    acq = ts.acquisition
    assert 0.2 - 1e-9 <= abs(acq.defocus_mean_um - acq.target_defocus_um) <= 0.5 + 1e-9
    assert acq.tilt_axis_deg != acq.tilt_axis_nominal_deg


def test_mean_counts_per_pixel_match_the_dose(tiny):
    t = load_truth(tiny)
    ts = t.tilt_series[0]
    gain = _gain(tiny)
    px = ts.acquisition.pixel_size_a
    total = 0.0
    for v in ts.views:
        frames = read_tiff_movie(session_path(tiny, v.movie)).astype(np.float64)
        for f, y, x, c in v.hot_pixels:
            frames[int(f), int(y), int(x)] -= c
        counts = (frames * gain).mean()
        expected = ts.acquisition.dose_per_frame_e_per_a2 * px * px * v.transmission
        assert v.mean_counts_per_px == pytest.approx(expected, rel=1e-9)
        # exactly (to Poisson precision) the dose times the specimen's mean relative intensity ...
        assert counts == pytest.approx(expected * v.mean_relative_intensity, rel=0.003), (v.acquisition_order,)
        # ... which beads and protein (dense in tiny) lower by a few per cent
        assert 0.92 < v.mean_relative_intensity < 1.0
        total += counts * len(frames) / (px * px * v.transmission * v.mean_relative_intensity)
    assert total == pytest.approx(ts.acquisition.dose_per_tilt_e_per_a2 * len(ts.views), rel=0.002)
    assert ts.views[-1].accumulated_dose_e_per_a2 == pytest.approx(3.0 * 21)


def _shift(ref: np.ndarray, img: np.ndarray) -> tuple[float, float]:
    """Displacement (dx, dy) of ``img`` relative to ``ref`` by cross-correlation with a parabolic peak fit."""
    a = np.fft.fft2(ref - ref.mean())
    b = np.fft.fft2(img - img.mean())
    n = ref.shape[0]
    k = np.fft.fftfreq(n)
    lp = np.exp(-(k[:, None] ** 2 + k[None, :] ** 2) / (2 * 0.15 ** 2))
    cc = np.fft.ifft2(np.conj(a) * b * lp).real
    cc = np.fft.fftshift(cc)
    y, x = np.unravel_index(np.argmax(cc), cc.shape)

    def sub(m, c, p):
        return 0.5 * (m - p) / (m - 2 * c + p)

    dx = x - n // 2 + sub(cc[y, x - 1], cc[y, x], cc[y, x + 1])
    dy = y - n // 2 + sub(cc[y - 1, x], cc[y, x], cc[y + 1, x])
    return float(dx), float(dy)


def test_frame_drift_in_the_movies_matches_truth(drifting):
    t = load_truth(drifting)
    gain = _gain(drifting)
    errs, moved = [], []
    for v in t.tilt_series[0].views:
        frames = read_tiff_movie(session_path(drifting, v.movie)).astype(np.float64) * gain
        for fr in v.frames[1:]:
            dx, dy = _shift(frames[0], frames[fr.index])
            errs.append(np.hypot(dx - fr.shift_x_px, dy - fr.shift_y_px))
            moved.append(np.hypot(fr.shift_x_px, fr.shift_y_px))
    assert max(moved) > 3.0  # the test is not trivial
    assert max(errs) < 0.35, errs


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    over = {"tilt_scheme": "custom", "custom_tilts_deg": "0,15,-15", "image_size_px": 64}

    def digest(root: Path) -> dict[str, str]:
        return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(root.rglob("*")) if p.is_file()}

    simulate_case("tiny", tmp_path / "a", seed=11, overrides=over)
    simulate_case("tiny", tmp_path / "b", seed=11, overrides=over)
    simulate_case("tiny", tmp_path / "c", seed=12, overrides=over)
    a, b, c = digest(tmp_path / "a"), digest(tmp_path / "b"), digest(tmp_path / "c")
    assert len(a) > 5 and a == b
    assert a["truth/truth.json"] != c["truth/truth.json"]
    assert a["frames/TS_01_000_0.0.tif"] != c["frames/TS_01_000_0.0.tif"]


def test_mdoc_round_trips_through_mdocfile(tiny):
    import mdocfile

    t = load_truth(tiny)
    ts = t.tilt_series[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        df = mdocfile.read(session_path(tiny, ts.mdoc))
    assert len(df) == len(ts.views)
    by_section = {v.stack_section: v for v in ts.views}
    for _, row in df.iterrows():
        v = by_section[int(row["ZValue"])]
        assert float(row["TiltAngle"]) == pytest.approx(v.nominal_tilt_deg, abs=0.01)
        assert float(row["ExposureDose"]) == pytest.approx(v.dose_e_per_a2)
        assert float(row["TargetDefocus"]) == pytest.approx(-ts.acquisition.target_defocus_um)
        assert float(row["PixelSpacing"]) == pytest.approx(ts.acquisition.pixel_size_a)
        assert Path(str(row["SubFramePath"]).replace("\\", "/")).name == Path(v.movie).name
    # sections are sorted by tilt; DateTime carries the acquisition order
    assert list(df["TiltAngle"]) == sorted(df["TiltAngle"])
    order = np.argsort([str(x) for x in df["DateTime"]], kind="stable")
    assert [by_section[int(df["ZValue"].iloc[i])].acquisition_order for i in order] == list(range(len(df)))


def test_mdoc_imports_with_tomoforge(tiny):
    from tomoforge.io.importing import tilt_series_from_mdoc

    t = load_truth(tiny)
    truth_ts = t.tilt_series[0]
    got = tilt_series_from_mdoc(session_path(tiny, truth_ts.mdoc))
    acq = truth_ts.acquisition
    assert got.n_views == len(truth_ts.views)
    assert got.acquisition.pixel_size_a == pytest.approx(acq.pixel_size_a)
    assert got.acquisition.tilt_axis_deg == pytest.approx(acq.tilt_axis_nominal_deg)
    assert got.acquisition.frames_per_movie == acq.frames_per_movie
    by_order = {v.acquisition_order: v for v in truth_ts.views}
    for im in got.images:
        v = by_order[im.acquisition_order]
        assert im.tilt_angle_deg == pytest.approx(v.nominal_tilt_deg, abs=0.01)
        assert im.accumulated_dose_e_per_a2 == pytest.approx(v.accumulated_dose_e_per_a2)
        assert Path(im.movie.path).name == Path(v.movie).name
        assert im.image.index == v.stack_section
        assert im.target_defocus_um == pytest.approx(acq.target_defocus_um)


def test_stack_holds_gain_corrected_sums_in_tilt_order(tiny):
    t = load_truth(tiny)
    ts = t.tilt_series[0]
    gain = _gain(tiny)
    stack = mrcfile.read(session_path(tiny, ts.stack))
    for v in ts.views[:3]:
        s = (read_tiff_movie(session_path(tiny, v.movie)).astype(np.float64) * gain).sum(0)
        assert np.allclose(stack[v.stack_section], s, rtol=1e-5)
    angles = [v.nominal_tilt_deg for v in sorted(ts.views, key=lambda v: v.stack_section)]
    assert angles == sorted(angles)


def test_dark_views_and_bad_series_are_flagged(tmp_path):
    path = simulate_case("tiny", tmp_path, seed=2, overrides={
        "n_tilt_series": 2, "tilt_scheme": "custom", "custom_tilts_deg": "0,20,-20,40", "image_size_px": 64,
        "dark_views": "1:2", "bad_series": "2"})
    t = load_truth(path)
    ts1, ts2 = t.tilt_series
    assert [v.dark for v in ts1.views] == [False, False, True, False]
    assert ts1.views[2].excluded and ts1.views[2].transmission < 0.05 * ts1.views[1].transmission
    assert not ts1.excluded and ts2.excluded and all(v.excluded for v in ts2.views)
    assert ts2.acquisition.ice_thickness_a == pytest.approx(3 * ts1.acquisition.ice_thickness_a)
    dark = read_tiff_movie(session_path(path, ts1.views[2].movie)).mean()
    bright = read_tiff_movie(session_path(path, ts1.views[1].movie)).mean()
    assert dark < 0.1 * bright


@pytest.mark.parametrize("key,value,needle", [
    ("no_such_key", "1", "no_such_key"),
    ("pixel_size_a", "-3", "0.2..50"),
    ("tilt_scheme", "spiral", "dose-symmetric"),
    ("noise_on", "maybe", "true | false"),
    ("dark_views", "a:b", "TS:ORDER"),
    ("dark_views", "1:40", "0..20"),
    ("bad_series", "2", "1..1"),
])
def test_bad_set_values_raise_param_error(key, value, needle):
    with pytest.raises(ParamError) as err:
        make_config("tiny", {key: value})
    assert key in str(err.value) or "vesicle" in str(err.value)
    assert needle in str(err.value)


def test_unknown_case_and_bad_truth_file(tmp_path):
    with pytest.raises(ParamError, match="hiv-small"):
        make_config("nope")
    bad = tmp_path / "truth.json"
    bad.write_text('{"case": 1}')
    with pytest.raises(ParseError, match="truth.json"):
        load_truth(bad)


def test_scale_keeps_the_field_of_view():
    cfg = make_config("hiv-small", {"scale": 8})
    assert cfg.effective_image_size_px() == 4096
    assert cfg.effective_pixel_size_a() * cfg.effective_image_size_px() == pytest.approx(512 * 6.0)
    assert torch.get_num_threads() >= 1


def test_eer_movies_group_back_to_the_frames(tmp_path):
    from tomoforge.io.eer import read_eer

    path = simulate_case("tiny", tmp_path, seed=3, overrides={
        "movie_format": "eer", "tilt_scheme": "custom", "custom_tilts_deg": "0,30", "image_size_px": 64,
        "eer_raw_per_frame": 40, "hot_pixels_per_mpx_frame": 0})
    t = load_truth(path)
    v = t.tilt_series[0].views[0]
    grouped = read_eer(session_path(path, v.movie), frames_per_group=40).astype(np.float64)
    assert grouped.shape == (4, 64, 64)
    gain = _gain(path)
    # each raw frame of a pixel sees Poisson(lambda / 40) electrons and records at most one
    expected_image = mrcfile.read(session_path(path, t.tilt_series[0].noise_free_stack))[0]
    lam = v.mean_counts_per_px * expected_image / gain
    expected = float(np.mean(40 * (1 - np.exp(-lam / 40))))
    assert grouped.mean() == pytest.approx(expected, rel=0.01)
    assert grouped.max() <= 40


def test_gain_reference_orientation_is_recognised_by_the_importer(tiny):
    from tomoforge.io.importing import check_gain_orientation

    t = load_truth(tiny)
    movies = [session_path(tiny, v.movie) for v in t.tilt_series[0].views]
    check = check_gain_orientation(session_path(tiny, t.gain_reference), movies)
    assert check.message is None and check.better is None
    best_rotation, best_flip, _ = check.scores[0]
    assert (best_rotation, best_flip) == (0, False)


def test_movies_only_session_imports_from_frames_and_reports_progress(tmp_path):
    from tomoforge.io.importing import tilt_series_from_mdoc

    calls = []
    path = simulate_case("tiny", tmp_path, seed=6, progress=lambda label, i, n: calls.append((label, i, n)),
                         overrides={"write_stack": "false", "tilt_scheme": "custom",
                                    "custom_tilts_deg": "0,10,-10,-20,20", "image_size_px": 64})
    assert ("TS_01 views", 5, 5) in calls
    t = load_truth(path)
    ts = t.tilt_series[0]
    assert ts.stack is None and all(v.stack_section is None for v in ts.views)
    got = tilt_series_from_mdoc(session_path(path, ts.mdoc))
    assert [im.acquisition_order for im in got.images] == [3, 2, 0, 1, 4]  # sorted by tilt angle
    for im in got.images:
        assert Path(im.movie.path).resolve() == session_path(path, ts.views[im.acquisition_order].movie).resolve()


def test_read_sim_stack_needs_a_written_stack(tmp_path):
    from tomoforge.io.sim_session import read_sim_stack

    path = simulate_case("tiny", tmp_path, seed=1, overrides={"write_stack": False, "movie_format": "none",
                                                               "write_noise_free": False})
    with pytest.raises(ParseError, match="no stack was written"):
        read_sim_stack(path)
