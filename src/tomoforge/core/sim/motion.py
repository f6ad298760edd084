"""Beam-induced motion within a movie: smooth global drift and a smooth local deformation field.

Shifts are in raw pixels; frame 0 has shift (0, 0) and is the reference the .xf transforms refer to. A shift
``(dx, dy)`` means the content of that frame sits at ``p + (dx, dy)`` where frame 0 has it at ``p``. The local
field ``d`` is applied after the global shift as a backward map: frame f shows at ``p`` what frame 0 had at
``p - shift - d(p)``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F


def drift_profile(n_frames: int, tau: float = 0.35) -> np.ndarray:
    """Fraction of the total drift reached at each frame: fast at first, then settling (0 at frame 0)."""
    if n_frames == 1:
        return np.zeros(1)
    t = np.arange(n_frames) / (n_frames - 1)
    return (1 - np.exp(-t / tau)) / (1 - math.exp(-1 / tau))


def global_drift_px(n_frames: int, total_px: float, rng) -> np.ndarray:
    """Per-frame shifts ``(n, 2)`` (x, y): a curved path of about ``total_px`` length from the origin."""
    if total_px == 0 or n_frames == 1:
        return np.zeros((n_frames, 2))
    g = drift_profile(n_frames)
    ang = rng.uniform(0, 2 * math.pi)
    mag = total_px * rng.uniform(0.6, 1.4)
    bend = rng.normal(0, 0.25) * mag
    d = np.stack([math.cos(ang), math.sin(ang)])
    perp = np.stack([-d[1], d[0]])
    return g[:, None] * mag * d + (g * (1 - g) * 4)[:, None] * bend * perp


def local_control_grid(n_frames: int, amplitude_px: float, rng, grid: int = 4) -> np.ndarray:
    """Local displacement control points ``(n, 2, grid, grid)`` (dx, dy) growing with the drift profile."""
    end = rng.normal(0, amplitude_px, size=(2, grid, grid))
    return drift_profile(n_frames)[:, None, None, None] * end[None]


def local_field_px(control: np.ndarray, n: int, margin: int) -> torch.Tensor:
    """Displacement field ``(2, n + 2m, n + 2m)`` on a canvas from ``control`` ``(2, g, g)``.

    The control grid spans the raw image (``n`` px) corner to corner; bicubic inside, edge values outside.
    """
    size = n + 2 * margin
    c = torch.as_tensor(control, dtype=torch.float64)[None]
    coord = (torch.arange(size, dtype=torch.float64) - margin) / (n - 1) * 2 - 1
    gy, gx = torch.meshgrid(coord, coord, indexing="ij")
    grid = torch.stack([gx, gy], -1)[None].clamp(-1, 1)
    return F.grid_sample(c, grid, mode="bicubic", padding_mode="border", align_corners=True)[0]


def warp_local(image: torch.Tensor, field: torch.Tensor) -> torch.Tensor:
    """Deform ``image`` ``(H, W)`` by a smooth field ``(2, H, W)`` (dx, dy in px): ``out(p) = in(p - d(p))``.

    The field is defined where the content arrives (a backward map), so the truth needs no inversion.
    """
    h, w = image.shape
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64),
                            indexing="ij")
    gx = 2 * (xs - field[0]) / (w - 1) - 1
    gy = 2 * (ys - field[1]) / (h - 1) - 1
    grid = torch.stack([gx, gy], -1)[None].to(image.dtype)
    return F.grid_sample(image[None, None], grid, mode="bilinear", padding_mode="border", align_corners=True)[0, 0]
