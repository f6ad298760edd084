"""ctfplotter .defocus files: every real variant, nm -> Å, version-3 round trip, view-count check."""

from __future__ import annotations

import pytest

from tomoforge.errors import ParseError
from tomoforge.io import defocus
from tomoforge.model.ctf import CtfEstimate

CASES = {
    # file: (version, flags, n, first row as in the file: start, end, a1, a2, d1_nm, d2_nm, ang, phase, cut-on)
    "ctfplotter_v2_plain_TS_03.defocus": (2, 0, 40, (1, 1, -57.0, -57.0, 1360, 1360, 0.0, 0.0, None)),
    "ctfplotter_v2_pytom_test.defocus": (2, 0, 35, (1, 1, -50.99, -50.99, 3083, 3083, 0.0, 0.0, None)),
    "ctfplotter_v3_flag1_astig_TS_03.defocus": (3, 1, 40, (1, 1, -57.0, -57.0, 1651.6, 1206.7, 31.76, 0.0, None)),
    "ctfplotter_v3_flag4_phase_TS_03.defocus": (3, 4, 40, (1, 1, -57.0, -57.0, 1323.6, 1323.6, 0.0, 10.19, None)),
    "ctfplotter_v3_flag5_astig_phase_TS_03.defocus": (3, 5, 40, (1, 1, -57.0, -57.0, 1483.9, 1068.7, 32.44,
                                                                26.49, None)),
    "ctfplotter_v3_flag37_astig_phase_cuton_TS_03.defocus": (3, 37, 40, (1, 1, -57.0, -57.0, 1331.4, 917.5,
                                                                         32.43, 29.08, 0.4912)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_real_defocus(realdata, name):
    version, flags, n, first = CASES[name]
    df = defocus.read_defocus(realdata / "ctf" / name, n_views=n)
    assert (df.version, df.flags, len(df.entries)) == (version, flags, n)
    e = df.entries[0]
    s, en, a1, a2, d1, d2, ang, ph, cut = first
    assert (e.start_view, e.end_view) == (s, en)
    assert e.start_angle_deg == pytest.approx(a1) and e.end_angle_deg == pytest.approx(a2)
    assert e.ctf.defocus_u_a == pytest.approx(d1 * 10) and e.ctf.defocus_v_a == pytest.approx(d2 * 10)
    assert e.ctf.astigmatism_angle_deg == pytest.approx(ang) and e.ctf.phase_shift_deg == pytest.approx(ph)
    assert e.cut_on_per_nm == (pytest.approx(cut) if cut is not None else None)
    assert [x.end_view for x in df.entries] == list(range(1, n + 1))
    per = df.per_view(n)
    assert all(c is not None for c in per) and per[-1] == df.entries[-1].ctf


def test_last_row_values(realdata):
    df = defocus.read_defocus(realdata / "ctf/ctfplotter_v3_flag37_astig_phase_cuton_TS_03.defocus")
    text = (realdata / "ctf/ctfplotter_v3_flag37_astig_phase_cuton_TS_03.defocus").read_text().split()
    # last row's nine columns as text
    s, e, a1, a2, d1, d2, ang, ph, cut = text[-9:]
    last = df.entries[-1]
    assert last.start_view == int(s) and last.ctf.defocus_v_a == pytest.approx(float(d2) * 10)
    assert last.ctf.phase_shift_deg == pytest.approx(float(ph)) and last.cut_on_per_nm == pytest.approx(float(cut))


@pytest.mark.parametrize("name", sorted(CASES))
def test_write_v3_round_trip(realdata, tmp_path, name):
    df = defocus.read_defocus(realdata / "ctf" / name)
    defocus.write_defocus(tmp_path / "out.defocus", df.entries)
    back = defocus.read_defocus(tmp_path / "out.defocus")
    assert back.version == 3 and back.flags & defocus.FLAG_ASTIGMATISM
    for a, b in zip(df.entries, back.entries, strict=True):
        assert a.model_dump() == b.model_dump()


def test_round_trip_synthetic(tmp_path):
    ctfs = [CtfEstimate(defocus_u_a=30000 + 10 * k, defocus_v_a=29000 - 10 * k, astigmatism_angle_deg=-45.25 + k,
                        phase_shift_deg=0.0) for k in range(5)]
    entries = defocus.entries_from_views([-6.0, -3.0, 0.0, 3.0, 6.0], ctfs)
    defocus.write_defocus(tmp_path / "a.defocus", entries)
    back = defocus.read_defocus(tmp_path / "a.defocus", n_views=5)
    assert back.flags == 1
    assert [e.model_dump() for e in back.entries] == [e.model_dump() for e in entries]


def test_view_count_disagrees_with_stack(realdata):
    p = realdata / "ctf/ctfplotter_v3_flag1_astig_TS_03.defocus"
    with pytest.raises(ParseError, match="view 40 but the stack has 39 views") as e:
        defocus.read_defocus(p, n_views=39)
    assert e.value.line == 41 and str(p) in str(e.value)
    with pytest.raises(ParseError, match="have no defocus"):
        defocus.read_defocus(p, n_views=41)


@pytest.mark.parametrize("text, msg", [
    ("1 0 0.0 0.0 0.0 3\n1 1 -57 -57 1600\n", "5 columns"),
    ("1 1 -57 -57 1600 7\n", "unknown defocus file version 7"),
    ("1 1 -57 -57 abc 2\n", "'abc' is not a number"),
    ("2 1 -57 -57 1600 2\n", "view range"),
])
def test_bad_defocus(tmp_path, text, msg):
    p = tmp_path / "bad.defocus"
    p.write_text(text)
    with pytest.raises(ParseError, match=msg):
        defocus.read_defocus(p)


def test_defocus1_smaller_than_defocus2_is_reordered(tmp_path):
    p = tmp_path / "a.defocus"
    p.write_text("1\t0\t0.0\t0.0\t0.0\t3\n1\t1\t-3.00\t-3.00\t1200.0\t1500.0\t 30.00\n")
    c = defocus.read_defocus(p).entries[0].ctf
    assert (c.defocus_u_a, c.defocus_v_a, c.astigmatism_angle_deg) == (15000.0, 12000.0, -60.0)
