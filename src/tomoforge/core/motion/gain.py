"""Gain (and dark) application and defect-pixel masks for movies.

Gain references multiply: ``corrected = (raw - dark) * gain``. Orientation (``TiltSeries.gain_rotation`` /
``gain_flip``) is the one defined in :mod:`tomoforge.core.gain`, which also checks shapes.
"""

from __future__ import annotations

import torch

from tomoforge.core.gain import apply_gain_orientation, check_gain_shape
from tomoforge.core.xray import fill_pixels


def apply_gain(frames: torch.Tensor, gain: torch.Tensor | None, *, rotation: int = 0, flip: bool = False,
               dark: torch.Tensor | None = None) -> torch.Tensor:
    """Gain-correct frames ``(..., h, w)``: ``(raw - dark) * oriented gain``.

    Raises :class:`tomoforge.errors.InputError` (with a rotation hint when one fits) on a shape mismatch.
    """
    x = frames.to(torch.float32)
    for ref, name in ((dark, "dark"), (gain, "gain")):
        if ref is None:
            continue
        check_gain_shape(tuple(ref.shape), tuple(x.shape[-2:]), rotation)
        oriented = apply_gain_orientation(ref.to(x), rotation, flip)
        x = x - oriented if name == "dark" else x * oriented
    return x


def defects_from_gain(gain: torch.Tensor) -> torch.Tensor:
    """Boolean mask ``(h, w)`` of pixels a gain reference marks dead: zero, negative or not finite."""
    return ~torch.isfinite(gain) | (gain <= 0)


def defect_mask_from_coordinates(shape_hw: tuple[int, int], xy: list[tuple[int, int]] | torch.Tensor) -> torch.Tensor:
    """Mask ``(h, w)`` with the listed 0-based ``(x, y)`` pixels set; coordinates outside are ignored."""
    mask = torch.zeros(shape_hw, dtype=torch.bool)
    pts = torch.as_tensor(xy, dtype=torch.long).reshape(-1, 2)
    if len(pts):
        inside = (pts[:, 0] >= 0) & (pts[:, 0] < shape_hw[1]) & (pts[:, 1] >= 0) & (pts[:, 1] < shape_hw[0])
        pts = pts[inside]
        mask[pts[:, 1], pts[:, 0]] = True
    return mask


def correct_defects(frames: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Replace masked pixels of every frame ``(..., h, w)`` by interpolation from their good neighbours."""
    if not bool(mask.any()):
        return frames
    return fill_pixels(frames, mask.to(frames.device))
