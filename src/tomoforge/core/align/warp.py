"""Resampling tilt images into the aligned frame (``.xf`` sense), at any binning.

A binned pixel ``i`` covers full pixels ``b*i .. b*i+b-1``, so its centre is full coordinate
``b*i + (b-1)/2``; the image centre ``(N-1)/2`` maps onto itself for every binning.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from tomoforge.core.geometry import image_center, invert_xf


def bin_images(images: torch.Tensor, binning: int) -> torch.Tensor:
    """Average ``binning`` x ``binning`` blocks of ``(..., h, w)`` (trailing rows/columns dropped)."""
    if binning <= 1:
        return images
    lead = images.shape[:-2]
    x = images.reshape(-1, 1, *images.shape[-2:])
    x = F.avg_pool2d(x, binning)
    return x.reshape(*lead, *x.shape[-2:])


def sample_images(images: torch.Tensor, coords_xy: torch.Tensor, fill: float = 0.0) -> torch.Tensor:
    """Bilinear samples of ``images`` ``(v, h, w)`` at pixel coordinates ``coords_xy`` ``(v, H, W, 2)``.

    Returns ``(v, H, W)``; points outside take ``fill``.
    """
    h, w = images.shape[-2:]
    norm = torch.stack([coords_xy[..., 0] * (2.0 / max(w - 1, 1)) - 1.0,
                        coords_xy[..., 1] * (2.0 / max(h - 1, 1)) - 1.0], -1).to(images.dtype)
    out = F.grid_sample((images - fill)[:, None], norm, mode="bilinear", padding_mode="zeros",
                        align_corners=True)[:, 0]
    return out + fill


def aligned_grid(xf: torch.Tensor, image_shape: tuple[int, int], binning: int = 1,
                 stretch_x: torch.Tensor | None = None) -> torch.Tensor:
    """Raw full-resolution coordinates ``(v, H, W, 2)`` of the binned aligned pixels.

    xf: ``(v, 2, 3)`` raw-to-aligned. ``stretch_x`` ``(v,)`` stretches the aligned image along x about
    the centre by that factor (a feature at aligned ``x`` appears at ``s * x``).
    """
    h, w = image_shape
    hb, wb = h // binning, w // binning
    dev = xf.device
    c = image_center((h, w)).to(dev)
    cb = image_center((hb, wb)).to(dev)
    yy, xx = torch.meshgrid(torch.arange(hb, dtype=torch.float64, device=dev),
                            torch.arange(wb, dtype=torch.float64, device=dev), indexing="ij")
    rel = torch.stack([xx - cb[0], yy - cb[1]], -1) * binning  # (H, W, 2), aligned full px about centre
    rel = rel.expand(xf.shape[0], hb, wb, 2).clone()
    if stretch_x is not None:
        rel[..., 0] = rel[..., 0] / torch.as_tensor(stretch_x, dtype=torch.float64, device=dev)[:, None, None]
    inv = invert_xf(xf.to(torch.float64))
    raw = torch.einsum("vij,vhwj->vhwi", inv[:, :, :2], rel) + inv[:, None, None, :, 2] + c
    return raw


def warp_images(images: torch.Tensor, xf: torch.Tensor, binning: int = 1,
                stretch_x: torch.Tensor | None = None, fill: float | None = None) -> torch.Tensor:
    """Aligned images ``(v, h//b, w//b)`` from raw ``(v, h, w)`` and ``xf`` ``(v, 2, 3)``.

    Outside the raw image the mean of each view fills in (``fill`` overrides).
    """
    return _sample_on(images, aligned_grid(xf, images.shape[-2:], binning, stretch_x), binning, fill)


def warp_with_edge_distance(images: torch.Tensor, xf: torch.Tensor, binning: int = 1,
                            stretch_x: torch.Tensor | None = None, fill: float | None = None
                            ) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`warp_images` and :func:`edge_distance` from one sampling grid (both ``(v, h//b, w//b)``)."""
    raw = aligned_grid(xf, images.shape[-2:], binning, stretch_x)
    return _sample_on(images, raw, binning, fill), _distance_on(raw, images.shape[-2:], binning)


def _sample_on(images: torch.Tensor, raw: torch.Tensor, binning: int, fill: float | None) -> torch.Tensor:
    binned = bin_images(images, binning)
    coords = (raw - (binning - 1) / 2) / binning
    if fill is None:
        means = binned.mean(dim=(-2, -1))
        return torch.stack([sample_images(binned[i:i + 1], coords[i:i + 1], float(means[i]))[0]
                            for i in range(binned.shape[0])])
    return sample_images(binned, coords, fill)


def _distance_on(raw: torch.Tensor, image_shape: tuple[int, int], binning: int) -> torch.Tensor:
    h, w = image_shape
    d = torch.minimum(torch.minimum(raw[..., 0] + 0.5, w - 0.5 - raw[..., 0]),
                      torch.minimum(raw[..., 1] + 0.5, h - 0.5 - raw[..., 1]))
    return (d / binning).to(torch.float32)


def edge_distance(xf: torch.Tensor, image_shape: tuple[int, int], binning: int = 1,
                  stretch_x: torch.Tensor | None = None) -> torch.Tensor:
    """``(v, H, W)`` distance (binned pixels) from each aligned pixel to the raw image's edge; <= 0 outside."""
    return _distance_on(aligned_grid(xf, image_shape, binning, stretch_x), image_shape, binning)


def taper_from_distance(distance: torch.Tensor, width: float = 8.0) -> torch.Tensor:
    """Weights rising from 0 at the raw image edge to 1 at ``width`` binned pixels inside (cosine ramp)."""
    t = (distance / max(width, 1e-6)).clamp(0, 1)
    return 0.5 - 0.5 * torch.cos(torch.pi * t)


def edge_taper(xf: torch.Tensor, image_shape: tuple[int, int], binning: int = 1,
               stretch_x: torch.Tensor | None = None, width: float = 8.0) -> torch.Tensor:
    """``(v, H, W)`` weights rising from 0 at the raw image edge to 1 at ``width`` binned pixels inside
    (cosine ramp): rotated views have empty corners, and the taper must stay inside the data."""
    return taper_from_distance(edge_distance(xf, image_shape, binning, stretch_x), width)
