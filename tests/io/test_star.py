"""STAR reader/writer: every real STAR file parsed and checked against the starfile package; exact round
trips; RELION quirks; errors with file and line."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from tomoforge.errors import ParseError
from tomoforge.io import star


def _all_star(realdata):
    return sorted((realdata / "relion").rglob("*.star"))


def test_every_real_star_matches_starfile(realdata):
    import starfile

    files = _all_star(realdata)
    assert len(files) == 43
    for p in files:
        ours = star.read_star(p)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = starfile.read(p, always_dict=True)
        assert list(ours) == list(ref), p
        for name, b in ours.items():
            r = ref[name]
            if hasattr(r, "columns"):       # loop
                assert b.labels == list(r.columns), (p, name)
                assert len(b.rows) == len(r), (p, name)
                for lab in b.labels:
                    col = r[lab]
                    if col.dtype.kind in "fi":
                        np.testing.assert_allclose(b.floats(lab), col.to_numpy(dtype=float), rtol=0, atol=0)
                    else:
                        assert [str(v) for v in b.column(lab)] == [str(v) for v in col], (p, name, lab)
            else:
                assert set(b.pairs) == set(r), (p, name)


def test_relion_quirks(realdata):
    s = star.read_star(realdata / "relion/relion5_aligntiltseries_aretomo/tomograms.star")
    g = s.block("global")
    assert len(g) == 14 and g.labels[0] == "rlnTomoName" and g.labels[-1] == "rlnTomoZRot"
    assert g.column("rlnTomoName")[0] == "20250409_Position_42_2"
    assert g.floats("rlnTomoZRot")[0] == pytest.approx(96.243103)
    o = star.read_star(realdata / "relion/relion5_EMPIAR-10164_project/Class3D/job017/run_it025_optimisation_set.star")
    assert o.first().name == "" and o.first().value("rlnTomoTrajectoriesFile") == ""
    m = star.read_star(realdata / "relion/relion5_EMPIAR-10164_project/MotionCorr/job002/frames/TS_03_019_-30_0.star")
    assert m.block("general").int_value("rlnImageSizeX") == 7420
    assert m.block("global_shift").floats("rlnMicrographShiftY")[6] == pytest.approx(7.687506e-04)


def test_round_trip_exact(tmp_path):
    rng = np.random.default_rng(3)
    cols = {"rlnTomoName": ["TS_01", "TS 02", ""], "rlnDefocusU": rng.normal(2e4, 1e3, 3).tolist(),
            "rlnTomoXTilt": [0.1 + 0.2, -1e-17, 123456789.123456789], "rlnOpticsGroup": [1, 2, 3]}
    star.write_star(tmp_path / "a.star", {"general": {"rlnTomoSubTomosAre2DStacks": 1, "rlnName": "a b"},
                                          "TS_01": cols})
    s = star.read_star(tmp_path / "a.star")
    assert s.block("general").value("rlnName") == "a b"
    b = s.block("TS_01")
    assert b.column("rlnTomoName") == cols["rlnTomoName"]
    assert b.floats("rlnDefocusU").tolist() == cols["rlnDefocusU"]
    assert b.floats("rlnTomoXTilt").tolist() == cols["rlnTomoXTilt"]
    assert b.ints("rlnOpticsGroup").tolist() == [1, 2, 3]


def test_rewrite_real_file_same_values(realdata, tmp_path):
    src = star.read_star(realdata / "relion/relion5_EMPIAR-10164_project/Tomograms/job006/tomograms.star")
    g = src.block("global")
    star.write_star(tmp_path / "t.star", {"global": {lab: g.column(lab) for lab in g.labels}})
    back = star.read_star(tmp_path / "t.star").block("global")
    assert back.labels == g.labels and back.rows == g.rows


def test_missing_required_column(realdata):
    p = realdata / "relion/relion5_EMPIAR-10164_project/Import/job001/tilt_series/TS_01.star"
    b = star.read_star(p).first()
    with pytest.raises(ParseError, match="has no column '_rlnTomoXTilt'") as e:
        b.require("rlnMicrographMovieName", "rlnTomoXTilt")
    assert str(p) in str(e.value) and e.value.line == 3


@pytest.mark.parametrize("text, line, msg", [
    ("data_a\nloop_\n_rlnA #1\n_rlnB #2\n1 2\n3\n", 6, "1 values in a row"),
    ("_rlnA 1\n", 1, "before any data_ block"),
    ("data_a\n_rlnA\n", 2, "needs exactly one value"),
    ("data_a\nloop_\n_rlnA #1\n\"unterminated\n", 4, "unterminated"),
    ("data_a\n\ndata_a\n", 3, "duplicate block"),
    ("data_a\nloop_\n_rlnA #1\n1\n;text\n", 5, "multi-line"),
    ("data_a\nloop_\n_rlnA #1\nx\n", None, None),
])
def test_bad_star(tmp_path, text, line, msg):
    p = tmp_path / "bad.star"
    p.write_text(text)
    if line is None:  # parses; a typed access fails with the row's line
        b = star.read_star(p).first()
        with pytest.raises(ParseError, match="'x' is not a number") as e:
            b.floats("rlnA")
        assert e.value.line == 4
        return
    with pytest.raises(ParseError, match=msg) as e:
        star.read_star(p)
    assert e.value.line == line and str(p) in str(e.value)


def test_binary_is_parse_error(tmp_path):
    p = tmp_path / "b.star"
    p.write_bytes(b"data_\x00\x01\x02")
    with pytest.raises(ParseError, match="binary"):
        star.read_star(p)
