"""FFT cross-correlation: weighted mean removal, zero padding, band-pass, normalisation, sub-pixel peak."""

from __future__ import annotations

import torch


def prepare(images: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Subtract each image's weighted mean and apply the taper weights, ``(..., h, w)``."""
    wsum = weights.sum(dim=(-2, -1), keepdim=True).clamp_min(1e-6)
    mean = (images * weights).sum(dim=(-2, -1), keepdim=True) / wsum
    return (images - mean) * weights


def bandpass(shape: tuple[int, int], lowpass: float, highpass: float, falloff: float = 0.05,
             device=None) -> torch.Tensor:
    """rfft-layout filter ``(h, w//2+1)``: Gaussian high-pass at ``highpass`` and a soft low-pass edge
    at ``lowpass`` (both cycles/pixel)."""
    h, w = shape
    fy = torch.fft.fftfreq(h, device=device)[:, None]
    fx = torch.fft.rfftfreq(w, device=device)[None, :]
    f = torch.sqrt(fx ** 2 + fy ** 2)
    hp = 1.0 - torch.exp(-0.5 * (f / max(highpass, 1e-6)) ** 2) if highpass > 0 else torch.ones_like(f)
    lp = torch.where(f <= lowpass, torch.ones_like(f), torch.exp(-0.5 * ((f - lowpass) / falloff) ** 2))
    return hp * lp


def cross_correlate(ref: torch.Tensor, moving: torch.Tensor, lowpass: float = 0.35, highpass: float = 0.02,
                    pad_fraction: float = 0.5) -> torch.Tensor:
    """Normalised correlation ``(..., H, W)`` (centred: zero shift at ``(H//2, W//2)``) of prepared images.

    Both images are band-passed; values are divided by the product of the filtered images' norms, so a
    perfect match peaks at 1. The peak sits at the shift ``t`` that, applied to ``moving``
    (``moving(p - t)``), best matches ``ref``.
    """
    h, w = ref.shape[-2:]
    ph, pw = int(round(h * (1 + pad_fraction))), int(round(w * (1 + pad_fraction)))
    filt = bandpass((ph, pw), lowpass, highpass, device=ref.device).sqrt()
    fa = torch.fft.rfft2(ref, s=(ph, pw)) * filt
    fb = torch.fft.rfft2(moving, s=(ph, pw)) * filt
    na = torch.fft.irfft2(fa, s=(ph, pw)).flatten(-2).norm(dim=-1)
    nb = torch.fft.irfft2(fb, s=(ph, pw)).flatten(-2).norm(dim=-1)
    cc = torch.fft.irfft2(fa * fb.conj(), s=(ph, pw)) / (na * nb).clamp_min(1e-20)[..., None, None]
    return torch.fft.fftshift(cc, dim=(-2, -1))


def find_peak(cc: torch.Tensor, max_shift: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Sub-pixel peak of a centred correlation ``(h, w)``: shift ``(x, y)`` and the peak value.

    A parabola through the peak and its neighbours on each axis gives the sub-pixel offset.
    """
    h, w = cc.shape[-2:]
    cy, cx = h // 2, w // 2
    work = cc
    if max_shift is not None:
        yy = torch.arange(h, device=cc.device)[:, None] - cy
        xx = torch.arange(w, device=cc.device)[None, :] - cx
        inside = (yy ** 2 + xx ** 2) <= max_shift ** 2
        work = torch.where(inside, cc, torch.full_like(cc, -torch.inf))
    idx = int(torch.argmax(work))
    py, px = divmod(idx, w)
    off = []
    for axis_vals in ((cc[py, (px - 1) % w], cc[py, px], cc[py, (px + 1) % w]),
                      (cc[(py - 1) % h, px], cc[py, px], cc[(py + 1) % h, px])):
        m1, c0, p1 = (float(v) for v in axis_vals)
        den = m1 - 2 * c0 + p1
        off.append(0.5 * (m1 - p1) / den if den < 0 else 0.0)
    shift = torch.tensor([px - cx + max(-0.5, min(0.5, off[0])), py - cy + max(-0.5, min(0.5, off[1]))],
                         dtype=torch.float64)
    return shift, cc[py, px]

