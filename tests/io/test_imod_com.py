"""IMOD command files: real tilt/xcorr/track/align/newst .com files, tilt.com and newst.com round trips."""

from __future__ import annotations

import pytest

from tomoforge.errors import ParseError
from tomoforge.io import imod_com as com


def test_tilta_com(realdata):
    t = com.read_tilt_com(realdata / "imod/IMOD_BB_tutorial/tilta.com")
    assert (t.input_projections, t.output_file, t.tilt_file) == ("BBa.ali", "BBa.rec", "BBa.tlt")
    assert t.thickness_px == 84 and t.image_binned == 1 and t.full_image_xy == (512, 512)
    assert t.x_axis_tilt_deg == pytest.approx(1.94) and t.exclude_views == [1]
    assert t.radial == (0.35, 0.05) and t.log == 0.0 and t.mode == 1 and t.perpendicular
    assert t.scale == (0.0, 1000.0) and t.subset_start == (-19, -19) and t.shift_xz == (0.0, 0.0)
    assert (t.local_file, t.xtilt_file, t.zfactor_file) == ("BBalocal.xf", "BBa.xtilt", "BBa.zfac")
    assert t.adjust_origin and not t.falloff_is_true_sigma


def test_tilt_com_round_trip(tmp_path, realdata):
    t = com.read_tilt_com(realdata / "imod/IMOD_BB_tutorial/tilta.com")
    t2 = t.model_copy(update={"exclude_views": [1, 2, 3, 7, 40, 41], "use_gpu": 0, "falloff_is_true_sigma": True,
                              "shift_xz": (1.5, -3.0), "log": None, "image_binned": 4})
    com.write_tilt_com(tmp_path / "tilt.com", t2)
    text = (tmp_path / "tilt.com").read_text()
    assert "$tilt -StandardInput" in text and "EXCLUDELIST 1-3,7,40-41" in text and "UseGPU 0" in text
    assert com.read_tilt_com(tmp_path / "tilt.com") == t2


def test_other_com_files(realdata):
    x = com.read_program_params(realdata / "imod/IMOD_BB_tutorial/xcorra.com", "tiltxcorr")
    assert x == {"InputFile": "BBa.st", "OutputFile": "BBa.prexf", "TiltFile": "BBa.rawtlt",
                 "RotationAngle": "-12.5", "FilterSigma1": "0.03", "FilterRadius2": "0.25", "FilterSigma2": "0.05"}
    tr = com.read_program_params(realdata / "imod/IMOD_tutorial_BB_finalFiles/tracka.com", "beadtrack")
    assert tr["InputSeedModel"] == "BBa.seed" and tr["OutputModel"] == "BBa.fid" and tr["RotationAngle"] == "-12.5"
    al = com.read_program_params(realdata / "imod/IMOD_unittest/aligna.com", "tiltalign")
    assert al["ModelFile"] == "BBa.fid" and al["AngleOffset"] == "-0.03" and al["SurfacesToAnalyze"] == "2"
    cmds = com.read_com(realdata / "imod/IMOD_tutorial_BB_finalFiles/prenewsta.com")
    assert [c.program for c in cmds][:2] == ["xftoxg", "newstack"] and cmds[0].stdin == ["0", "BBa.prexf",
                                                                                     "BBa.prexg"]


def test_newst_old_style(realdata, tmp_path):
    n = com.read_newst_com(realdata / "imod/IMOD_tutorial_BB_finalFiles/newsta.com")
    assert (n.input_file, n.output_file, n.transform_file, n.offset_xy, n.taper) == \
        ("BBa.st", "BBa.ali", "BBa.xf", (0.0, 0.0), True)
    p = com.read_newst_com(realdata / "imod/IMOD_tutorial_BB_finalFiles/prenewsta.com")
    assert (p.transform_file, p.mode, p.float_densities, p.taper) == ("BBa.prexg", 0, 2, False)
    q = n.model_copy(update={"bin_by": 4, "size_xy": (1024, 1000), "mode": 2})
    com.write_newst_com(tmp_path / "newst.com", q)
    assert com.read_newst_com(tmp_path / "newst.com") == q


def test_view_lists():
    assert com.parse_view_list("1-3,7, 9-10") == [1, 2, 3, 7, 9, 10]
    assert com.format_view_list([10, 9, 1, 2, 3, 7]) == "1-3,7,9-10"
    with pytest.raises(ParseError):
        com.parse_view_list("5-2")


def test_bad_com(tmp_path):
    p = tmp_path / "tilt.com"
    p.write_text("InputProjections a.ali\n")
    with pytest.raises(ParseError, match="before any \\$program") as e:
        com.read_com(p)
    assert e.value.line == 1
    p.write_text("$tilt -StandardInput\nInputProjections a.ali\nOutputFile a.rec\nTILTFILE a.tlt\n")
    with pytest.raises(ParseError, match="THICKNESS"):
        com.read_tilt_com(p)
