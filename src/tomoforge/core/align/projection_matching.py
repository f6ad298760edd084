"""Projection matching (AreTomo-style): refine per-view shifts against reprojections of the specimen.

Pairwise correlation of stretched neighbours is exact only for a flat specimen: in a thick one, layers at
height ``z`` move by ``z (tan a - tan b)`` between views, and the peak may follow the top layer on one side of
zero tilt and the bottom layer on the other, which bends the shifts by tens of pixels at high tilt. A
reprojection of the specimen reconstructed from the other views holds every layer in its place, so matching a
view to it has no such bias.

Work happens in the aligned frame (tilt axis vertical) at a binning, where every row is an independent 2D
parallel-beam problem: specimen point ``(X, Z)`` appears at ``x = X cos t + Z sin t`` (core/geometry.py).
Back-projecting ramp-filtered view ``j`` through a slab ``T`` thick and reprojecting it at tilt ``i`` needs
no volume: it is view ``j`` read at ``x cos(t_j) / cos(t_i)`` and averaged over a window
``T |sin(t_j - t_i)| / cos(t_i)`` wide, one prefix-sum lookup per pixel. Views are taken in order of
increasing ``|tilt|``: each is matched to the reprojection of those already refined, then joins them. Later
rounds match every view against all the others (leave-one-out); their updates are stripped of the parts a
3D translation of the specimen would cause (``x = a cos t + b sin t``, constant ``y``), which only move the
tomogram.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from tomoforge.core.align._threads import single_threaded
from tomoforge.core.align.warp import warp_with_edge_distance
from tomoforge.core.align.xcorr import cross_correlate, find_peak, prepare


@dataclass
class ProjectionMatch:
    """Result of :func:`refine_by_projection_matching` (views in the input order)."""

    xf: torch.Tensor  # (v, 2, 3) refined raw -> aligned
    shifts_xy: torch.Tensor  # (v, 2) the xf shift column, full-resolution pixels
    peak: torch.Tensor  # (v,) normalised correlation with the reprojection (NaN: not matched)
    binning: int
    thickness_px: float  # specimen thickness measured at the end, full-resolution pixels


def ramp_filter(views: torch.Tensor, cutoff: float = 0.45) -> torch.Tensor:
    """Ramp filter along x of ``(..., h, w)`` (zero padded to twice the width), rolled off to zero at
    ``cutoff`` cycles/pixel with a cosine edge."""
    w = views.shape[-1]
    n = 2 * w
    k = torch.fft.rfftfreq(n, device=views.device)
    roll = torch.where(k < cutoff, 0.5 + 0.5 * torch.cos(torch.pi * k / cutoff), torch.zeros_like(k))
    filt = (k * roll).to(views.dtype)
    filt[0] = 0.25 / n  # the discrete ramp's DC term
    return torch.fft.irfft(torch.fft.rfft(views, n=n) * filt, n=n)[..., :w]


def prefix_sums(rows: torch.Tensor) -> torch.Tensor:
    """``(..., w)`` -> ``(..., w + 1)`` cumulative sums starting at 0: the integral of the piecewise-constant
    row at pixel edges (summed in float64, kept in float32: differences a pixel apart stay exact to ~1e-6)."""
    s = torch.cumsum(rows.to(torch.float64), -1)
    return torch.nn.functional.pad(s, (1, 0)).to(torch.float32)


def box_average(prefix: torch.Tensor, centre: torch.Tensor, width: torch.Tensor) -> torch.Tensor:
    """Mean of the rows over ``[centre - width/2, centre + width/2]`` (pixel units, ``width >= 1``); zero
    outside the row. prefix: ``(j, h, w + 1)`` from :func:`prefix_sums`; centre ``(j, n)``; width ``(j,)``.

    With ``width = 1`` this is linear interpolation of the samples at ``centre``.
    Returns ``(j, h, n)``.
    """
    j, h, w1 = prefix.shape
    half = (width[:, None] / 2).expand_as(centre)

    def integral(x):  # prefix read at pixel-edge coordinate x + 0.5, linear between edges, flat outside
        e = (x + 0.5).clamp(0, w1 - 1)
        i0 = e.floor().long().clamp(0, w1 - 2)
        f = (e - i0).to(prefix.dtype)[:, None, :].expand(j, h, -1)
        idx = i0[:, None, :].expand(j, h, -1)
        return torch.lerp(torch.gather(prefix, 2, idx), torch.gather(prefix, 2, idx + 1), f)

    return (integral(centre + half) - integral(centre - half)) / width.to(prefix.dtype)[:, None, None]


def reproject_views(prefix: torch.Tensor, tilt_src_deg: torch.Tensor, tilt_deg: float, thickness: float,
                    width: int, centre_z: float = 0.0) -> torch.Tensor:
    """Sum over source views ``j`` of their back-projection through a slab ``thickness`` pixels thick
    centred at height ``centre_z``, reprojected at ``tilt_deg``: ``(h, width)`` (divided by the thickness).
    prefix: ``(j, h, w + 1)``."""
    ti = math.radians(tilt_deg)
    tj = torch.deg2rad(tilt_src_deg.to(torch.float64))
    scale = torch.cos(tj) / math.cos(ti)
    box = (thickness * torch.sin(tj - ti).abs() / math.cos(ti)).clamp_min(1.0)
    c_out = (width - 1) / 2
    c_in = (prefix.shape[-1] - 2) / 2
    x = torch.arange(width, dtype=torch.float64) - c_out
    centre = scale[:, None] * x[None, :] + c_in + (centre_z * torch.sin(tj - ti) / math.cos(ti))[:, None]
    return box_average(prefix, centre, box).sum(0)


def backproject_rows(filtered: torch.Tensor, tilt_deg: torch.Tensor, depth: int) -> torch.Tensor:
    """Back-projection ``(depth, h, w)`` of ramp-filtered aligned views ``(v, h, w)`` (heights about the axis)."""
    v, h, w = filtered.shape
    z = torch.arange(depth, dtype=torch.float64) - (depth - 1) / 2
    x = torch.arange(w, dtype=torch.float64) - (w - 1) / 2
    out = torch.zeros(depth, h, w, dtype=filtered.dtype)
    padded = torch.nn.functional.pad(filtered, (1, 1))
    for i in range(v):
        t = math.radians(float(tilt_deg[i]))
        cols = (x[None, :] * math.cos(t) + z[:, None] * math.sin(t) + (w - 1) / 2 + 1).clamp(0, w + 1)
        i0 = cols.floor().long().clamp(0, w)
        f = (cols - i0).to(filtered.dtype)
        row = padded[i]
        out += (row[:, i0] * (1 - f) + row[:, i0 + 1] * f).permute(1, 0, 2)
    return out


def measure_thickness(volume: torch.Tensor, margin_fraction: float = 0.15) -> tuple[float, float]:
    """Centre and thickness (voxels, heights about the volume centre) of the specimen in a back-projection
    ``(d, h, w)`` of a level slab: the span where the per-slice variance (central columns) rises above the
    empty-slab floor by more than a fifth of its range."""
    d, _, w = volume.shape
    m = int(margin_fraction * w)
    prof = volume[:, :, m:w - m].to(torch.float64).var(dim=(1, 2))
    prof = torch.nn.functional.avg_pool1d(prof[None, None], 5, 1, 2, count_include_pad=False)[0, 0]
    floor, top = float(prof.quantile(0.1)), float(prof.max())
    above = torch.nonzero(prof > floor + 0.2 * (top - floor)).flatten()
    if len(above) == 0:
        return 0.0, float(d)
    lo, hi = float(above[0]), float(above[-1])
    return (lo + hi) / 2 - (d - 1) / 2, hi - lo + 1


def _remove_translation(delta: torch.Tensor, tilt_deg: torch.Tensor, use: torch.Tensor) -> torch.Tensor:
    """``delta`` ``(v, 2)`` minus its least-squares 3D-translation part (x: a cos t + b sin t; y: constant)."""
    t = torch.deg2rad(tilt_deg.to(torch.float64))
    basis = torch.stack([torch.cos(t), torch.sin(t)], 1)
    out = delta.clone()
    if int(use.sum()) >= 3:
        coef = torch.linalg.lstsq(basis[use], delta[use, 0:1]).solution
        out[:, 0] -= (basis @ coef)[:, 0]
    out[:, 1] -= delta[use, 1].mean()
    return out


@single_threaded
def refine_by_projection_matching(images: torch.Tensor, tilt_deg: torch.Tensor, xf: torch.Tensor, *,
                                  skip: torch.Tensor | None = None, thickness_px: float | None = None,
                                  binning: int | None = None, target_size: int = 256, rounds: int = 3,
                                  lowpass: float = 0.2, highpass: float = 0.02, max_shift_fraction: float = 0.1,
                                  min_reliable: float = 0.3, level_deg: float = 0.0,
                                  outward: bool = True) -> ProjectionMatch:
    """Refine the shifts of ``xf`` ``(v, 2, 3)`` for raw ``images`` ``(v, h, w)`` at ``tilt_deg`` ``(v,)``.

    Rotation and magnification in ``xf`` are kept; only the shift column changes. thickness_px: the slab
    the reprojections assume (full-resolution pixels; default half the larger image side: too thin a slab
    cuts layers off, too thick only blurs). level_deg: tilt offset that makes the slab flat (a lamella's
    pretilt, negated). outward=False skips the outward pass (to continue an earlier refinement): every
    round is then leave-one-out. rounds: 1 = the outward pass only; each
    further round matches every view against all the others. Only image areas that most reference views
    saw (``min_reliable`` of them) are compared. Skipped views are neither used nor moved.
    """
    v, h, w = images.shape
    tilt = torch.as_tensor(tilt_deg, dtype=torch.float64).cpu()
    skip = torch.zeros(v, dtype=torch.bool) if skip is None else torch.as_tensor(skip, dtype=torch.bool).cpu()
    use = [i for i in range(v) if not skip[i]]
    b = binning or max(1, math.ceil(max(h, w) / target_size))
    hb, wb = h // b, w // b
    slab_px = (float(thickness_px) if thickness_px else 0.5 * max(h, w)) / b  # binned
    xf = torch.as_tensor(xf, dtype=torch.float64).cpu().clone()
    img = images.float()
    max_shift = max_shift_fraction * wb
    peak = torch.full((v,), float("nan"), dtype=torch.float64)
    aligned = torch.zeros(v, hb, wb)
    soft = torch.zeros(v, hb, wb)
    data = torch.zeros(v, hb, wb + 1)  # prefix sums of the filtered views
    cover = torch.zeros(v, 1, wb + 1)  # prefix sums of each view's valid columns

    filtered = torch.zeros(v, hb, wb)

    def load(i: int) -> None:
        a, dist = warp_with_edge_distance(img[i:i + 1], xf[i:i + 1], b)
        a, valid = a[0], (dist[0] > 2).float()
        s = _soft(valid)
        mean = (a * valid).sum() / valid.sum().clamp_min(1)
        aligned[i], soft[i] = a, s
        filtered[i] = ramp_filter((a - mean) * s)
        data[i] = prefix_sums(filtered[i])
        cover[i] = prefix_sums(valid.mean(0, keepdim=True))

    def match(i: int, refs: list[int]) -> torch.Tensor:
        """Aligned-frame shift (full-resolution px) that moves view i onto the reprojection of ``refs``."""
        idx = torch.tensor(refs)
        # in the frame where the slab is flat, tilts are t + level
        t_ref, t_i = tilt[idx] + level_deg, float(tilt[i]) + level_deg
        # views whose back-projection reaches view i blurred wider than the high-pass keeps add nothing
        spread = slab_px * torch.sin(torch.deg2rad(t_ref - t_i)).abs() / math.cos(math.radians(t_i))
        near = spread <= 4.0 / max(highpass, 1e-3)
        idx, t_ref = idx[near], t_ref[near]
        ref = reproject_views(data[idx], t_ref, t_i, slab_px, wb).float()
        seen = reproject_views(cover[idx], t_ref, t_i, slab_px, wb).float() / len(idx)
        window = _smoothstep(seen, min_reliable, min(1.0, min_reliable + 0.15)) * soft[i]
        if float(window.sum()) < 0.05 * hb * wb:
            return torch.zeros(2, dtype=torch.float64)
        cc = cross_correlate(prepare(ref, window), prepare(aligned[i], window), lowpass, highpass)
        t, val = find_peak(cc, max_shift)
        peak[i] = float(val)
        return t * b

    def measured_thickness() -> float:
        """Specimen thickness (full-resolution px) from a back-projection of a few rows of the levelled slab."""
        rows = filtered[use][:, ::max(1, hb // 32)]
        _, th = measure_thickness(backproject_rows(rows, tilt[use] + level_deg, depth=max(hb, wb)))
        return th * b

    for i in use:
        load(i)
    mask = torch.zeros(v, dtype=torch.bool)
    mask[use] = True
    if outward:
        order = sorted(use, key=lambda i: (abs(float(tilt[i])), float(tilt[i])))
        for k, i in enumerate(order[1:], start=1):
            xf[i, :, 2] += match(i, order[:k])
            load(i)
    for _ in range(max(0, rounds - 1) if outward else rounds):
        step = torch.zeros(v, 2, dtype=torch.float64)
        for i in use:
            step[i] = match(i, [j for j in use if j != i])
        step = _remove_translation(step, tilt, mask)
        step[~mask] = 0
        xf[:, :, 2] += step
        for i in use:
            load(i)
    return ProjectionMatch(xf=xf, shifts_xy=xf[:, :, 2].clone(), peak=peak, binning=b,
                           thickness_px=measured_thickness())


def _soft(mask: torch.Tensor, width: int = 8) -> torch.Tensor:
    """Mask ``(h, w)`` eroded into a smooth ramp ``width`` pixels wide along x (the filter's direction)."""
    k = torch.hann_window(2 * width + 1, periodic=False, dtype=mask.dtype)
    k = k / k.sum()
    sm = torch.nn.functional.conv1d(mask[:, None, :], k[None, None, :], padding=width)[:, 0, :]
    return _smoothstep(sm, 0.5, 1.0)


def _smoothstep(x: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    t = ((x - lo) / max(hi - lo, 1e-6)).clamp(0, 1)
    return t * t * (3 - 2 * t)
