"""Synthetic tilt series for alignment tests: beads and protein-like blobs projected with core.geometry."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from tomoforge.core.geometry import project_points, xf_from_parameters


@dataclass
class Series:
    images: torch.Tensor  # (v, h, w)
    tilt_deg: torch.Tensor  # (v,)
    xf: torch.Tensor  # (v, 2, 3) true raw -> aligned
    tilt_axis_deg: float
    beads_xyz: torch.Tensor  # (n, 3) px about the volume centre
    beads_raw: torch.Tensor  # (v, n, 2) true raw positions
    blobs_xyz: torch.Tensor
    bead_diameter_px: float


def _splat(points: torch.Tensor, weights: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """Bilinear splat of ``points`` ``(v, n, 2)`` with ``weights`` ``(n,)`` into ``(v, h, w)``."""
    v, n, _ = points.shape
    h, w = shape
    out = torch.zeros(v, h * w, dtype=torch.float64)
    x0 = torch.floor(points[..., 0]).long()
    y0 = torch.floor(points[..., 1]).long()
    fx = points[..., 0] - x0
    fy = points[..., 1] - y0
    for dx, dy, wt in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
        xi, yi = x0 + dx, y0 + dy
        ok = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
        val = torch.where(ok, wt * weights[None, :], torch.zeros_like(wt))
        idx = torch.where(ok, yi * w + xi, torch.zeros_like(xi))
        out.scatter_add_(1, idx, val)
    return out.reshape(v, h, w)


def _kernel_ft(shape, profile) -> torch.Tensor:
    h, w = shape
    yy = torch.fft.fftfreq(h, 1 / h, dtype=torch.float64)[:, None]
    xx = torch.fft.fftfreq(w, 1 / w, dtype=torch.float64)[None, :]
    return torch.fft.rfft2(profile(torch.sqrt(xx ** 2 + yy ** 2)))


def render(raw_xy: torch.Tensor, amp: torch.Tensor, shape, profile) -> torch.Tensor:
    dens = _splat(raw_xy, amp, shape)
    return torch.fft.irfft2(torch.fft.rfft2(dens) * _kernel_ft(shape, profile), s=shape)


def make_series(seed: int = 0, size: int = 256, tilt_axis_deg: float = 85.0, tilt_range=(-60, 60),
                step: float = 3.0, n_beads: int = 24, n_blobs: int = 4000, bead_diameter_px: float = 8.0,
                thickness_px: float = 60.0, shift_sigma_px: float = 6.0, noise: float = 0.3,
                blob_amp: float = 0.25, bead_amp: float = 2.0, pretilt_deg: float = 0.0,
                dark_views: tuple[int, ...] = ()) -> Series:
    g = torch.Generator().manual_seed(seed)
    tilt = torch.arange(tilt_range[0], tilt_range[1] + 1e-6, step, dtype=torch.float64)
    v = tilt.numel()
    half = 0.38 * size
    xy = (torch.rand(n_beads, 2, generator=g, dtype=torch.float64) * 2 - 1) * half
    z = torch.where(torch.rand(n_beads, generator=g) < 0.5, -0.5, 0.5).to(torch.float64) * thickness_px
    beads = torch.cat([xy, z[:, None]], 1)
    blobs = torch.cat([(torch.rand(n_blobs, 2, generator=g, dtype=torch.float64) * 2 - 1) * 0.62 * size,
                       (torch.rand(n_blobs, 1, generator=g, dtype=torch.float64) - 0.5) * thickness_px], 1)
    if pretilt_deg:
        from tomoforge.core.geometry import rotation_y
        r = rotation_y(pretilt_deg)
        beads, blobs = beads @ r.T, blobs @ r.T
    shifts = torch.randn(v, 2, generator=g, dtype=torch.float64) * shift_sigma_px
    xf = xf_from_parameters(torch.full((v,), tilt_axis_deg, dtype=torch.float64), shifts)
    shape = (size, size)
    bead_raw = project_points(beads, tilt, xf, shape)
    blob_raw = project_points(blobs, tilt, xf, shape)
    r = bead_diameter_px / 2
    bead_prof = lambda rho: torch.sqrt((r ** 2 - rho ** 2).clamp_min(0)) / r  # noqa: E731
    blob_sig = 1.8
    blob_prof = lambda rho: torch.exp(-0.5 * (rho / blob_sig) ** 2)  # noqa: E731
    blob_amp_t = blob_amp * (0.5 + torch.rand(n_blobs, generator=g, dtype=torch.float64))
    img = -render(bead_raw, torch.full((n_beads,), bead_amp, dtype=torch.float64), shape, bead_prof)
    img = img - render(blob_raw, blob_amp_t, shape, blob_prof)
    img = img + noise * torch.randn(img.shape, generator=g, dtype=torch.float64)
    for i in dark_views:
        img[i] = 0.01 * torch.randn(shape, generator=g, dtype=torch.float64)
    return Series(images=img.float(), tilt_deg=tilt, xf=xf, tilt_axis_deg=tilt_axis_deg, beads_xyz=beads,
                  beads_raw=bead_raw, blobs_xyz=blobs, bead_diameter_px=bead_diameter_px)


def shift_error_rms(est_xf: torch.Tensor, true_xf: torch.Tensor, tilt_deg: torch.Tensor, views=None) -> float:
    """RMS per-view shift error (px) after removing a global 3D translation of the specimen.

    Moving the whole specimen by (X, Y, Z) changes every view's aligned shift by (X cos t + Z sin t, Y): the
    reconstruction is then only translated, so this gauge is not an alignment error.
    """
    d = (est_xf[:, :, 2] - true_xf[:, :, 2]).to(torch.float64)
    t = torch.deg2rad(torch.as_tensor(tilt_deg, dtype=torch.float64))
    if views is not None:
        d, t = d[views], t[views]
    basis = torch.stack([torch.cos(t), torch.sin(t)], 1)
    coef = torch.linalg.lstsq(basis, d[:, 0:1]).solution
    ex = d[:, 0] - (basis @ coef)[:, 0]
    ey = d[:, 1] - d[:, 1].mean()
    return float((ex ** 2 + ey ** 2).mean().sqrt())
