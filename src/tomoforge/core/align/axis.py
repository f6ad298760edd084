"""Tilt-axis angle: estimate, refine, and judge a given (mdoc) value.

From bead or patch tracks, the axis minimises the residual of the linear bead/shift fit
(core/align/solve.py); from images alone, it maximises the agreement of neighbouring views after cosine
stretching perpendicular to the candidate axis (tiltxcorr's model is only right for the right axis).

Projection geometry fixes the axis modulo 180 degrees only: ``(psi, theta)`` and ``(psi + 180, -theta)`` give
the same projections, and ``(psi, -theta)`` gives those of a mirrored specimen. Which of the two is right (the
handedness) needs physics outside the geometry (the defocus gradient across tilted views); without it the
candidate nearest the prior is kept and the ambiguity is reported.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from tomoforge.core.align._threads import single_threaded
from tomoforge.core.align.solve import solve_points_and_shifts, to_aligned
from tomoforge.core.align.warp import edge_taper, warp_images
from tomoforge.core.align.xcorr import cross_correlate, find_peak, prepare
from tomoforge.core.geometry import image_center, xf_from_parameters


@dataclass
class AxisEstimate:
    """An axis angle (degrees, CCW from +Y) with how sure we are of it."""

    tilt_axis_deg: float  # the equivalent nearest the prior (psi or psi + 180)
    confidence: float  # 0..1: contrast of the best candidate against the rest of the scan
    candidates_deg: np.ndarray  # angles scanned
    scores: np.ndarray  # score per candidate (higher is better)
    prior_deg: float | None = None
    prior_error_deg: float | None = None  # |prior - estimate| modulo 180, in [0, 90]
    prior_ok: bool | None = None


def wrap180(angle_deg: float) -> float:
    """Angle in [-180, 180)."""
    return (angle_deg + 180.0) % 360.0 - 180.0


def axis_difference_deg(a: float, b: float) -> float:
    """Distance between two axis angles modulo 180 degrees, in [0, 90]."""
    d = abs(wrap180(a - b)) % 180.0
    return min(d, 180.0 - d)


def _finish(cands: np.ndarray, scores: np.ndarray, prior: float | None, tolerance_deg: float) -> AxisEstimate:
    k = int(np.argmax(scores))
    best = float(cands[k])
    # parabola through the best and its neighbours (scan is uniform and periodic modulo 180)
    step = float(cands[1] - cands[0]) if len(cands) > 1 else 0.0
    if len(cands) >= 3:
        s0, s1, s2 = scores[k - 1], scores[k], scores[(k + 1) % len(cands)]
        den = s0 - 2 * s1 + s2
        if den < 0:
            best += step * float(np.clip(0.5 * (s0 - s2) / den, -0.5, 0.5))
    top, low = float(scores[k]), float(scores.min())
    # confidence: how much the best stands above the best candidate at least 30 degrees away
    far = np.array([axis_difference_deg(c, best) > 30 for c in cands])
    second = float(scores[far].max()) if far.any() else low
    conf = float(np.clip((top - second) / max(top - low, 1e-12), 0.0, 1.0))
    est = AxisEstimate(tilt_axis_deg=best, confidence=conf, candidates_deg=cands, scores=scores)
    return resolve_with_prior(est, prior, tolerance_deg)


def resolve_with_prior(est: AxisEstimate, prior: float | None, tolerance_deg: float = 3.0) -> AxisEstimate:
    """Pick the equivalent (``psi`` or ``psi + 180``) nearest ``prior`` and judge the prior."""
    if prior is None or not math.isfinite(prior):
        est.tilt_axis_deg = wrap180(est.tilt_axis_deg)
        return est
    a = est.tilt_axis_deg
    opts = [wrap180(a), wrap180(a + 180.0)]
    est.tilt_axis_deg = min(opts, key=lambda o: abs(wrap180(o - prior)))
    est.prior_deg = float(prior)
    est.prior_error_deg = axis_difference_deg(prior, a)
    est.prior_ok = est.prior_error_deg <= tolerance_deg
    return est


@single_threaded
def axis_from_tracks(observed: torch.Tensor, tilt_deg: torch.Tensor, image_shape: tuple[int, int],
                     prior_deg: float | None = None, step_deg: float = 3.0, tolerance_deg: float = 3.0
                     ) -> AxisEstimate:
    """Axis from landmark tracks ``(v, n, 2)`` (NaN = missing): scan [-90, 90), score = -fit RMS."""
    obs = observed.detach().cpu().numpy().astype(np.float64)
    seen = np.isfinite(obs).all(-1)
    obs = np.where(seen[..., None], obs, 0.0)
    tilt = torch.as_tensor(tilt_deg, dtype=torch.float64).cpu().numpy()
    center = image_center(image_shape).numpy()
    v = len(tilt)

    def rms(psi: float) -> float:
        al = to_aligned(obs, np.full(v, psi), np.ones(v), center)
        return solve_points_and_shifts(al, tilt, seen.astype(float))[2]

    cands = np.arange(-90.0, 90.0, step_deg)
    scores = -np.array([rms(c) for c in cands])
    est = _finish(cands, scores, None, tolerance_deg)
    est.tilt_axis_deg = minimise_golden(rms, est.tilt_axis_deg - step_deg, est.tilt_axis_deg + step_deg)
    return resolve_with_prior(est, prior_deg, tolerance_deg)


def minimise_golden(f, lo: float, hi: float, iterations: int = 20) -> float:
    """Minimum of a unimodal ``f`` on ``[lo, hi]`` by golden-section search (the bracket's centre)."""
    g = (math.sqrt(5) - 1) / 2
    x1, x2 = hi - g * (hi - lo), lo + g * (hi - lo)
    f1, f2 = f(x1), f(x2)
    for _ in range(iterations):
        if f1 < f2:
            hi, x2, f2 = x2, x1, f1
            x1 = hi - g * (hi - lo)
            f1 = f(x1)
        else:
            lo, x1, f1 = x1, x2, f2
            x2 = lo + g * (hi - lo)
            f2 = f(x2)
    return 0.5 * (lo + hi)


def stretch_agreement(images: torch.Tensor, tilt_deg: torch.Tensor, tilt_axis_deg: float, binning: int = 1,
                      lowpass: float = 0.25, highpass: float = 0.03) -> float:
    """Mean normalised correlation peak of neighbouring views stretched about ``tilt_axis_deg``."""
    v, h, w = images.shape
    tilt = torch.as_tensor(tilt_deg, dtype=torch.float64)
    order = torch.argsort(tilt).tolist()
    hb, wb = h // binning, w // binning
    taper = max(2.0, 0.1 * min(hb, wb))
    xf = xf_from_parameters(torch.full((v,), float(tilt_axis_deg), dtype=torch.float64))
    cos = torch.cos(torch.deg2rad(tilt))
    total, count = 0.0, 0
    for a, b in zip(order[:-1], order[1:], strict=True):
        lo, hi = (a, b) if cos[a] >= cos[b] else (b, a)  # stretch the more tilted view
        s = torch.tensor([float(cos[lo] / cos[hi])], dtype=torch.float64)
        ref = warp_images(images[lo:lo + 1].float(), xf[lo:lo + 1], binning)[0]
        mov = warp_images(images[hi:hi + 1].float(), xf[hi:hi + 1], binning, s)[0]
        wgt = edge_taper(xf[lo:lo + 1], (h, w), binning, None, taper)[0] * \
            edge_taper(xf[hi:hi + 1], (h, w), binning, s, taper)[0]
        ra, rb = prepare(ref, wgt), prepare(mov, wgt)
        cc = cross_correlate(ra, rb, lowpass, highpass)
        _t, val = find_peak(cc, 0.3 * min(hb, wb))
        total += float(val)
        count += 1
    return total / max(count, 1)


@single_threaded
def axis_from_images(images: torch.Tensor, tilt_deg: torch.Tensor, prior_deg: float | None = None, *,
                     target_size: int = 128, step_deg: float = 10.0, max_views: int = 9,
                     tolerance_deg: float = 3.0) -> AxisEstimate:
    """Axis from the images alone (fiducial-less): scan candidates modulo 180 by stretch agreement, then
    refine with a parabola. Accuracy is a degree or so; patch or bead solves refine it further."""
    v, h, w = images.shape
    b = max(1, math.ceil(max(h, w) / target_size))
    tilt = torch.as_tensor(tilt_deg, dtype=torch.float64)
    # views within +-45 degrees carry most of the signal; thin them to ``max_views``
    idx = [int(i) for i in torch.argsort(tilt) if abs(float(tilt[i])) <= 45.0]
    if len(idx) > max_views:
        idx = [idx[int(round(k))] for k in np.linspace(0, len(idx) - 1, max_views)]
    sub, tsub = images[idx], tilt[idx]
    cands = np.arange(-90.0, 90.0, step_deg)
    scores = np.array([stretch_agreement(sub, tsub, float(c), b) for c in cands])
    est = _finish(cands, scores, None, tolerance_deg)
    # finer local scan around the best
    fine = np.arange(est.tilt_axis_deg - step_deg, est.tilt_axis_deg + step_deg + 1e-9, step_deg / 4)
    fs = np.array([stretch_agreement(sub, tsub, float(c), b) for c in fine])
    k = int(np.argmax(fs))
    best = float(fine[k])
    if 0 < k < len(fine) - 1:
        den = fs[k - 1] - 2 * fs[k] + fs[k + 1]
        if den < 0:
            best += (step_deg / 4) * float(np.clip(0.5 * (fs[k - 1] - fs[k + 1]) / den, -0.5, 0.5))
    est.tilt_axis_deg = best
    return resolve_with_prior(est, prior_deg, tolerance_deg)


@dataclass
class HandednessCheck:
    """Which sign of the defocus gradient the tilted views show, given the tilt angles and axis as they are."""

    handedness: int  # +1: consistent with the project's convention (core/ctf/tilt.py); -1: mirrored
    scores: dict[int, float]  # mean CTF fit score over the tilted views for each sign
    confidence: float  # |score(+1) - score(-1)| relative to their mean, 0..1
    corrected_axis_deg: float  # the axis to use so the data match handedness +1 (psi or psi + 180)


def handedness_from_defocus(images: torch.Tensor, tilt_deg: torch.Tensor, tilt_axis_deg: float,
                            pixel_size_a: float, optics, settings, *, min_tilt_deg: float = 20.0,
                            max_views: int = 8, box: int = 256) -> HandednessCheck:
    """Decide handedness from the defocus gradient across tilted views (core/ctf/series.py fits both signs).

    ``(psi, theta)`` and ``(psi + 180, -theta)`` project alike, but the side of a tilted view that is further
    underfocused tells them apart. A result of -1 means the tilt angles' sign (or the axis, by 180 degrees) is
    flipped; using ``psi + 180`` with the same angles corrects it.
    """
    from tomoforge.core.ctf.series import estimate_tilt_series

    tilt = torch.as_tensor(tilt_deg, dtype=torch.float64)
    idx = [int(i) for i in torch.argsort(tilt.abs(), descending=True) if abs(float(tilt[i])) >= min_tilt_deg]
    idx = idx[:max_views]
    if len(idx) < 2:
        raise ValueError(f"need at least two views tilted by {min_tilt_deg:g} degrees or more")
    fit = estimate_tilt_series([images[i] for i in idx], [float(tilt[i]) for i in idx],
                               [float(tilt_axis_deg)] * len(idx), pixel_size_a, optics, settings, box=box)
    s_plus, s_minus = fit.handedness_scores.get(1, float("nan")), fit.handedness_scores.get(-1, float("nan"))
    conf = abs(s_plus - s_minus) / max(abs(0.5 * (s_plus + s_minus)), 1e-12)
    hand = fit.handedness
    corrected = float(tilt_axis_deg) if hand == 1 else wrap180(float(tilt_axis_deg) + 180.0)
    return HandednessCheck(handedness=hand, scores=dict(fit.handedness_scores), confidence=float(min(conf, 1.0)),
                           corrected_axis_deg=corrected)
