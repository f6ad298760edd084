"""tiltalign-style least-squares alignment from a landmark (fiducial) model.

Model (core/geometry.py): bead ``n`` at ``(X, Y, Z)`` (px about the volume centre) appears in raw view ``v`` at
``c + R(psi_v) (P(theta_v) X_n - d_v) / m_v`` with ``P(theta) X = (X cos theta + Z sin theta, Y)``. The view's
``.xf`` is then ``[m_v R(-psi_v) | d_v]``.

Gauge: a translation of all beads is absorbed by the shifts (beads are kept centred); a rotation of the beads
about Y equals a common tilt-angle offset (the reference view's angle stays fixed, and the offset that makes the
bead layer level is reported as ``pretilt_deg``); a common scale equals magnification (reference view fixed).
``(psi, theta)``, ``(psi + 180, -theta)`` fit equally well; ``(psi, -theta)`` fits a Z-mirrored specimen
equally well, so handedness cannot come from bead positions alone (see align/axis.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from scipy.optimize import least_squares

from tomoforge.core.align._threads import single_threaded
from tomoforge.core.geometry import image_center, rotation_y, xf_from_parameters

MODES = ("fixed", "one", "group", "view")


@dataclass
class AlignmentSolution:
    """Solved geometry; arrays are torch float64, views in the input order."""

    xf: torch.Tensor  # (v, 2, 3) raw -> aligned
    tilt_axis_deg: torch.Tensor  # (v,)
    tilt_deg: torch.Tensor  # (v,) refined
    magnification: torch.Tensor  # (v,)
    shifts_xy: torch.Tensor  # (v, 2)
    points_xyz: torch.Tensor  # (n, 3) beads, px about the volume centre, specimen levelled if asked
    residuals_xy: torch.Tensor  # (v, n, 2) observed - predicted raw position (NaN where not observed)
    predicted_xy: torch.Tensor  # (v, n, 2) gap-free model
    weights: torch.Tensor  # (v, n) robust weights (0 where not observed)
    residual_mean_px: float
    residual_sd_px: float
    residual_mean_per_view_px: torch.Tensor  # (v,) NaN for views without beads
    residual_mean_per_bead_px: torch.Tensor  # (n,)
    pretilt_deg: float  # rotation about Y that levels the bead layer (added to tilt_deg when levelled)
    thickness_px: float  # extent of the beads along Z after levelling
    surface: torch.Tensor  # (n,) 0 = lower, 1 = upper surface (by Z after levelling)
    solved_views: torch.Tensor  # (v,) bool: views that had enough beads


def group_index(tilt_deg: np.ndarray, mode: str, group_size: int) -> np.ndarray:
    """Parameter index per view: ``one`` -> all 0, ``view`` -> own, ``group`` -> blocks of neighbours by angle."""
    v = len(tilt_deg)
    if mode in ("one", "fixed"):
        return np.zeros(v, dtype=int)
    rank = np.argsort(np.argsort(tilt_deg))
    if mode == "view":
        return rank
    if mode == "group":
        return rank // max(1, group_size)
    raise ValueError(f"unknown mode {mode!r}; expected one of {MODES}")


def to_aligned(observed: np.ndarray, psi_deg: np.ndarray, mag: np.ndarray, center: np.ndarray) -> np.ndarray:
    """Observed raw ``(v, n, 2)`` to aligned-frame coordinates about the centre (before the shift)."""
    a = np.deg2rad(-psi_deg)
    c, s = np.cos(a), np.sin(a)
    r = observed - center
    x = c[:, None] * r[..., 0] - s[:, None] * r[..., 1]
    y = s[:, None] * r[..., 0] + c[:, None] * r[..., 1]
    return np.stack([x, y], -1) * mag[:, None, None]


def solve_points_and_shifts(aligned: np.ndarray, tilt_deg: np.ndarray, weights: np.ndarray
                            ) -> tuple[np.ndarray, np.ndarray, float]:
    """Linear least squares for beads ``(n, 3)`` and shifts ``(v, 2)`` with axis, angles, scale fixed.

    ``aligned`` ``(v, n, 2)``: observations rotated to the aligned frame. Returns (points, shifts, rms).
    Beads are kept centred (the translation gauge).
    """
    v, n, _ = aligned.shape
    t = np.deg2rad(tilt_deg)
    vi, ni = np.nonzero(weights > 0)
    m = len(vi)
    w = np.sqrt(weights[vi, ni])
    ncol = 3 * n + 2 * v
    rows = np.arange(m)
    # x rows: cos X + sin Z - dx ; y rows: Y - dy
    ax = sp.csr_matrix((np.concatenate([np.cos(t[vi]) * w, np.sin(t[vi]) * w, -w]),
                        (np.concatenate([rows, rows, rows]),
                         np.concatenate([3 * ni, 3 * ni + 2, 3 * n + 2 * vi]))), shape=(m, ncol))
    ay = sp.csr_matrix((np.concatenate([w, -w]), (np.concatenate([rows, rows]),
                                                  np.concatenate([3 * ni + 1, 3 * n + 2 * vi + 1]))),
                       shape=(m, ncol))
    # centre each coordinate: sum_n X_n = 0 etc.
    gauge = sp.csr_matrix((np.ones(3 * n), (np.tile(np.arange(3), n), np.arange(3 * n))), shape=(3, ncol))
    a = sp.vstack([ax, ay, gauge * 10.0]).tocsr()
    b = np.concatenate([aligned[vi, ni, 0] * w, aligned[vi, ni, 1] * w, np.zeros(3)])
    ata = (a.T @ a).toarray()
    ata[np.diag_indices_from(ata)] += 1e-9
    # views without observations: pin their shift to zero so the system stays regular
    seen = np.zeros(v, bool)
    seen[vi] = True
    for k in np.nonzero(~seen)[0]:
        ata[3 * n + 2 * k, 3 * n + 2 * k] += 1.0
        ata[3 * n + 2 * k + 1, 3 * n + 2 * k + 1] += 1.0
    sol = np.linalg.solve(ata, a.T @ b)
    res = a[:2 * m] @ sol - b[:2 * m]
    rms = float(np.sqrt(np.mean(res ** 2) * 2)) if m else float("nan")
    return sol[:3 * n].reshape(n, 3), sol[3 * n:].reshape(v, 2), rms


@single_threaded
def solve_alignment(observed: torch.Tensor, tilt_deg: torch.Tensor, image_shape: tuple[int, int],
                    tilt_axis_deg: float, *, rotation: str = "one", tilt: str = "fixed",
                    magnification: str = "fixed", group_size: int = 5, robust: bool = True,
                    level_specimen: bool = True, min_beads_per_view: int = 3) -> AlignmentSolution:
    """Least-squares geometry from bead positions ``observed`` ``(v, n, 2)`` raw px (NaN = not seen).

    rotation: ``fixed`` (the given axis) | ``one`` | ``group`` | ``view`` (in-plane tilt-axis angle); tilt: ``fixed`` | ``group`` | ``view``
    (angles refined, the view nearest 0 degrees kept as reference); magnification: ``fixed`` | ``group`` | ``view``.
    robust: down-weight outliers (Cauchy loss scaled from the first fit's residuals).
    """
    obs = observed.detach().cpu().numpy().astype(np.float64)
    v, n, _ = obs.shape
    tilt0 = torch.as_tensor(tilt_deg, dtype=torch.float64).cpu().numpy()
    if not np.isfinite(tilt_axis_deg):
        raise ValueError("tilt axis angle is not a number")
    center = image_center(image_shape).numpy()
    seen = np.isfinite(obs).all(-1)
    views_ok = seen.sum(1) >= min_beads_per_view
    seen &= views_ok[:, None]
    beads_ok = seen.sum(0) >= 2
    seen &= beads_ok[None, :]
    if views_ok.sum() < 3 or beads_ok.sum() < 3:
        raise ValueError(f"too few beads to solve: {int(beads_ok.sum())} beads on {int(views_ok.sum())} views")
    obs_f = np.where(seen[..., None], obs, 0.0)
    ref = int(np.argmin(np.where(views_ok, np.abs(tilt0), np.inf)))

    g_rot = group_index(tilt0, rotation, group_size)
    g_tilt = group_index(tilt0, tilt, group_size)
    g_mag = group_index(tilt0, magnification, group_size)
    n_rot = 0 if rotation == "fixed" else g_rot.max() + 1
    n_tilt = 0 if tilt == "fixed" else g_tilt.max() + 1
    n_mag = 0 if magnification == "fixed" else g_mag.max() + 1

    # Initial beads and shifts from the linear problem at the given axis.
    psi0 = np.full(v, float(tilt_axis_deg))
    al = to_aligned(obs_f, psi0, np.ones(v), center)
    pts0, d0, _ = solve_points_and_shifts(al, tilt0, seen.astype(float))

    sl_rot = slice(0, n_rot)
    sl_tilt = slice(sl_rot.stop, sl_rot.stop + n_tilt)
    sl_mag = slice(sl_tilt.stop, sl_tilt.stop + n_mag)
    sl_d = slice(sl_mag.stop, sl_mag.stop + 2 * v)
    sl_p = slice(sl_d.stop, sl_d.stop + 3 * n)
    x0 = np.concatenate([np.full(n_rot, float(tilt_axis_deg)), np.zeros(n_tilt), np.zeros(n_mag),
                         d0.ravel(), pts0.ravel()])

    def unpack(x):
        psi = x[sl_rot][g_rot] if n_rot else psi0
        th = tilt0 + (x[sl_tilt][g_tilt] - x[sl_tilt][g_tilt[ref]] if n_tilt else 0.0)
        mag = np.exp(x[sl_mag][g_mag] - x[sl_mag][g_mag[ref]]) if n_mag else np.ones(v)
        d = x[sl_d].reshape(v, 2)
        p = x[sl_p].reshape(n, 3)
        return psi, th, mag, d, p

    def predict(x):
        psi, th, mag, d, p = unpack(x)
        t = np.deg2rad(th)
        ax = np.cos(t)[:, None] * p[None, :, 0] + np.sin(t)[:, None] * p[None, :, 2] - d[:, None, 0]
        ay = np.broadcast_to(p[None, :, 1], (v, n)) - d[:, None, 1]
        a = np.deg2rad(psi)
        c, s = np.cos(a)[:, None], np.sin(a)[:, None]
        rx = (c * ax - s * ay) / mag[:, None] + center[0]
        ry = (s * ax + c * ay) / mag[:, None] + center[1]
        return np.stack([rx, ry], -1)

    vi, ni = np.nonzero(seen)

    def resid(x):
        return (predict(x)[vi, ni] - obs_f[vi, ni]).ravel()

    # Sparsity: a residual of (view, bead) depends on its view's groups, its shift and its bead.
    m = len(vi)
    rows, cols = [], []
    for k in range(2):
        r = 2 * np.arange(m) + k
        rows += [r, r, r, r, r]
        cols += [sl_d.start + 2 * vi, sl_d.start + 2 * vi + 1,
                 sl_p.start + 3 * ni, sl_p.start + 3 * ni + 1, sl_p.start + 3 * ni + 2]
        if n_rot:
            rows += [r]
            cols += [sl_rot.start + g_rot[vi]]
        if n_tilt:
            rows += [r, r]
            cols += [sl_tilt.start + g_tilt[vi], np.full(m, sl_tilt.start + g_tilt[ref])]
        if n_mag:
            rows += [r, r]
            cols += [sl_mag.start + g_mag[vi], np.full(m, sl_mag.start + g_mag[ref])]
    rows, cols = np.concatenate(rows), np.concatenate(cols)
    # The translation gauge stays free here (trust-region steps handle it); beads are re-centred below.
    sparsity = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(2 * m, len(x0)))

    fit = least_squares(resid, x0, jac_sparsity=sparsity, method="trf", x_scale=1.0, max_nfev=200)
    weights = np.ones(m)
    if robust:
        r = np.linalg.norm(fit.fun.reshape(m, 2), axis=1)
        scale = max(0.5, 2.0 * float(np.median(r)))
        fit = least_squares(resid, fit.x, jac_sparsity=sparsity, method="trf", loss="cauchy", f_scale=scale,
                            max_nfev=200)
        r = np.linalg.norm(fit.fun.reshape(m, 2), axis=1)
        weights = 1.0 / (1.0 + (r / scale) ** 2)

    psi, th, mag, d, p = unpack(fit.x)
    mu = p[beads_ok].mean(0)
    tr = np.deg2rad(th)
    d = d - np.stack([np.cos(tr) * mu[0] + np.sin(tr) * mu[2], np.full(v, mu[1])], 1)
    p = p - mu
    pretilt, surface, thick = 0.0, np.zeros(n, dtype=int), 0.0
    good_p = p[beads_ok]
    if len(good_p) >= 3:
        pretilt = level_angle_deg(good_p)
        if level_specimen:
            # R_y(theta) X = R_y(theta + a) R_y(-a) X: rotate the beads level, add ``a`` to every angle.
            p = p @ rotation_y(-pretilt).numpy().T
            th = th + pretilt
        zl = p[:, 2] if level_specimen else (p @ rotation_y(-pretilt).numpy().T)[:, 2]
        surface, thick = split_surfaces(zl, beads_ok)
    pred = predict_full(psi, th, mag, d, p, center)
    res = np.full((v, n, 2), np.nan)
    res[seen] = obs_f[seen] - pred[seen]
    wts = np.zeros((v, n))
    wts[vi, ni] = weights
    rn = np.linalg.norm(res, axis=-1)
    per_view = np.array([np.nanmean(rn[i]) if seen[i].any() else np.nan for i in range(v)])
    per_bead = np.array([np.nanmean(rn[:, j]) if seen[:, j].any() else np.nan for j in range(n)])
    xf = xf_from_parameters(torch.from_numpy(psi), torch.from_numpy(d), torch.from_numpy(mag))
    return AlignmentSolution(
        xf=xf, tilt_axis_deg=torch.from_numpy(psi), tilt_deg=torch.from_numpy(th),
        magnification=torch.from_numpy(mag), shifts_xy=torch.from_numpy(d), points_xyz=torch.from_numpy(p),
        residuals_xy=torch.from_numpy(res), predicted_xy=torch.from_numpy(pred), weights=torch.from_numpy(wts),
        residual_mean_px=float(np.nanmean(rn[seen])), residual_sd_px=float(np.nanstd(rn[seen])),
        residual_mean_per_view_px=torch.from_numpy(per_view), residual_mean_per_bead_px=torch.from_numpy(per_bead),
        pretilt_deg=float(pretilt), thickness_px=float(thick), surface=torch.from_numpy(surface),
        solved_views=torch.from_numpy(views_ok))


def predict_full(psi, th, mag, d, p, center) -> np.ndarray:
    """Raw positions ``(v, n, 2)`` of beads ``p`` under the given per-view geometry (numpy)."""
    t = np.deg2rad(th)
    ax = np.cos(t)[:, None] * p[None, :, 0] + np.sin(t)[:, None] * p[None, :, 2] - d[:, None, 0]
    ay = p[None, :, 1] - d[:, None, 1]
    a = np.deg2rad(psi)
    c, s = np.cos(a)[:, None], np.sin(a)[:, None]
    return np.stack([(c * ax - s * ay) / mag[:, None] + center[0], (s * ax + c * ay) / mag[:, None] + center[1]], -1)


def level_angle_deg(points: np.ndarray, n_iter: int = 4) -> float:
    """Rotation about Y (degrees) that makes the bead layer(s) in ``points`` ``(n, 3)`` horizontal.

    Beads sit on one or two parallel surfaces: fit ``Z = a X + b Y + c_s`` with one offset per surface,
    re-labelling surfaces as the slope improves. The normal ``(-a, -b, 1)`` becomes vertical after
    ``R_y(-alpha)`` with ``tan(alpha) = -a``.
    """
    use = np.ones(len(points), bool)
    z = points[:, 2]
    a = 0.0
    for _ in range(n_iter):
        lab, _t = split_surfaces(z, use)
        two = 0 < lab.sum() < len(lab)
        cols = [points[:, 0], points[:, 1], (lab == 0).astype(float)] + ([lab.astype(float)] if two else [])
        coef, *_ = np.linalg.lstsq(np.stack(cols, 1), points[:, 2], rcond=None)
        a = coef[0]
        z = points[:, 2] - coef[0] * points[:, 0] - coef[1] * points[:, 1]
    return float(np.rad2deg(np.arctan(-a)))


def split_surfaces(z: np.ndarray, use: np.ndarray) -> tuple[np.ndarray, float]:
    """Two-means split of bead heights: labels (0 lower, 1 upper) and the thickness between the layers."""
    zz = z[use]
    lo, hi = np.percentile(zz, 10), np.percentile(zz, 90)
    for _ in range(20):
        lab = np.abs(z - hi) < np.abs(z - lo)
        if lab[use].all() or (~lab[use]).all():
            break
        lo, hi = z[use & ~lab].mean(), z[use & lab].mean()
    lab = np.abs(z - hi) < np.abs(z - lo)
    thick = float(np.percentile(zz, 98) - np.percentile(zz, 2)) if len(zz) > 1 else 0.0
    return lab.astype(np.int64), thick
