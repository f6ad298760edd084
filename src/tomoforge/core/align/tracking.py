"""Bead tracking through a tilt series (beadtrack-like).

Seeds come from the view nearest zero tilt (plus its neighbours). Views are visited outwards from it; in each,
every bead is looked for near the position predicted from the current geometry: beads and shifts are re-fitted
(linear least squares, core/align/solve.py) as views are added, so the prediction follows each bead's height.
A final solve rejects outliers, and gaps are filled by searching near the solved positions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from tomoforge.core.align._threads import single_threaded
from tomoforge.core.align.beads import BeadMaps, bead_maps, detect_beads, subpixel_peak
from tomoforge.core.align.solve import solve_alignment, solve_points_and_shifts, to_aligned
from tomoforge.core.align.warp import bin_images
from tomoforge.core.geometry import image_center, xf_rotation_deg


@dataclass
class BeadTracks:
    """Landmark model: bead positions per view in raw full-resolution pixels (NaN where not found)."""

    positions_xy: torch.Tensor  # (v, n, 2)
    snr: torch.Tensor  # (v, n) detection strength (NaN where not found)
    seed_view: int
    binning: int


@single_threaded
def track_beads(images: torch.Tensor, tilt_deg: torch.Tensor, xf_coarse: torch.Tensor, diameter_px: float, *,
                skip: torch.Tensor | None = None, max_beads: int | None = None, binning: int | None = None,
                min_ncc: float = 0.35, fill_gaps: bool = True,
                outlier_px: float = 3.0) -> BeadTracks:
    """Track beads of ``diameter_px`` (full-resolution px) through ``images`` ``(v, h, w)``.

    xf_coarse: ``(v, 2, 3)`` prealignment (its rotation gives the tilt axis). skip: ``(v,)`` views not used.
    max_beads: keep the strongest seeds only (target number of beads).
    """
    v, h, w = images.shape
    tilt = torch.as_tensor(tilt_deg, dtype=torch.float64).cpu().numpy()
    skip_np = np.zeros(v, bool) if skip is None else torch.as_tensor(skip, dtype=torch.bool).cpu().numpy()
    b = binning or max(1, int(diameter_px // 8))
    d_b = diameter_px / b
    imgs = bin_images(images.float(), b)
    maps_cache: dict[int, BeadMaps] = {}

    def maps(i: int) -> BeadMaps:
        if i not in maps_cache:
            maps_cache[i] = bead_maps(imgs[i:i + 1], d_b)
        return maps_cache[i]

    def to_full(p):
        return p * b + (b - 1) / 2

    def to_binned(p):
        return (p - (b - 1) / 2) / b

    psi = float(xf_rotation_deg(xf_coarse[0:1].to(torch.float64))[0])
    psi_all = np.full(v, psi)
    center = image_center((h, w)).numpy()
    d_coarse = xf_coarse[:, :, 2].to(torch.float64).cpu().numpy()
    order = [i for i in np.argsort(tilt) if not skip_np[i]]
    if not order:
        raise ValueError("every view is skipped")
    ref = min(order, key=lambda i: (abs(tilt[i]), tilt[i]))

    # Seeds: the reference view, plus beads seen only on its neighbours (mapped by the coarse geometry).
    seeds, seed_snr = detect_beads(imgs[ref], d_b, maps=maps(ref))
    seeds = to_full(seeds.numpy())
    k = order.index(ref)
    for j in (order[k - 1] if k > 0 else None, order[k + 1] if k + 1 < len(order) else None):
        if j is None:
            continue
        extra, extra_snr = detect_beads(imgs[j], d_b, maps=maps(j))
        if len(extra) == 0:
            continue
        mapped = _map_flat(to_full(extra.numpy()), j, ref, tilt, psi, d_coarse, center)
        if len(seeds):
            far = np.min(np.linalg.norm(mapped[:, None] - seeds[None], axis=-1), axis=1) > diameter_px
        else:
            far = np.ones(len(mapped), bool)
        seeds = np.concatenate([seeds, mapped[far]]) if len(seeds) else mapped[far]
        seed_snr = torch.cat([seed_snr, extra_snr[torch.from_numpy(far)]])
    inside = ((seeds > diameter_px) & (seeds < np.array([w, h]) - diameter_px)).all(1) if len(seeds) else []
    seeds, seed_snr = seeds[inside], seed_snr[torch.as_tensor(inside)]
    idx = torch.argsort(seed_snr, descending=True).numpy()
    if max_beads is not None:
        idx = idx[:max_beads]
    seeds, seed_snr = seeds[idx], seed_snr[idx].numpy()
    n = len(seeds)
    pos = np.full((v, n, 2), np.nan)
    snr = np.full((v, n), np.nan)
    if n == 0:
        return BeadTracks(torch.from_numpy(pos), torch.from_numpy(snr), int(ref), b)
    pos[ref] = seeds
    snr[ref] = seed_snr
    # Tracking outward from the reference view, one branch after the other.
    for branch in (order[k + 1:], order[:k][::-1]):
        prev = ref
        for i in branch:
            pts, d_fit = _linear_fit(pos, tilt, psi_all, center)
            # Shift of the new view: coarse, corrected by how far the fitted shifts strayed from it.
            d_i = d_coarse[i] + (d_fit[prev] - d_coarse[prev])
            pred = _project(pts, tilt[i], psi, d_i, center)
            radius = max(1.5 * d_b, 4.0)
            found, strength = _search(maps(i), to_binned(pred), radius, min_ncc)
            ok = np.isfinite(found[:, 0])
            base = np.nanmedian(snr, axis=0)
            ok &= strength >= np.maximum(0.4 * base, 3.0)
            pos[i, ok] = to_full(found[ok])
            snr[i, ok] = strength[ok]
            _drop_collisions(pos[i], snr[i], diameter_px * 0.6)
            if ok.sum() >= 2:
                prev = i
    positions = torch.from_numpy(pos)
    if fill_gaps and np.isfinite(pos).any():
        positions, snr = _clean_and_fill(positions, snr, tilt, (h, w), psi, maps, to_full, to_binned, d_b,
                                         min_ncc, outlier_px, skip_np)
    return BeadTracks(positions, torch.from_numpy(snr), int(ref), b)


def _map_flat(xy, src, dst, tilt, psi, d, center):
    """Map raw positions from view ``src`` to ``dst`` assuming beads at Z = 0 (cosine stretch)."""
    al = to_aligned(xy[None], np.array([psi]), np.ones(1), center)[0] + d[src]  # = P X
    al[:, 0] *= math.cos(math.radians(tilt[dst])) / math.cos(math.radians(tilt[src]))
    return _from_aligned(al - d[dst], psi, center)


def _from_aligned(al, psi, center):
    a = math.radians(psi)
    c, s = math.cos(a), math.sin(a)
    return np.stack([c * al[:, 0] - s * al[:, 1], s * al[:, 0] + c * al[:, 1]], 1) + center


def _project(pts, tilt_deg, psi, d, center):
    t = math.radians(tilt_deg)
    al = np.stack([pts[:, 0] * math.cos(t) + pts[:, 2] * math.sin(t), pts[:, 1]], 1) - d
    return _from_aligned(al, psi, center)


def _linear_fit(pos, tilt, psi_all, center):
    seen = np.isfinite(pos).all(-1)
    al = to_aligned(np.where(seen[..., None], pos, 0.0), psi_all, np.ones(len(tilt)), center)
    pts, d, _ = solve_points_and_shifts(al, tilt, seen.astype(float))
    return pts, d


def _search(mp: BeadMaps, pred_b: np.ndarray, radius: float, min_ncc: float):
    """Best bead match within ``radius`` of each prediction (binned px): positions and SNR (NaN if none)."""
    score = mp.snr[0] * (mp.ncc[0] >= min_ncc)
    hh, ww = score.shape
    r = int(math.ceil(radius))
    out = np.full((len(pred_b), 2), np.nan)
    strength = np.zeros(len(pred_b))
    for j, (x, y) in enumerate(pred_b):
        if not (np.isfinite(x) and np.isfinite(y)):
            continue
        xi, yi = int(round(x)), int(round(y))
        x0, x1, y0, y1 = max(xi - r, 1), min(xi + r + 1, ww - 1), max(yi - r, 1), min(yi + r + 1, hh - 1)
        if x1 - x0 < 3 or y1 - y0 < 3:
            continue
        win = score[y0:y1, x0:x1]
        yy, xx = torch.meshgrid(torch.arange(y0, y1), torch.arange(x0, x1), indexing="ij")
        win = torch.where((xx - x) ** 2 + (yy - y) ** 2 <= radius ** 2, win, torch.zeros_like(win))
        kk = int(torch.argmax(win))
        py, px = divmod(kk, x1 - x0)
        py, px = py + y0, px + x0
        val = float(score[py, px])
        if val <= 0 or px in (x0, x1 - 1) or py in (y0, y1 - 1):
            continue  # nothing, or the best is on the window's edge (a neighbour, not this bead)
        out[j] = subpixel_peak(score, torch.tensor([[px, py]])).numpy()[0]
        strength[j] = val
    return out, strength


def _drop_collisions(pos_v: np.ndarray, snr_v: np.ndarray, min_dist: float) -> None:
    """Two beads claiming the same spot: keep neither (in place)."""
    ok = np.isfinite(pos_v[:, 0])
    idx = np.nonzero(ok)[0]
    if len(idx) < 2:
        return
    dist = np.linalg.norm(pos_v[idx, None] - pos_v[None, idx], axis=-1)
    np.fill_diagonal(dist, np.inf)
    bad = idx[(dist < min_dist).any(1)]
    pos_v[bad] = np.nan
    snr_v[bad] = np.nan


def _clean_and_fill(positions, snr, tilt, shape, psi, maps, to_full, to_binned, d_b, min_ncc, outlier_px, skip):
    """Solve, drop outliers, search again near the solved positions of missing points; twice."""
    pos = positions.numpy().copy()
    for _ in range(2):
        seen = np.isfinite(pos).all(-1)
        if (seen.sum(0) >= 2).sum() < 3:
            break
        try:
            sol = solve_alignment(torch.from_numpy(pos), torch.from_numpy(tilt), shape, psi, robust=True,
                                  level_specimen=False)
        except ValueError:
            break
        psi = float(sol.tilt_axis_deg.median())
        res = np.linalg.norm(sol.residuals_xy.numpy(), axis=-1)
        sd = np.nanstd(res)
        bad = seen & (res > max(outlier_px, 4 * sd))
        pos[bad] = np.nan
        snr[bad] = np.nan
        pred = sol.predicted_xy.numpy()
        for i in range(len(tilt)):
            if skip[i]:
                continue
            miss = ~np.isfinite(pos[i]).all(-1) & (np.isfinite(pos).all(-1).sum(0) >= 3)
            if not miss.any():
                continue
            found, strength = _search(maps(i), to_binned(pred[i, miss]), max(0.6 * d_b, 2.5), min_ncc)
            base = np.nanmedian(snr[:, miss], axis=0)
            ok = np.isfinite(found[:, 0]) & (strength >= np.maximum(0.4 * base, 3.0))
            ff = to_full(found)
            ok &= np.linalg.norm(ff - pred[i, miss], axis=1) <= max(outlier_px, 4 * sd)
            sub = np.nonzero(miss)[0][ok]
            pos[i, sub] = ff[ok]
            snr[i, sub] = strength[ok]
    return torch.from_numpy(pos), snr
