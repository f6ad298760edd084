"""AreTomo .aln: all real layouts, agreement with AreTomo's own -OutImod .xf, round trip, unknown layout."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tomoforge.errors import ParseError
from tomoforge.io import aretomo, imod

CASES = {
    # name: layout, tilts, sec_base, raw_size, alpha, dark frames, local rows, first row (SEC ROT TX TY TILT)
    "aretomo_TS_121_v1.0.aln": ("v1.0", 31, 0, None, None, 0, None, (0, 83.8298, 4.792, -112.998, -42.00)),
    "aretomo_v1.2.0_example.aln": ("v1.0", 41, 0, None, None, 0, None, (0, -93.7196, 155.235, 708.750, -51.98)),
    "aretomo_v1.3.0_example.aln": ("v1.3", 41, 0, (5760, 4092, 41), None, 0, None,
                                   (0, -93.6692, 157.142, 720.866, -51.98)),
    "aretomo_global_alphaoffset.aln": ("v2", 61, 1, (4096, 4096, 61), -7.0, 0, None,
                                       (0, -95.4040, 9.220, 103.933, -63.20)),
    "aretomo_local_darkframes.aln": ("v2", 37, 0, (4096, 4096, 51), 12.3, 14, 592,
                                     (0, 84.4445, 13.382, 21.802, -27.71)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_read_real_aln(realdata, name):
    layout, n, base, raw, alpha, ndark, nlocal, first = CASES[name]
    a = aretomo.read_aln(realdata / "aretomo" / name)
    assert (a.layout, a.n_tilts, a.sec_base, a.raw_size) == (layout, n, base, raw)
    assert a.alpha_offset_deg == (pytest.approx(alpha) if alpha is not None else None)
    assert len(a.dark_frames) == ndark
    assert (a.local is None) if nlocal is None else (a.local.shape == (nlocal, 7))
    sec, rot, tx, ty, tilt = first
    assert (a.section[0], a.rot_deg[0], a.shift_xy_px[0, 0], a.shift_xy_px[0, 1], a.tilt_deg[0]) == \
        (sec, pytest.approx(rot), pytest.approx(tx), pytest.approx(ty), pytest.approx(tilt))
    assert np.all(np.diff(a.section) > 0)


def test_local_and_dark_details(realdata):
    a = aretomo.read_aln(realdata / "aretomo/aretomo_local_darkframes.aln")
    assert a.dark_frames[0] == (0, 0, -68.0) and a.dark_frames[-1] == (13, 13, -42.0)
    assert a.thickness_px == 1910 and a.beta_offset_deg == 0.0 and a.num_patches == 16
    np.testing.assert_allclose(a.local[0], [0, 0, -1537.16, -1363.14, -6.93, -36.22, 1.0])
    np.testing.assert_allclose(a.local[-1], [36, 15, 1483.93, 997.39, 12.57, -1.59, 1.0])
    assert len(a.local) == a.n_tilts * a.num_patches
    g = aretomo.read_aln(realdata / "aretomo/aretomo_global_alphaoffset.aln")
    assert g.section[-1] == 60 and g.thickness_px == 2050   # SEC 1..61 in the file, 0-based here


def test_matches_aretomo_outimod_xf(realdata):
    a = aretomo.read_aln(realdata / "aretomo/aretomo_TS_121_v1.0.aln")
    xf = aretomo.aln_to_xf(a)
    ref = imod.read_xf(realdata / "aretomo/aretomo_TS_121_OutImod.xf")
    assert (xf[:, :, :2] - ref[:, :, :2]).abs().max() < 6e-4        # %9.3f rounding
    assert (xf[:, :, 2] - ref[:, :, 2]).abs().max() < 6e-3           # %9.2f rounding
    rot, t = aretomo.xf_to_aln_columns(xf)
    np.testing.assert_allclose(rot, a.rot_deg, atol=1e-9)
    np.testing.assert_allclose(t, a.shift_xy_px, atol=1e-9)


@pytest.mark.parametrize("name", sorted(CASES))
def test_round_trip_exact(realdata, tmp_path, name):
    a = aretomo.read_aln(realdata / "aretomo" / name)
    aretomo.write_aln(tmp_path / "x.aln", a)
    b = aretomo.read_aln(tmp_path / "x.aln")
    for f in ("section", "rot_deg", "gmag", "shift_xy_px", "smean", "sfit", "scale", "base", "tilt_deg"):
        assert np.array_equal(getattr(a, f), getattr(b, f)), f
    assert (b.dark_frames, b.alpha_offset_deg, b.thickness_px) == (a.dark_frames, a.alpha_offset_deg, a.thickness_px)
    assert (a.local is None and b.local is None) or np.array_equal(a.local, b.local)


def test_unknown_layout(tmp_path, realdata):
    text = (realdata / "aretomo/aretomo_v1.3.0_example.aln").read_text().splitlines()
    text.insert(3, "# MagicNewKey = 7")
    p = tmp_path / "new.aln"
    p.write_text("\n".join(text) + "\n")
    with pytest.raises(ParseError, match="unknown .aln header line") as e:
        aretomo.read_aln(p)
    assert e.value.line == 4 and str(p) in str(e.value)


def test_xf_roundtrip_through_aln_columns():
    xf = torch.tensor([[[0.1, 0.99498744, 5.0], [-0.99498744, 0.1, -7.0]]], dtype=torch.float64)
    rot, t = aretomo.xf_to_aln_columns(xf)
    a = aretomo.AlnFile("v2", np.array([0]), rot, np.ones(1), t, *(np.ones(1),) * 4, np.zeros(1))
    torch.testing.assert_close(aretomo.aln_to_xf(a), xf)


def test_write_aln_from_alignment(tmp_path):
    from tomoforge.core.geometry import xf_from_parameters

    g = torch.Generator().manual_seed(2)
    tilts = np.arange(-54.0, 55.0, 3.0)
    xf = xf_from_parameters(torch.full((len(tilts),), 84.2, dtype=torch.float64),
                            30 * torch.randn(len(tilts), 2, generator=g, dtype=torch.float64))
    aln = aretomo.aln_from_alignment(xf, tilts, raw_size_xyz=(4096, 4096, len(tilts) + 2),
                                     sections=np.arange(1, len(tilts) + 1), dark_frames=[(0, 0, -57.0),
                                                                                         (1, len(tilts) + 1, 57.0)],
                                     alpha_offset_deg=1.5, thickness_px=1200)
    aretomo.write_aln(tmp_path / "ts.aln", aln)
    back = aretomo.read_aln(tmp_path / "ts.aln")
    assert back.layout == "v2" and back.section[0] == 1 and back.dark_frames == aln.dark_frames
    assert back.alpha_offset_deg == 1.5 and back.thickness_px == 1200
    got = aretomo.aln_to_xf(back)
    assert (got[..., :2] - xf[..., :2]).abs().max() < 1e-4      # ROT printed to 1e-4 degrees
    assert (got[..., 2] - xf[..., 2]).abs().max() < 0.01        # TX/TY printed to 1e-3 px
    np.testing.assert_allclose(back.tilt_deg, tilts)
