"""WarpTools tilt-series XML: every real file read, values checked against the XML text."""

from __future__ import annotations

import re

import numpy as np
import pytest

from tomoforge.errors import ParseError
from tomoforge.io import warp

CASES = {
    # name: tilts, first angle, first dose, axis angle, pixel size, first defocus (µm) or None, inverted
    "warptools_EMPIAR-10491_TS_1_refinedM.xml": (41, 40.01, 120.0, -85.60053, 0.834, True, False),
    "warptools_EMPIAR-10499_00254_after_import.xml": (41, -60.01, 117.0, -4.2999735, 1.0, True, False),
    "warptools_EMPIAR-10499_00254_processed.xml": (41, -60.01, 117.0, -4.2999988, 1.7005, True, True),
    "warptools_gs04_ts_003_olderversion.xml": (47, 46.0, 140.97852, 84.500114, 0.7303, True, False),
}


def _grid_first(text: str, tag: str) -> float:
    m = re.search(rf"<{tag} [^>]*>\s*<Node X=\"0\" Y=\"0\" Z=\"0\" Value=\"([^\"]+)\"", text)
    return float(m.group(1))


@pytest.mark.parametrize("name", sorted(CASES))
def test_read_warp_xml(realdata, name):
    n, a0, d0, axis, pix, has_ctf, inv = CASES[name]
    p = realdata / "warp" / name
    w = warp.read_warp_xml(p)
    assert w.n_tilts == n and w.angles_deg[0] == pytest.approx(a0) and w.dose_e_per_a2[0] == pytest.approx(d0)
    assert w.axis_angle_deg[0] == pytest.approx(axis) and w.pixel_size_a == pytest.approx(pix)
    assert w.angles_inverted == inv and len(w.movie_paths) == n and w.axis_offset_xy_a.shape == (n, 2)
    text = p.read_text(encoding="utf-8-sig")
    d = _grid_first(text, "GridCTF")
    dd = _grid_first(text, "GridCTFDefocusDelta")
    assert w.ctf[0].defocus_u_a == pytest.approx((d + dd / 2) * 1e4)
    assert w.ctf[0].defocus_v_a == pytest.approx((d - dd / 2) * 1e4)
    assert np.all(np.diff(w.dose_e_per_a2[np.argsort(w.dose_e_per_a2)]) >= 0)


def test_import_xml_offsets(realdata):
    w = warp.read_warp_xml(realdata / "warp/warptools_EMPIAR-10499_00254_after_import.xml")
    assert w.axis_offset_xy_a[0].tolist() == pytest.approx([271.82022, 1.5337157])
    assert w.movie_paths[0] == "../2/TS_01_041_-60.0.tif" and w.use_tilt.all()


@pytest.mark.parametrize("text, msg", [
    ("<TiltSeries><Angles>1\n2</Angles><Dose>1</Dose></TiltSeries>", "has 1 values for 2 tilts"),
    ("<TiltSeries><Angles>1\n2", "bad XML"),
    ("<Other/>", "root element"),
    ('<!DOCTYPE x [<!ENTITY a "b">]><TiltSeries/>', "DOCTYPE"),
])
def test_bad_xml(tmp_path, text, msg):
    p = tmp_path / "x.xml"
    p.write_text(text)
    with pytest.raises(ParseError, match=msg):
        warp.read_warp_xml(p)
