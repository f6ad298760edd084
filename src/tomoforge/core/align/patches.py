"""Fiducial-less alignment: patch tracking, the same least-squares solve as beads, and projection matching.

Patches on a grid of the view nearest zero tilt are followed outwards view by view: each patch of the previous
view (rotated so the axis is vertical) is correlated with the same specimen area in the next view, sampled
around the position predicted from the current geometry and stretched by the cosine ratio. The tracks then go
through :func:`tomoforge.core.align.solve.solve_alignment`; :func:`level_one_layer` then gives the tilt-angle
offset that levels the specimen (pretilt) and its thickness from the patch heights.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import torch

from tomoforge.core.align._threads import single_threaded
from tomoforge.core.align.axis import minimise_golden
from tomoforge.core.align.coarse import align_coarse
from tomoforge.core.align.solve import AlignmentSolution, solve_alignment, solve_points_and_shifts, to_aligned
from tomoforge.core.align.tracking import _linear_fit, _project
from tomoforge.core.align.warp import bin_images, sample_images
from tomoforge.core.align.xcorr import cross_correlate, find_peak, prepare
from tomoforge.core.geometry import image_center, rotation_y, xf_from_parameters, xf_rotation_deg


@dataclass
class PatchAlignment:
    """Fiducial-less result."""

    solution: AlignmentSolution
    tracks_xy: torch.Tensor  # (v, n, 2) raw px (NaN where lost)
    tilt_axis_initial_deg: float
    binning: int
    axis_sd_deg: float = float("nan")  # bootstrap spread of the axis the tracks give (over resampled tracks)
    axis_kept: bool = False  # True: the tracks could not pin the axis, so the starting one was kept


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
                  lowpass: float = 0.15, highpass: float = 0.03, elongation: float = 5.0,
                  max_step_dev: float = 1.5
                  ) -> tuple[torch.Tensor, int]:
    """Track a grid of patches; returns raw full-res positions ``(v, n, 2)`` (NaN = lost) and the binning.

    ``n`` counts track pieces: a patch whose step along the axis disagrees with the other patches' by more
    than ``max_step_dev`` binned px (or 3 robust SDs) is cut there and followed on as a new piece.
    patch_size is the width (perpendicular to the axis) in binned pixels; patches are ``elongation`` times
    taller along the tilt axis (at most 80% of the image), where depth causes no parallax, so the positions
    along the axis (which pin the axis angle) come out precise: on a thick crowded specimen a 96 px tall
    patch's step along the axis scatters by ~1.4 px, a 256 px one by ~0.1 px. The grid spans 70% of the
    reference view across the axis, and along it as far as the patches stay inside.
    """
    v, h, w = images.shape
    b = binning or max(1, math.ceil(max(h, w) / target_size))
    ph, pw = min(int(round(patch_size * elongation)), int(0.8 * min(h, w) / b)), patch_size
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
    # tall patches must stay inside the image along the axis
    half_y = min(0.35, max(0.0, 0.5 - (ph * b / 2 + 4) / min(h, w)))
    gx, gy = np.meshgrid(np.linspace(-0.35, 0.35, nx) * w, np.linspace(-half_y, half_y, ny) * h, indexing="xy")
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

    # Columns of ``pos`` are track pieces. A patch whose step disagrees with the others (a jump to other
    # material: there is no parallax along the axis, so all patches move alike in y) is cut there, and a new
    # piece starts where the old one's point projects: a jump would otherwise stay in every later view.
    for branch in (order[k0 + 1:], order[:k0][::-1]):
        prev = ref
        cur = np.arange(n)  # the newest piece of each grid patch
        basis = np.arange(n)  # the piece whose point predicts a piece seen in fewer than 3 views
        for i in branch:
            pts, d_fit = _linear_fit(pos, tilt, np.full(v, psi), center)
            d_i = d_coarse[i] + (d_fit[prev] - d_coarse[prev])
            cnt = np.isfinite(pos[:, cur, 0]).sum(0)
            use = np.where(cnt >= 3, cur, basis)
            lost = ~np.isfinite(pos[prev, cur, 0])
            if lost.any():
                # restart lost patches where their point lies in ``prev``: move a bare anchor, or begin a piece
                anchor = _project(pts[use[lost]], tilt[prev], psi, d_fit[prev], center)
                for k, xy in zip(np.nonzero(lost)[0], anchor, strict=True):
                    if cnt[k] > 1:
                        pos = np.concatenate([pos, np.full((v, 1, 2), np.nan)], 1)
                        basis[k], cur[k] = use[k], pos.shape[1] - 1
                    pos[:, cur[k]] = np.nan
                    pos[prev, cur[k]] = xy
                cnt = np.isfinite(pos[:, cur, 0]).sum(0)
            pred = _project(pts[use], tilt[i], psi, d_i, center)
            s = math.cos(math.radians(tilt[i])) / math.cos(math.radians(tilt[prev]))
            ref_p, f_ref = sample(prev, pos[prev, cur], 1.0)
            mov_p, f_mov = sample(i, pred, s)
            wgt = taper.to(ref_p)
            cc = cross_correlate(prepare(ref_p, wgt), prepare(mov_p, wgt), lowpass, highpass)
            step = np.full((n, 2), np.nan)
            for j in np.nonzero((f_ref > 0.95) & (f_mov > 0.95))[0]:
                t, val = find_peak(cc[j], 0.25 * patch_size)
                if float(val) >= min_peak:
                    step[j] = np.array([float(t[0]) * s, float(t[1])]) * b
            ok = np.isfinite(step[:, 0])
            if ok.sum() >= 3:
                # along the axis compare the moves from ``prev`` (the prediction's errors differ per patch)
                move = step.copy()
                move[:, 1] = ((pred - pos[prev, cur]) @ rot)[:, 1] - step[:, 1]
                ok &= _consistent_steps(move, cnt, b * max_step_dev)
            for j in np.nonzero(ok)[0]:
                pos[i, cur[j]] = pred[j] - rot @ step[j]
            if ok.sum() >= 3:
                prev = i
    keep = np.isfinite(pos[..., 0]).sum(0) >= 2
    return torch.from_numpy(pos[:, keep]), b


def _consistent_steps(step: np.ndarray, n_seen: np.ndarray, tol: float) -> np.ndarray:
    """Patch moves ``(n, 2)`` (aligned frame: x from the prediction, y from the previous view) that agree.

    Along the axis (y) all patches move alike; across it (x) a patch's height is only known once it has been
    seen in 3 views, so x is checked only then (the spread there is parallax of a badly known height).
    """
    ok = np.isfinite(step[:, 0])
    dev = step[ok] - np.median(step[ok], 0)
    mad = 1.4826 * np.median(np.abs(dev), 0)
    good = np.abs(dev[:, 1]) <= max(tol, 3 * mad[1])
    good &= (np.abs(dev[:, 0]) <= max(2 * tol, 4 * mad[0])) | (n_seen[ok] < 3)
    out = np.zeros(len(step), bool)
    out[np.nonzero(ok)[0][good]] = True
    return out


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
                  n_iter: int = 3, max_axis_sd_deg: float | None = 0.25) -> PatchAlignment:
    """Coarse alignment (unless given), patch tracking and the least-squares solve.

    With one axis for all views (``rotation="one"``), the axis the tracks give is kept only when its bootstrap
    spread over resampled tracks is at most ``max_axis_sd_deg``; otherwise the solve is redone with the
    starting axis fixed. Patch tracks of a thick, crowded specimen follow a mix of layers and can pull the
    axis several degrees off while the starting (mdoc or refined) axis is good to a degree.
    """
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
                              tilt=tilt, robust=True, level_specimen=False)
        psi = float(sol.tilt_axis_deg.median())
        guide = xf_from_parameters(torch.full((images.shape[0],), psi, dtype=torch.float64), sol.shifts_xy)
    sd, kept = float("nan"), False
    if rotation == "one":
        sd = axis_spread_deg(tracks, tilt_deg, tuple(images.shape[-2:]), psi, sol.weights)
        if max_axis_sd_deg is not None and not sd <= max_axis_sd_deg:
            kept, psi = True, float(tilt_axis_deg)
            rotation = "fixed"
            sol = solve_alignment(tracks, tilt_deg, tuple(images.shape[-2:]), psi, rotation="fixed", tilt=tilt,
                                  robust=True, level_specimen=False)
    if level_specimen:
        level = level_one_layer(sol)
        sol = level if level is not None else solve_alignment(
            tracks, tilt_deg, tuple(images.shape[-2:]), psi, rotation=rotation, tilt=tilt, robust=True,
            level_specimen=True)
    return PatchAlignment(solution=sol, tracks_xy=tracks, tilt_axis_initial_deg=float(tilt_axis_deg), binning=b,
                          axis_sd_deg=sd, axis_kept=kept)


def axis_spread_deg(tracks: torch.Tensor, tilt_deg: torch.Tensor, image_shape: tuple[int, int], psi: float,
                    weights: torch.Tensor, n_boot: int = 8, half_range_deg: float = 3.0, seed: int = 0) -> float:
    """Standard deviation of the axis over ``n_boot`` resamplings (with replacement) of the tracks ``(v, n, 2)``.

    Each resample's axis minimises the weighted linear fit's RMS (rigid points and shifts, angles fixed)
    within ``psi +- half_range_deg``; ``weights`` ``(v, n)`` are the robust solve's (0: unused). Resampling
    whole tracks measures how much the answer depends on which patches happened to be tracked, which a
    covariance from the residuals would miss when the tracks' errors are systematic.
    """
    obs = tracks.detach().cpu().numpy().astype(np.float64)
    w = weights.detach().cpu().numpy().astype(np.float64) * np.isfinite(obs).all(-1)
    obs = np.where(np.isfinite(obs), obs, 0.0)
    tilt = torch.as_tensor(tilt_deg, dtype=torch.float64).cpu().numpy()
    center = image_center(image_shape).numpy()
    v, n, _ = obs.shape
    rng = np.random.default_rng(seed)
    found = []
    for _ in range(n_boot):
        idx = rng.integers(0, n, n)
        o, ww = obs[:, idx], w[:, idx]

        def rms(a: float, o=o, ww=ww) -> float:
            return solve_points_and_shifts(to_aligned(o, np.full(v, a), np.ones(v), center), tilt, ww)[2]

        found.append(minimise_golden(rms, psi - half_range_deg, psi + half_range_deg, iterations=18))
    return float(np.std(found))


def level_one_layer(sol: AlignmentSolution, min_views: int = 3) -> AlignmentSolution | None:
    """Rotate the patch points about Y so their layer is level and add that angle to every tilt angle.

    Patch heights fill one slab (the mass in each column), not two bead surfaces, so the layer's normal is
    the direction of least spread of the points in the XZ plane (points seen in at least ``min_views``
    views; 3-sigma outliers dropped twice). A regression ``Z = a X + c`` would flatten the slope of a thick slab by
    ``1 - var(Z) / var(X)``, and :func:`tomoforge.core.align.solve.level_angle_deg`'s two-surface split takes
    part of it into the surface offsets. None when the points are barely longer than thick (spread ratio above
    1:4), where the direction of least spread is ill-defined. The predictions do not change.
    """
    p = sol.points_xyz.numpy()
    use = (sol.weights.numpy() > 0).sum(0) >= min_views
    if use.sum() < 4:
        return None
    xz = p[:, [0, 2]]  # only a rotation about Y is applied: the normal within the XZ plane
    for _ in range(3):
        mu = xz[use].mean(0)
        _e, vecs = np.linalg.eigh(np.cov((xz[use] - mu).T))
        normal = vecs[:, 0] * (1.0 if vecs[1, 0] >= 0 else -1.0)
        r = (xz - mu) @ normal
        keep = use & (np.abs(r) <= 3 * float(np.std(r[use])) + 1e-9)
        if keep.sum() < 4 or keep.sum() == use.sum():
            break
        use = keep
    pretilt = float(np.rad2deg(np.arctan2(normal[0], normal[1])))
    e = np.linalg.eigvalsh(np.cov((xz[use] - xz[use].mean(0)).T))
    if e[0] > 0.25 * e[1]:
        return None  # barely longer than thick (small field, thick ice): the slab's direction is ill-defined
    pl = p @ rotation_y(-pretilt).numpy().T
    z = pl[use, 2]
    thick = float(np.percentile(z, 98) - np.percentile(z, 2))
    return replace(sol, points_xyz=torch.from_numpy(pl), tilt_deg=sol.tilt_deg + pretilt, pretilt_deg=pretilt,
                   thickness_px=thick, surface=torch.zeros(len(p), dtype=torch.int64))
