"""Full-frame motion: one shift per frame, by iterative cross-correlation against the sum of the others.

Shift convention (used by all of ``core.motion``): ``shifts[i] = (dy, dx)`` in input pixels is how far the
content of frame ``i`` has moved on the detector, so ``frame_i(p) = reference(p - shift_i)`` and the
corrected frame is ``frame_i(p + shift_i)`` (a Fourier shift by ``-shift_i``). Shifts are returned relative
to the first frame (``shifts[0] = (0, 0)``), as RELION writes them.

Each iteration moves every frame by its current shift, correlates each frame with the sum of all the others
(so a frame's own noise never correlates with itself), finds the subpixel peak and adds it to the shift.
It stops when no frame moves by more than ``tolerance_px``. Correlation is done on a Fourier-cropped copy
(at most ``max_cc_size`` pixels on a side) weighted by a B-factor, which is where the signal is.
"""

from __future__ import annotations

import math

import torch

from tomoforge.core.binning import fourier_resize, frequency_grid, phase_ramp
from tomoforge.core.motion.peaks import find_peak


def taper_window(shape_hw: tuple[int, int], edge_px: int, device=None) -> torch.Tensor:
    """Window ``(h, w)`` that falls from 1 to 0 over ``edge_px`` pixels at each border (cosine).

    Multiplying frames by it removes the border discontinuity, whose spectrum would otherwise pull every
    correlation peak towards zero shift.
    """
    def ramp(n: int) -> torch.Tensor:
        i = torch.arange(n, device=device, dtype=torch.float32)
        d = torch.minimum(i, n - 1 - i)
        e = max(1, min(edge_px, n // 2))
        return torch.where(d < e, 0.5 * (1 - torch.cos(math.pi * (d + 0.5) / e)), torch.ones_like(d))

    h, w = shape_hw
    return ramp(h)[:, None] * ramp(w)[None, :]


def frame_outliers(frames: torch.Tensor, outlier_sd: float = 10.0) -> torch.Tensor:
    """Mask ``(..., h, w)`` of pixels far above their frame's level: X-ray hits, hot pixels.

    The level and spread are estimated twice, the second time without the first pass's outliers, so a
    single very bright pixel cannot hide itself by inflating the SD. Also ``sd >= sqrt(mean)`` (counting
    noise), which keeps ordinary counts of very sparse frames (0.1 e/px) from being flagged.
    """
    x = frames.to(torch.float32)
    keep = torch.ones_like(x, dtype=torch.bool)
    for _ in range(2):
        n = keep.sum(dim=(-2, -1), keepdim=True).clamp(min=1)
        mean = (x * keep).sum(dim=(-2, -1), keepdim=True) / n
        var = (((x - mean) * keep) ** 2).sum(dim=(-2, -1), keepdim=True) / n
        sd = torch.maximum(var.sqrt(), mean.clamp(min=0).sqrt())
        keep = x <= mean + outlier_sd * sd.clamp(min=1e-12)
    return ~keep


def b_factor_filter(shape_hw: tuple[int, int], pixel_size_a: float, b_factor_a2: float, device=None) -> torch.Tensor:
    """``exp(-B k^2 / 4)`` on an rfft2 grid ``(h, w // 2 + 1)``, ``k`` in 1/Å (MotionCor2's weighting)."""
    fy, fx = frequency_grid(shape_hw, device=device)
    k2 = (fy ** 2 + fx ** 2) / pixel_size_a ** 2
    return torch.exp(-b_factor_a2 * k2 / 4)


def correlation_size(shape_hw: tuple[int, int], max_cc_size: int | None) -> tuple[int, int]:
    """Shape of the cropped grid used for correlation: the image scaled so its longer side fits (even sizes)."""
    h, w = shape_hw
    if not max_cc_size or max(h, w) <= max_cc_size:
        return h, w
    scale = max_cc_size / max(h, w)
    return tuple(max(8, 2 * int(round(n * scale / 2))) for n in (h, w))


def estimate_global_shifts(frames: torch.Tensor, *, pixel_size_a: float = 1.0, b_factor_a2: float = 150.0,
                           max_iterations: int = 15, tolerance_px: float = 0.01,
                           max_shift_px: float | None = None, max_cc_size: int | None = 1024,
                           taper_fraction: float = 0.1, initial_shifts: torch.Tensor | None = None,
                           outlier_sd: float | None = 10.0) -> torch.Tensor:
    """Per-frame shifts ``(..., n, 2)`` as ``(dy, dx)`` input pixels of frames ``(..., n, h, w)``.

    See the module docstring for the convention. ``pixel_size_a`` only scales the B-factor (Å²).
    ``max_shift_px`` bounds the shift found in one iteration (input pixels). ``initial_shifts`` (same shape
    as the result) starts the search, e.g. from a previous estimate. Leading dimensions are independent
    movies (used to align many patches at once). Pixels more than ``outlier_sd`` SDs above their frame
    (X-rays) are set to the frame mean for the correlation only: one hot pixel in two frames would otherwise
    make a sharp false peak at their offset.
    """
    *lead, n, h, w = frames.shape
    device = frames.device
    x = frames.to(torch.float32)
    if outlier_sd is not None:
        hot = frame_outliers(x, outlier_sd)
        if bool(hot.any()):
            level = (x * ~hot).sum(dim=(-2, -1), keepdim=True) / (~hot).sum(dim=(-2, -1), keepdim=True).clamp(min=1)
            x = torch.where(hot, level, x)
    x = x - x.mean(dim=(-2, -1), keepdim=True)
    ch, cw = correlation_size((h, w), max_cc_size)
    if (ch, cw) != (h, w):
        x = fourier_resize(x, (ch, cw), edge_fraction=0.0, keep_centre=False)
    scale = torch.tensor([h / ch, w / cw], device=device)
    window = taper_window((ch, cw), int(round(taper_fraction * min(ch, cw))), device=device)
    weight = b_factor_filter((ch, cw), pixel_size_a * max(h / ch, w / cw), b_factor_a2, device=device)
    limit = None if max_shift_px is None else max(1.0, max_shift_px / float(scale.min()))
    raw = torch.fft.rfft2(x)
    # Coarse passes: the taper is applied once and moves with the content (one inverse FFT per frame and
    # iteration). Fine passes re-apply it in detector coordinates after each move, which removes the small
    # pull (~1% of the shift) that a moving window exerts; they start from the coarse answer.
    tapered = torch.fft.rfft2(x * window) * weight

    shifts = torch.zeros(tuple(lead) + (n, 2), device=device, dtype=torch.float64)
    if initial_shifts is not None:
        shifts = shifts + initial_shifts.to(device=device, dtype=torch.float64)
    for fine in (False, True):
        for _ in range(max_iterations if not fine else max(2, max_iterations // 3)):
            ramp = phase_ramp((ch, cw), -shifts / scale)
            if fine:
                moved = torch.fft.irfft2(raw * ramp, s=(ch, cw))
                g = torch.fft.rfft2(moved * window) * weight
            else:
                g = tapered * ramp
            ref = g.sum(dim=-3, keepdim=True) - g
            cc = torch.fft.irfft2(torch.conj(ref) * g, s=(ch, cw))
            delta = find_peak(cc, limit).to(torch.float64) * scale
            # Only relative shifts are defined: keep the mean fixed so frames do not wander together.
            shifts = shifts + delta - delta.mean(dim=-2, keepdim=True)
            if float(delta.abs().max()) < (tolerance_px if fine else max(tolerance_px, 0.05)):
                break
    return (shifts - shifts[..., :1, :]).to(torch.float32)
