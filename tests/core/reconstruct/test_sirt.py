"""SIRT (matched projector pair, slabs with halo) and the SIRT-like WBP filter."""

from __future__ import annotations

import pytest
import torch
from tests.core.reconstruct.phantom import (
    corr,
    lowpass,
    project_blobs,
    random_alignment,
    random_blobs,
    render_volume,
)

from tomoforge.core.reconstruct import (
    backproject_slab,
    forward_project_slab,
    reconstruct_wbp,
    voxel_to_raw_affine,
)
from tomoforge.core.reconstruct.sirt import reconstruct_sirt

VOL = (32, 48, 64)
IMG = (80, 80)


@pytest.fixture(scope="module")
def case():
    blobs = random_blobs(20, VOL, seed=3)
    tilts = torch.arange(-60.0, 61.0, 3.0)
    xf = random_alignment(tilts, seed=5)
    return project_blobs(*blobs, tilts, xf, IMG), tilts, xf, render_volume(*blobs, VOL)


def wedge_band_power(vol: torch.Tensor, lo: float = 0.03, hi: float = 0.15, max_angle: float = 50.0) -> float:
    """Power in ``lo < |k| <= hi`` cycles/voxel inside the measured wedge (|angle from X| < max_angle)."""
    spec = torch.fft.rfftn(vol.double())
    kz = torch.fft.fftfreq(vol.shape[0], dtype=torch.float64)[:, None, None]
    ky = torch.fft.fftfreq(vol.shape[1], dtype=torch.float64)[None, :, None]
    kx = torch.fft.rfftfreq(vol.shape[2], dtype=torch.float64)[None, None, :]
    k = (kz**2 + ky**2 + kx**2).sqrt()
    ang = torch.rad2deg(torch.atan2(kz.abs(), kx.abs())).expand_as(k)
    return float((spec.abs().square() * ((k > lo) & (k <= hi) & (ang < max_angle))).sum())


def test_projector_pair_is_matched():
    g = torch.Generator().manual_seed(0)
    vol, img = (12, 10, 20), (18, 24)
    tilts = torch.tensor([-50.0, -10.0, 35.0])
    aff = voxel_to_raw_affine(tilts, random_alignment(tilts, seed=3), img, vol, z_shift_px=1.5, x_tilt_deg=3.0)
    x = torch.randn(vol, generator=g, dtype=torch.float64)
    y = torch.randn((3,) + img, generator=g, dtype=torch.float64)
    ax = forward_project_slab(x[:, 2:9], aff, 2, 9, vol, img)
    aty = backproject_slab(y, aff, vol, 2, 9)
    assert abs(float((ax * y).sum()) - float((x[:, 2:9] * aty).sum())) < 1e-9 * float(ax.abs().sum())


def test_sirt_converges_monotonically_and_reconstructs(case):
    stack, tilts, xf, truth = case
    res: list[float] = []
    rec = reconstruct_sirt(stack, tilts, xf, VOL, iterations=8, residuals=res)
    assert len(res) == 9
    assert all(b < a for a, b in zip(res, res[1:], strict=False))
    assert res[-1] < 0.3 * res[0]
    assert corr(lowpass(rec, 0.2), lowpass(truth, 0.2)) >= 0.75
    assert corr(lowpass(rec, 0.2), lowpass(truth.flip(0), 0.2)) < 0.4
    # Slabs with halo rows give the same volume as one slab.
    thin = reconstruct_sirt(stack, tilts, xf, VOL, iterations=8, slab_rows=8)
    assert float((thin - rec).abs().max()) < 1e-3 * float(rec.abs().max())


@pytest.mark.parametrize(("n_iter", "max_ratio"), [(5, 0.8), (10, 1.0)])
def test_sirt_like_filter_matches_sirt_contrast(case, n_iter, max_ratio):
    stack, tilts, xf, _ = case
    wbp = wedge_band_power(reconstruct_wbp(stack, tilts, xf, VOL))
    sirt = wedge_band_power(reconstruct_sirt(stack, tilts, xf, VOL, iterations=n_iter)) / wbp
    fake = wedge_band_power(reconstruct_wbp(stack, tilts, xf, VOL, filter="sirt-like",
                                            sirt_iterations=n_iter)) / wbp
    assert sirt < max_ratio  # few iterations really are low-pass relative to WBP ...
    assert abs(fake / sirt - 1) < 0.10  # ... and the filter reproduces it


def test_aligned_stack_fast_path_is_the_same_projector(case):
    """No rotation in the .xf: WBP and SIRT take the separable sparse-matmul path; same numbers."""
    stack, tilts, _, _ = case
    xf = random_alignment(tilts, axis_deg=0.0, seed=2)
    xf[:, :2, :2] = torch.eye(2, dtype=torch.float64)  # shifts only
    fast = reconstruct_wbp(stack, tilts, xf, VOL)
    slow = reconstruct_wbp(stack, tilts, xf, VOL, force_2d=True)
    assert float((fast - slow).abs().max()) < 1e-4 * float(slow.abs().max())
    r_fast: list[float] = []
    r_slow: list[float] = []
    fast = reconstruct_sirt(stack, tilts, xf, VOL, iterations=3, residuals=r_fast, slab_rows=16)
    slow = reconstruct_sirt(stack, tilts, xf, VOL, iterations=3, residuals=r_slow, slab_rows=16, force_2d=True)
    assert float((fast - slow).abs().max()) < 1e-3 * float(slow.abs().max())
    assert r_fast == pytest.approx(r_slow, rel=1e-4)
    # Integer row shifts: output rows read single image rows, so slabs need no halo and still agree.
    xf[:, :, 2] = xf[:, :, 2].round()
    thin = reconstruct_sirt(stack, tilts, xf, VOL, iterations=3, slab_rows=5)
    whole = reconstruct_sirt(stack, tilts, xf, VOL, iterations=3, slab_rows=VOL[1])
    assert float((thin - whole).abs().max()) < 1e-4 * float(whole.abs().max())
