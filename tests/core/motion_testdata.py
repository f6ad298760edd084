"""Synthetic movies for the motion, dose and exclusion tests (ground truth known exactly)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def texture(shape_hw, seed: int, sigma_px: float = 2.0) -> torch.Tensor:
    """Smooth periodic random texture ``(h, w)`` with mean 0 and SD 1 (Gaussian-filtered white noise)."""
    g = torch.Generator().manual_seed(seed)
    h, w = shape_hw
    noise = torch.randn(h, w, generator=g, dtype=torch.float64)
    fy = torch.fft.fftfreq(h, dtype=torch.float64)[:, None]
    fx = torch.fft.rfftfreq(w, dtype=torch.float64)[None, :]
    filt = torch.exp(-2 * (math.pi * sigma_px) ** 2 * (fy ** 2 + fx ** 2))
    t = torch.fft.irfft2(torch.fft.rfft2(noise) * filt, s=(h, w))
    return ((t - t.mean()) / t.std()).to(torch.float32)


def drift(n: int, seed: int, total_px: float = 6.0) -> torch.Tensor:
    """Beam-induced-like trajectory ``(n, 2)`` (dy, dx): fast at first, slowing down, with jitter; frame 0 at 0."""
    g = torch.Generator().manual_seed(seed)
    angle = float(torch.rand(1, generator=g)) * 2 * math.pi
    t = torch.arange(n, dtype=torch.float64)
    path = total_px * (1 - torch.exp(-t / max(1.0, n / 3)))
    s = torch.stack([path * math.sin(angle), path * math.cos(angle)], -1)
    s = s + 0.15 * torch.randn(n, 2, generator=g, dtype=torch.float64).cumsum(0)
    return (s - s[0]).to(torch.float32)


def shift_image(image: torch.Tensor, shift_yx) -> torch.Tensor:
    """Exact periodic shift: ``out(p) = image(p - shift)``."""
    h, w = image.shape[-2:]
    s = torch.as_tensor(shift_yx, dtype=torch.float64)
    fy = torch.fft.fftfreq(h, dtype=torch.float64)[:, None]
    fx = torch.fft.rfftfreq(w, dtype=torch.float64)[None, :]
    ramp = torch.exp(-2j * math.pi * (s[..., 0, None, None] * fy + s[..., 1, None, None] * fx))
    return torch.fft.irfft2(torch.fft.rfft2(image.to(torch.float64)) * ramp, s=(h, w)).to(torch.float32)


def crop_centre(image: torch.Tensor, shape_hw) -> torch.Tensor:
    h, w = image.shape[-2:]
    ch, cw = shape_hw
    y0, x0 = (h - ch) // 2, (w - cw) // 2
    return image[..., y0:y0 + ch, x0:x0 + cw]


def movie(signal: torch.Tensor, shifts: torch.Tensor, shape_hw, dose_per_px: float, seed: int,
          contrast: float = 0.3):
    """Poisson frames ``(n, h, w)`` of ``signal`` (a larger periodic texture) moved by ``shifts``.

    Returns ``(frames, clean)`` where ``clean`` is the expected count image of the unmoved field.
    """
    g = torch.Generator().manual_seed(seed)
    moved = crop_centre(shift_image(signal, shifts), shape_hw)
    rate = dose_per_px * (1 + contrast * moved).clamp(min=0)
    frames = torch.poisson(rate, generator=g)
    clean = dose_per_px * (1 + contrast * crop_centre(signal, shape_hw)).clamp(min=0)
    return frames, clean


def warp_movie(signal: torch.Tensor, field_fn, n: int, shape_hw, dose_per_px: float, seed: int,
               contrast: float = 0.3):
    """Frames deformed by ``field_fn(t, yy, xx) -> (dy, dx)`` (content displacement, pixels).

    ``signal`` is a texture at least as large as ``shape_hw``; ``frame_t(p) = signal(p - field(p))``
    (bilinear on a smooth texture is accurate to well below the noise).
    """
    g = torch.Generator().manual_seed(seed)
    h, w = shape_hw
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32),
                            indexing="ij")
    big = crop_centre(signal, (h + 32, w + 32))
    frames, fields = [], []
    for t in range(n):
        dy, dx = field_fn(t, yy, xx)
        fields.append(torch.stack([dy, dx]))
        sy, sx = yy - dy + 16, xx - dx + 16
        grid = torch.stack([2 * sx / (w + 31) - 1, 2 * sy / (h + 31) - 1], -1)[None]
        img = F.grid_sample(big[None, None], grid, mode="bicubic", align_corners=True)[0, 0]
        rate = dose_per_px * (1 + contrast * img).clamp(min=0)
        frames.append(torch.poisson(rate, generator=g))
    clean = dose_per_px * (1 + contrast * crop_centre(signal, shape_hw)).clamp(min=0)
    return torch.stack(frames), clean, torch.stack(fields)


def gauge_free_rms(estimate: torch.Tensor, truth: torch.Tensor) -> float:
    """RMS distance between two trajectories ``(n, 2)`` after removing their mean (the gauge)."""
    e = estimate - estimate.mean(0)
    t = truth - truth.mean(0)
    return float(((e - t) ** 2).sum(-1).mean().sqrt())


def correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    a = a.to(torch.float64).flatten()
    b = b.to(torch.float64).flatten()
    a, b = a - a.mean(), b - b.mean()
    return float((a @ b) / (a.norm() * b.norm()))
