"""IMOD alignment text files: real files read with values checked, exact round trips, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tomoforge.core.geometry import xf_rotation_deg
from tomoforge.errors import ParseError
from tomoforge.io import imod


def test_tilt_angle_files(realdata):
    raw = imod.read_rawtlt(realdata / "imod/IMOD_tutorial_BB_finalFiles/BBa.rawtlt")
    assert raw.shape == (61,)
    np.testing.assert_allclose(raw, np.arange(65.0, -57.0, -2.0), atol=0.011)  # +65..-55, 2-degree steps
    assert raw[40] == pytest.approx(-14.99)
    tlt = imod.read_tlt(realdata / "imod/IMOD_BB_tutorial/BBa.tlt", n_views=61)
    assert tlt[0] == pytest.approx(65.06) and tlt[-1] == pytest.approx(-55.12)
    assert np.all(np.abs(tlt - raw) < 0.5)                           # refined close to nominal
    xt = imod.read_xtilt(realdata / "imod/IMOD_BB_tutorial/BBa.xtilt")
    assert xt.shape == (61,) and np.all(xt == 0)
    ts = imod.read_tlt(realdata / "imod/etomo_TS_001/TS_001.tlt")
    assert ts.shape == (40,) and ts[0] == pytest.approx(-57.12)
    raw1 = imod.read_rawtlt(realdata / "imod/etomo_TS_001/TS_001.rawtlt")
    np.testing.assert_allclose(raw1, np.arange(-60.0, 58.0, 3.0), atol=0.011)
    assert raw1[8] == pytest.approx(-36.01)
    assert imod.read_xtilt(realdata / "imod/etomo_TS_001/TS_001.xtilt")[0] == pytest.approx(-0.01)
    w = imod.read_tlt(realdata / "warp/warptools_EMPIAR-10499_00254_imod.tlt")
    assert w.shape == (41,) and w[0] == pytest.approx(-60.01)


@pytest.mark.parametrize("rel, n, first, rot", [
    ("imod/IMOD_BB_tutorial/BBa.xf", 61, [0.9787406, -0.1898027, 0.1861717, 0.9824202, -20.199, 1.220], None),
    ("imod/IMOD_BB_tutorial/BBa.tltxf", 61, [0.9787401, -0.1898026, 0.1861716, 0.9824197, 8.908, 0.174], None),
    ("imod/IMOD_tutorial_BB_finalFiles/BBa.prexf", 61, [1, 0, 0, 1, 0, 0], 0.0),
    ("imod/IMOD_tutorial_BB_finalFiles/BBa.prexg", 61, None, 0.0),
    ("imod/TS_03_EMPIAR-10164.xf", 40, [0.0856836, 0.9963228, -0.9963228, 0.0856836, 116.328, -191.695], 85.08),
    ("imod/etomo_TS_001/TS_001.xf", 40, None, None),
    ("imod/batchruntomo_220728_TS_01/xf_file.xf", 41, [0.0858208, 0.9963112, -0.9963112, 0.0858208, 342.263,
                                                       2006.328], 85.08),
    ("warp/warptools_EMPIAR-10499_00254_imod.xf", 41, None, None),
    ("aretomo/aretomo_TS_121_OutImod.xf", 31, [0.107, 0.994, -0.994, 0.107, 111.83, 16.91], 83.86),
])
def test_read_xf_real(realdata, rel, n, first, rot):
    xf = imod.read_xf(realdata / rel, n_views=n)
    assert xf.shape == (n, 2, 3) and xf.dtype == torch.float64
    if first is not None:
        a11, a12, a21, a22, dx, dy = first
        expect = torch.tensor([[a11, a12, dx], [a21, a22, dy]], dtype=torch.float64)
        torch.testing.assert_close(xf[0], expect, atol=1e-9, rtol=0)
    if rot is not None:
        assert float(xf_rotation_deg(xf[0])) == pytest.approx(rot, abs=0.05)


def test_xf_view_count_mismatch(realdata):
    with pytest.raises(ParseError, match="61 views in the file but the stack has 60"):
        imod.read_xf(realdata / "imod/IMOD_BB_tutorial/BBa.xf", n_views=60)


@pytest.mark.parametrize("style", ["imod", "aretomo"])
def test_xf_round_trip_exact(tmp_path, style):
    g = torch.Generator().manual_seed(0)
    xf = torch.randn(7, 2, 3, generator=g, dtype=torch.float64)
    xf[..., 2] *= 300
    expect = imod.round_xf(xf, style)
    imod.write_xf(tmp_path / "a.xf", xf, style)
    got = imod.read_xf(tmp_path / "a.xf")
    assert torch.equal(got, expect)
    if style == "imod":  # IMOD's own layout: %12.7f x4, %12.3f x2
        line = (tmp_path / "a.xf").read_text().splitlines()[0]
        assert len(line) == 72
        assert all(line[12 * k:12 * k + 12].split(".")[1].__len__() == (7 if k < 4 else 3) for k in range(6))


def test_tilt_round_trip_exact(tmp_path, realdata):
    tlt = imod.read_tlt(realdata / "imod/IMOD_BB_tutorial/BBa.tlt")
    imod.write_tlt(tmp_path / "x.tlt", tlt)
    assert np.array_equal(imod.read_tlt(tmp_path / "x.tlt"), tlt)
    assert (tmp_path / "x.tlt").read_text() == (realdata / "imod/IMOD_BB_tutorial/BBa.tlt").read_text()


def test_zfac_resid_fidxyz(realdata, tmp_path):
    z = imod.read_zfac(realdata / "imod/IMOD_BB_tutorial/BBa.zfac", n_views=61)
    np.testing.assert_allclose(z[0], [-0.002847, -0.007753])
    r = imod.read_resid(realdata / "imod/IMOD_BB_tutorial/BBa.resid")
    assert len(r) == 1403
    assert (r.x_px[0], r.y_px[0], r.view[0], r.dx_px[0], r.dy_px[0]) == (281.19, 236.96, 0, -0.20, 0.17)
    assert r.view.max() == 60 and r.view[-1] == 60
    imod.write_resid(tmp_path / "a.resid", r)
    r2 = imod.read_resid(tmp_path / "a.resid")
    for a in ("x_px", "y_px", "view", "dx_px", "dy_px"):
        assert np.array_equal(getattr(r, a), getattr(r2, a))
    f = imod.read_fid_xyz(realdata / "imod/IMOD_BB_tutorial/BBafid.xyz")
    assert len(f.points) == 23 and f.pixel_size_nm == pytest.approx(20.2) and f.image_size_xy == (512, 512)
    p0, pl = f.points[0], f.points[-1]
    assert (p0.point, p0.x_px, p0.y_px, p0.z_px, p0.object, p0.contour) == (1, 244.50, 242.64, 46.24, 1, 1)
    assert (pl.point, pl.z_px, pl.contour) == (23, -28.28, 25)
    imod.write_fid_xyz(tmp_path / "fid.xyz", f)
    assert imod.read_fid_xyz(tmp_path / "fid.xyz") == f


def test_local_xf(realdata):
    la = imod.read_local_xf(realdata / "imod/IMOD_BB_tutorial/BBalocal.xf")
    assert la.n_areas_xy == (2, 2) and la.start_xy == (235, 171) and la.spacing_xy == (149, 133)
    assert la.pixel_size_nm == pytest.approx(20.2) and la.n_views == 61
    assert la.delta_xtilt_deg is None and la.zfac.shape == (4, 61, 2) and la.xf.shape == (4, 61, 2, 3)
    np.testing.assert_allclose(la.delta_tilt_deg[0, :3], [0.07, 0.05, 0.02])
    np.testing.assert_allclose(la.delta_tilt_deg[1, :3], [0.16, 0.10, 0.05])
    np.testing.assert_allclose(la.zfac[0, 0], [-0.004845, -0.007247])
    np.testing.assert_allclose(la.zfac[0, -1], [-0.003339, -0.010526])
    torch.testing.assert_close(la.xf[0, 0], torch.tensor([[1.0022262, 0.0019808, 0.063],
                                                          [-0.0025637, 0.9999811, -0.054]], dtype=torch.float64))
    torch.testing.assert_close(la.xf[0, -1, 1], torch.tensor([-0.0029504, 0.9991777, -0.187], dtype=torch.float64))
    with pytest.raises(ParseError):
        imod.read_local_xf(realdata / "imod/IMOD_BB_tutorial/BBalocal.xf", n_views=60)


@pytest.mark.parametrize("text, reader, msg", [
    ("1 2 3 4 5\n", imod.read_xf, "5 columns"),
    ("1 2 3 4 5 x\n", imod.read_xf, "'x' is not a number"),
    ("", imod.read_tlt, "no tilt angles"),
    ("1.0\nnan\n", imod.read_tlt, "not a finite"),
    ("3 residuals\n1 2 0 0.1 0.1\n", imod.read_resid, "header says 3"),
])
def test_bad_text(tmp_path, text, reader, msg):
    p = tmp_path / "bad.txt"
    p.write_text(text)
    with pytest.raises(ParseError, match=msg) as e:
        reader(p)
    assert str(p) in str(e.value)
