"""Fiducial-less alignment: patch tracking, the same least-squares solve as beads, and projection matching.

Patches on a grid of the view nearest zero tilt are followed outwards view by view: each patch of the previous
view (rotated so the axis is vertical) is correlated with the same specimen area in the next view, sampled
around the position predicted from the current geometry and stretched by the cosine ratio. The tracks then go
through :func:`tomoforge.core.align.solve.solve_alignment`, which also gives the tilt-angle offset that levels
the specimen (pretilt) and its thickness from the patch heights.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from tomoforge.core.align._threads import single_threaded
from tomoforge.core.align.coarse import align_coarse
from tomoforge.core.align.solve import AlignmentSolution, solve_alignment
from tomoforge.core.align.tracking import _linear_fit, _project
from tomoforge.core.align.warp import bin_images, sample_images
from tomoforge.core.align.xcorr import cross_correlate, find_peak, prepare
from tomoforge.core.geometry import image_center, xf_from_parameters, xf_rotation_deg


@dataclass
class PatchAlignment:
    """Fiducial-less result."""

    solution: AlignmentSolution
    tracks_xy: torch.Tensor  # (v, n, 2) raw px (NaN where lost)
    tilt_axis_initial_deg: float
    binning: int


def _patch_grid(center_xy: np.ndarray, psi: float, size: tuple[int, int], binning: int,
                stretch: float = 1.0) -> torch.Tensor:
    """Raw full-res coordinates ``(n, h, w, 2)`` of patches ``size = (h, w)`` centred at ``center_xy`` ``(n, 2)``:
    offsets are taken along the aligned axes (x perpendicular to the tilt axis, stretched by ``stretch``)."""
    rx = (np.arange(size[1]) - (size[1] - 1) / 2) * binning
    ry = (np.arange(size[0]) - (size[0] - 1) / 2) * binning
    uu, vv = np.meshgrid(rx * stretch, ry, indexing="xy")
    a = math.radians(psi)
    c, s = math.cos(a), math.sin(a)
    gx = c * uu - s * vv
    gy = s * uu + c * vv
    g = np.stack([gx, gy], -1)[None] + center_xy[:, None, None, :]
    return torch.from_numpy(g)


@single_threaded
def track_patches(images: torch.Tensor, tilt_deg: torch.Tensor, xf_coarse: torch.Tensor, *,
                  skip: torch.Tensor | None = None, n_patches: tuple[int, int] = (6, 6), patch_size: int = 64,
                  binning: int | None = None, target_size: int = 512, min_peak: float = 0.12,
                  lowpass: float = 0.15, highpass: float = 0.03, elongation: float = 2.0
                  ) -> tuple[torch.Tensor, int]:
    """Track a grid of patches; returns raw full-res positions ``(v, n, 2)`` (NaN = lost) and the binning.

    patch_size is the width (perpendicular to the axis) in binned pixels; patches are ``elongation`` times
    taller along the tilt axis, where depth causes no parallax, so the positions along the axis (which pin
    the axis angle) come out precise. The grid covers the central 70% of the reference view.
    """
    ph, pw = int(round(patch_size * elongation)), patch_size
    v, h, w = images.shape
    b = binning or max(1, math.ceil(max(h, w) / target_size))
    imgs = bin_images(images.float(), b)
    tilt = torch.as_tensor(tilt_deg, dtype=torch.float64).cpu().numpy()
    skip_np = np.zeros(v, bool) if skip is None else torch.as_tensor(skip, dtype=torch.bool).cpu().numpy()
    psi = float(xf_rotation_deg(xf_coarse[0:1].to(torch.float64))[0])
    center = image_center((h, w)).numpy()
    d_coarse = xf_coarse[:, :, 2].to(torch.float64).cpu().numpy()
    order = [i for i in np.argsort(tilt) if not skip_np[i]]
    ref = min(order, key=lambda i: (abs(tilt[i]), tilt[i]))
    k0 = order.index(ref)
    nx, ny = n_patches
    half = 0.35
    gx, gy = np.meshgrid(np.linspace(-half, half, nx) * w, np.linspace(-half, half, ny) * h, indexing="xy")
    al = np.stack([gx.ravel(), gy.ravel()], 1)  # aligned offsets about the centre at the reference view
    a = math.radians(psi)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    start = (al - d_coarse[ref]) @ rot.T + center
    n = len(start)
    pos = np.full((v, n, 2), np.nan)
    pos[ref] = start
    taper = _cosine_window(ph, pw)
    hb, wb = imgs.shape[-2:]

    def sample(i, centers, stretch):
        g = _patch_grid(centers, psi, (ph, pw), b, stretch)
        gb = ((g - (b - 1) / 2) / b).float()
        inside = ((gb[..., 0] >= 0) & (gb[..., 0] <= wb - 1) & (gb[..., 1] >= 0) & (gb[..., 1] <= hb - 1))
        frac = inside.float().mean(dim=(-2, -1))
        flat = gb.reshape(1, n * ph, pw, 2)
        pat = sample_images(imgs[i:i + 1], flat, float(imgs[i].mean())).reshape(n, ph, pw)
        return pat, frac.numpy()

    for branch in (order[k0 + 1:], order[:k0][::-1]):
        prev = ref
        for i in branch:
            pts, d_fit = _linear_fit(pos, tilt, np.full(v, psi), center)
            d_i = d_coarse[i] + (d_fit[prev] - d_coarse[prev])
            pred = _project(pts, tilt[i], psi, d_i, center)
            have = np.isfinite(pos[prev, :, 0])
            if not have.any():
                break
            s = math.cos(math.radians(tilt[i])) / math.cos(math.radians(tilt[prev]))
            ref_p, f_ref = sample(prev, np.where(have[:, None], pos[prev], center), 1.0)
            mov_p, f_mov = sample(i, np.where(have[:, None], pred, center), s)
            wgt = taper.to(ref_p)
            cc = cross_correlate(prepare(ref_p, wgt), prepare(mov_p, wgt), lowpass, highpass)
            found = 0
            for j in np.nonzero(have & (f_ref > 0.95) & (f_mov > 0.95))[0]:
                t, val = find_peak(cc[j], 0.25 * patch_size)
                if float(val) < min_peak:
                    continue
                tt = np.array([float(t[0]) * s, float(t[1])]) * b
                pos[i, j] = pred[j] - rot @ tt
                found += 1
            if found >= 3:
                prev = i
    return torch.from_numpy(pos), b


def _cosine_window(h: int, w: int) -> torch.Tensor:
    """Separable cosine-edged window ``(h, w)``: flat centre, tapered outer 20%."""
    def one(n):
        x = torch.linspace(-1, 1, n)
        edge = 0.6
        return torch.where(x.abs() <= edge, torch.ones_like(x),
                           0.5 + 0.5 * torch.cos(math.pi * (x.abs() - edge) / (1 - edge)))
    return one(h)[:, None] * one(w)[None, :]


@single_threaded
def align_patches(images: torch.Tensor, tilt_deg: torch.Tensor, tilt_axis_deg: float, *,
                  skip: torch.Tensor | None = None, n_patches: tuple[int, int] = (6, 6), patch_size: int = 64,
                  target_size: int = 512, rotation: str = "one", tilt: str = "fixed",
                  level_specimen: bool = True, xf_coarse: torch.Tensor | None = None,
                  n_iter: int = 3) -> PatchAlignment:
    """Coarse alignment (unless given), patch tracking and the least-squares solve."""
    if not math.isfinite(float(tilt_axis_deg)):
        raise ValueError("tilt axis angle is not a number")
    if xf_coarse is None:
        xf_coarse = align_coarse(images, tilt_deg, tilt_axis_deg, skip=skip, target_size=target_size).xf
    guide, psi = xf_coarse, float(tilt_axis_deg)
    for _ in range(max(1, n_iter)):
        # Patches are sampled along the current axis: re-track with the solved one so a wrong start does
        # not bias the tracks towards itself.
        tracks, b = track_patches(images, tilt_deg, guide, skip=skip, n_patches=n_patches,
                                  patch_size=patch_size, target_size=target_size)
        sol = solve_alignment(tracks, tilt_deg, tuple(images.shape[-2:]), psi, rotation=rotation,
                              tilt=tilt, robust=True, level_specimen=level_specimen)
        psi = float(sol.tilt_axis_deg.median())
        guide = xf_from_parameters(torch.full((images.shape[0],), psi, dtype=torch.float64), sol.shifts_xy)
    return PatchAlignment(solution=sol, tracks_xy=tracks, tilt_axis_initial_deg=float(tilt_axis_deg), binning=b)
