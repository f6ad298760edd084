"""Patch-based (local) motion: a smooth polynomial deformation in x, y and time, as MotionCor2 fits.

After full-frame alignment, the movie is cut into overlapping patches and each patch stack is aligned the
same way (all patches at once). The residual patch shifts are fitted with

    local(x, y, t) = sum_{j=1..3} (t^j - mean_t t^j) * (c0 + c1 u + c2 v + c3 u^2 + c4 v^2 + c5 u v)

per axis (18 coefficients each, as MotionCor2), with ``u, v`` the position relative to the image centre
divided by the width and height, and ``t`` the frame index over ``n - 1``. Removing the temporal mean fixes
each location's gauge: only motion during the exposure matters, not where a patch sits on average.
The total shift of frame ``i`` at pixel ``(y, x)`` is ``global[i] + local(x, y, t_i)``, in the convention
of :mod:`tomoforge.core.motion.global_motion`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from tomoforge.core.binning import phase_ramp
from tomoforge.core.motion.global_motion import estimate_global_shifts


@dataclass
class PatchMotion:
    """A fitted deformation. Shifts in input pixels ``(dy, dx)``; see the module docstring."""

    global_shifts: torch.Tensor  # (n, 2)
    coefficients: torch.Tensor  # (2, n_time_terms * 6): dy then dx
    image_shape: tuple[int, int]
    time_order: int
    patch_centres_yx: torch.Tensor  # (p, 2) pixels
    patch_shifts: torch.Tensor  # (p, n, 2) measured residual shifts (temporal mean removed)
    rms_fit_residual_px: float

    @property
    def n_frames(self) -> int:
        return int(self.global_shifts.shape[0])

    def local_shifts(self, frame: int, yx: torch.Tensor) -> torch.Tensor:
        """Local (residual) shifts ``(..., 2)`` of ``frame`` at pixel positions ``yx`` ``(..., 2)``."""
        basis = _basis(yx, torch.tensor([float(frame)]), self.n_frames, self.image_shape, self.time_order)
        return (basis[..., 0, :].to(self.coefficients) @ self.coefficients.T)

    def shifts_at(self, frame: int, yx: torch.Tensor) -> torch.Tensor:
        """Total shifts ``(..., 2)`` (global plus local) of ``frame`` at positions ``yx`` ``(..., 2)``."""
        return self.global_shifts[frame].to(self.coefficients) + self.local_shifts(frame, yx)

    def frame_coefficients(self, frame: int) -> torch.Tensor:
        """Spatial polynomial ``(6, 2)`` of the local shift of ``frame`` (time terms folded in)."""
        t = _time_terms(torch.tensor([float(frame)]), self.n_frames, self.time_order)[0]  # (order,)
        c = self.coefficients.T.reshape(self.time_order, 6, 2)
        return (t[:, None, None].to(c) * c).sum(0)

    def field(self, frame: int, device=None) -> torch.Tensor:
        """Per-pixel total shift ``(h, w, 2)`` (float32) of ``frame``, built without big intermediates."""
        h, w = self.image_shape
        v = ((torch.arange(h, dtype=torch.float64, device=device) - (h - 1) / 2) / h)[:, None]
        u = ((torch.arange(w, dtype=torch.float64, device=device) - (w - 1) / 2) / w)[None, :]
        c = self.frame_coefficients(frame).to(device)
        g = self.global_shifts[frame].to(device=device, dtype=torch.float64)
        out = []
        for a in range(2):
            k = c[:, a]
            out.append((g[a] + k[0] + k[1] * u + k[2] * v + k[3] * u * u + k[4] * v * v + k[5] * u * v)
                       .to(torch.float32))
        return torch.stack(out, -1)


def _spatial_terms(yx: torch.Tensor, image_shape: tuple[int, int]) -> torch.Tensor:
    h, w = image_shape
    v = (yx[..., 0] - (h - 1) / 2) / h
    u = (yx[..., 1] - (w - 1) / 2) / w
    return torch.stack([torch.ones_like(u), u, v, u * u, v * v, u * v], -1)


def _time_terms(frames: torch.Tensor, n_frames: int, order: int) -> torch.Tensor:
    all_t = torch.arange(n_frames, dtype=torch.float64) / max(1, n_frames - 1)
    t = frames.to(torch.float64) / max(1, n_frames - 1)
    powers = torch.stack([t ** j for j in range(1, order + 1)], -1)
    means = torch.stack([(all_t ** j).mean() for j in range(1, order + 1)])
    return powers - means


def _basis(yx: torch.Tensor, frames: torch.Tensor, n_frames: int, image_shape, order: int) -> torch.Tensor:
    """Design matrix ``(..., f, order * 6)`` for positions ``(..., 2)`` and frames ``(f,)``."""
    s = _spatial_terms(yx.to(torch.float64), image_shape)  # (..., 6)
    t = _time_terms(frames, n_frames, order)  # (f, order)
    return (t[:, :, None] * s[..., None, None, :]).flatten(-2)


def patch_layout(shape_hw: tuple[int, int], n_patches_yx: tuple[int, int], overlap: float = 0.5
                 ) -> tuple[torch.Tensor, tuple[int, int]]:
    """Top-left corners ``(p, 2)`` and the patch size ``(ph, pw)`` of an evenly spaced patch grid."""
    h, w = shape_hw
    ny, nx = n_patches_yx
    ph = min(h, 2 * int(round(h / ny * (1 + overlap) / 2)))
    pw = min(w, 2 * int(round(w / nx * (1 + overlap) / 2)))
    ys = torch.linspace(0, h - ph, ny).round().long()
    xs = torch.linspace(0, w - pw, nx).round().long()
    corners = torch.stack(torch.meshgrid(ys, xs, indexing="ij"), -1).reshape(-1, 2)
    return corners, (ph, pw)


def estimate_patch_motion(frames: torch.Tensor, global_shifts: torch.Tensor | None = None, *,
                          n_patches_yx: tuple[int, int] = (5, 5), overlap: float = 0.5,
                          pixel_size_a: float = 1.0, b_factor_a2: float = 500.0, time_order: int = 3,
                          max_shift_px: float | None = None, max_iterations: int = 10,
                          outlier_sd: float = 3.0, regularisation: float = 0.1) -> PatchMotion:
    """Fit a :class:`PatchMotion` to frames ``(n, h, w)``.

    ``global_shifts`` ``(n, 2)`` come from :func:`estimate_global_shifts` (computed here when omitted).
    Patch shifts deviating from the fit by more than ``outlier_sd`` robust SDs are dropped and the model
    refitted once. ``regularisation`` is a ridge penalty on the terms that vary across the image (relative
    to their own scale), so sparse or noisy patches do not produce wild corners; 0 fits freely.
    """
    n, h, w = frames.shape
    x = frames.to(torch.float32)
    if global_shifts is None:
        global_shifts = estimate_global_shifts(x, pixel_size_a=pixel_size_a, b_factor_a2=b_factor_a2,
                                               max_shift_px=max_shift_px)
    order = max(1, min(time_order, n - 1))
    corrected = torch.fft.irfft2(torch.fft.rfft2(x) * phase_ramp((h, w), -global_shifts.to(x.device)), s=(h, w))
    corners, (ph, pw) = patch_layout((h, w), n_patches_yx, overlap)
    patches = torch.stack([corrected[:, y:y + ph, x0:x0 + pw] for y, x0 in corners.tolist()])
    local = estimate_global_shifts(patches, pixel_size_a=pixel_size_a, b_factor_a2=b_factor_a2,
                                   max_shift_px=max_shift_px, max_cc_size=None,
                                   max_iterations=max_iterations).to(torch.float64)
    local = local - local.mean(dim=1, keepdim=True)  # (p, n, 2)
    centres = corners.to(torch.float64) + torch.tensor([(ph - 1) / 2, (pw - 1) / 2], dtype=torch.float64)

    design = _basis(centres, torch.arange(n), n, (h, w), order).reshape(-1, order * 6)  # (p*n, m)
    target = local.reshape(-1, 2)
    keep = torch.ones(len(target), dtype=torch.bool)
    # ridge on the spatially varying terms only (index % 6 != 0), scaled by each column's energy
    spatial = (torch.arange(design.shape[1]) % 6 != 0).to(torch.float64)
    for _ in range(2):
        a = design[keep]
        gram = a.T @ a
        ridge = regularisation * torch.diag(gram.diagonal() * spatial)
        coef = torch.linalg.solve(gram + ridge + 1e-12 * torch.eye(len(gram), dtype=gram.dtype),
                                  a.T @ target[keep])  # (m, 2)
        resid = (design @ coef - target).norm(dim=-1)
        mad = resid[keep].median() * 1.4826 + 1e-6
        new_keep = resid <= outlier_sd * mad + 1e-3
        if bool((new_keep == keep).all()) or int(new_keep.sum()) < design.shape[1] * 2:
            break
        keep = new_keep
    rms = float((resid[keep] ** 2).mean().sqrt())
    return PatchMotion(global_shifts=global_shifts.to(torch.float64).cpu(), coefficients=coef.T.contiguous(),
                       image_shape=(h, w), time_order=order, patch_centres_yx=centres,
                       patch_shifts=local, rms_fit_residual_px=rms)


def warp_frame(frame: torch.Tensor, field_yx: torch.Tensor) -> torch.Tensor:
    """Corrected frame ``out(p) = frame(p + field(p))`` for ``(h, w)`` and a field ``(h, w, 2)`` (bicubic)."""
    h, w = frame.shape
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float32, device=frame.device),
                            torch.arange(w, dtype=torch.float32, device=frame.device), indexing="ij")
    sy = yy + field_yx[..., 0].to(torch.float32)
    sx = xx + field_yx[..., 1].to(torch.float32)
    grid = torch.stack([2 * sx / max(1, w - 1) - 1, 2 * sy / max(1, h - 1) - 1], -1)[None]
    out = F.grid_sample(frame[None, None].to(torch.float32), grid, mode="bicubic", padding_mode="border",
                        align_corners=True)
    return out[0, 0]
