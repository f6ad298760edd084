"""etomo .edf: key settings of every real .edf."""

from __future__ import annotations

import pytest

from tomoforge.errors import ParseError
from tomoforge.io import edf

CASES = {
    "imod/IMOD_tutorial_BB_finalFiles/BB.edf": ("BB", "1.7", "Dual Axis", 2.02, 10.0, -12.5, []),
    "imod/IMOD_unittest/setup_revision_1_2.edf": ("hvemuni5", "1.2", "Dual Axis", 1.42, 15.0, -2.0, []),
    "imod/IMOD_unittest/setup_revision_1_5.edf": ("hvemuni5_by2", "1.5", "Dual Axis", 2.84, 15.0, 0.0, []),
    "imod/etomo_TS_001/TS_001.edf": ("TS_001", "1.12", "Single Axis", 0.6192, 6.0, 83.9, [40]),
}


@pytest.mark.parametrize("rel", sorted(CASES))
def test_read_edf(realdata, rel):
    name, rev, axis, pix, fid, rot, excl = CASES[rel]
    s = edf.read_edf(realdata / rel)
    assert (s.dataset_name, s.revision, s.axis_type, s.view_type) == (name, rev, axis, "Single View")
    assert s.pixel_size_nm == pytest.approx(pix) and s.fiducial_diameter_nm == pytest.approx(fid)
    assert s.image_rotation_a_deg == pytest.approx(rot) and s.exclude_views_a == excl
    props = edf.read_edf_properties(realdata / rel)
    assert props["Setup.DatasetName"] == name


def test_bad_edf(tmp_path):
    p = tmp_path / "x.edf"
    p.write_text("Setup.PixelSize=1.0\nnot a property\n")
    with pytest.raises(ParseError, match="not key=value") as e:
        edf.read_edf(p)
    assert e.value.line == 2
