"""tiltalign logs: solution tables and surface analysis of every real log."""

from __future__ import annotations

import numpy as np
import pytest

from tomoforge.errors import ParseError
from tomoforge.io import imod_log


@pytest.mark.parametrize("rel, n, first_view, tilt0, unit, rot, beam, mean_sd", [
    ("imod/taSolution_TS_01.log", 40, 2, -47.4, "nm", 85.23, 0.14, None),
    ("imod/batchruntomo_220728_TS_01/align.log", 40, 2, -48.0, "nm", 85.24, 0.15, (0.360, 0.457)),
    ("imod/IMOD_unittest/aligna.log", 121, 1, 60.2, "px", -11.91, None, (0.243, 0.259)),
])
def test_solution(realdata, rel, n, first_view, tilt0, unit, rot, beam, mean_sd):
    s = imod_log.read_tiltalign_solution(realdata / rel)
    assert len(s.view) == n and s.view[0] == first_view and s.tilt_deg[0] == pytest.approx(tilt0)
    assert s.resid_unit == unit and s.rotation_at_min_tilt_deg == pytest.approx(rot)
    assert s.beam_tilt_deg == (pytest.approx(beam) if beam is not None else None)
    assert s.residual_mean_sd == (pytest.approx(mean_sd) if mean_sd else None)
    assert np.all(np.diff(s.view) == 1) and np.all(s.resid >= 0)
    assert np.all(np.abs(s.rotation_deg - rot) < 1.0)


def test_ta_angles(realdata):
    fits = imod_log.read_ta_angles(realdata / "imod/IMOD_tutorial_BB_finalFiles/taAnglesa.log")
    assert [f.title for f in fits] == ["Fit of one plane to all fiducials",
                                       "Fit of one plane to points on bottom surface",
                                       "Fit of one plane to points on top surface", "Combined two-surface fit"]
    assert fits[0].values["Total tilt angle change"] == -6.79
    assert fits[1].values["# of points"] == 14 and fits[1].values["X axis tilt needed"] == 2.46
    assert fits[2].values["Incremental tilt angle change"] == 0.73
    assert fits[3].values["Average X axis tilt needed"] == 2.07 and fits[3].values["Total tilt angle change"] == -0.16


def test_no_table(tmp_path):
    p = tmp_path / "x.log"
    p.write_text("nothing here\n")
    with pytest.raises(ParseError, match="no solution table"):
        imod_log.read_tiltalign_solution(p)
