"""Exposure (dose) filter of Grant & Grigorieff (2015, eLife 4:e06980).

The signal at spatial frequency ``k`` (1/Å) after an exposure ``N`` (e/Å²) is attenuated in amplitude by
``exp(-N / (2 Ne(k)))`` with the critical exposure ``Ne(k) = a k^b + c`` (a = 0.245, b = -1.665, c = 2.81,
measured at 300 kV). At 200 kV the critical exposures are multiplied by 0.8 (as IMOD's mtffilter does).

Two ways to take one image's exposure, chosen by ``mode``:

- ``"integrated"`` (default): the image was recorded while its exposure rose from ``pre`` to
  ``pre + dose``; its attenuation is the mean of ``exp(-N / 2Ne)`` over that range,
  ``2Ne / dose * (exp(-pre / 2Ne) - exp(-(pre + dose) / 2Ne))``.
- ``"accumulated"``: the attenuation at the exposure reached at the end, ``exp(-(pre + dose) / 2Ne)``.

``pre`` is the view's pre-exposure (accumulated dose of the views taken before it, in acquisition order)
and ``dose`` its own exposure.
"""

from __future__ import annotations

import torch

from tomoforge.core.binning import frequency_grid

A, B, C = 0.245, -1.665, 2.81


def voltage_scale(voltage_kv: float) -> float:
    """Factor on the critical exposure: 1 at 300 kV, 0.8 at 200 kV, linear between and beyond (clamped)."""
    return float(min(1.2, max(0.6, 0.8 + 0.2 * (voltage_kv - 200.0) / 100.0)))


def critical_exposure(k_per_a: torch.Tensor, voltage_kv: float = 300.0) -> torch.Tensor:
    """``Ne(k)`` in e/Å² for spatial frequencies ``k`` in 1/Å (infinite at ``k = 0``)."""
    k = k_per_a.to(torch.float64)
    ne = A * k.clamp(min=1e-12) ** B + C
    return (ne * voltage_scale(voltage_kv)).to(k_per_a.dtype if k_per_a.is_floating_point() else torch.float64)


def dose_attenuation(k_per_a: torch.Tensor, pre_exposure_e_per_a2, dose_e_per_a2=0.0, *,
                     voltage_kv: float = 300.0, mode: str = "integrated") -> torch.Tensor:
    """Amplitude attenuation at frequencies ``k`` (1/Å); ``pre``/``dose`` broadcast against ``k``.

    ``pre_exposure_e_per_a2`` and ``dose_e_per_a2`` may be tensors of shape ``(..., 1, 1)`` to get a stack.
    """
    ne2 = 2 * critical_exposure(k_per_a.to(torch.float64), voltage_kv)
    pre = torch.as_tensor(pre_exposure_e_per_a2, dtype=torch.float64, device=k_per_a.device)
    dose = torch.as_tensor(dose_e_per_a2, dtype=torch.float64, device=k_per_a.device)
    if mode == "accumulated":
        out = torch.exp(-(pre + dose) / ne2)
    elif mode == "integrated":
        start = torch.exp(-pre / ne2)
        # -expm1 keeps precision when dose << Ne; the limit dose -> 0 is exp(-pre / 2Ne).
        safe = torch.where(dose > 0, dose, torch.ones_like(dose))
        out = torch.where(dose > 0, start * -torch.expm1(-safe / ne2) * ne2 / safe, start)
    else:
        raise ValueError(f"unknown dose mode {mode!r} (expected 'integrated' or 'accumulated')")
    return out.to(torch.float32)


def frequency_magnitude(shape_hw: tuple[int, int], pixel_size_a: float, device=None) -> torch.Tensor:
    """``|k|`` in 1/Å on an rfft2 grid ``(h, w // 2 + 1)``."""
    fy, fx = frequency_grid(shape_hw, device=device, dtype=torch.float64)
    return torch.sqrt(fy ** 2 + fx ** 2) / pixel_size_a


def dose_filter(images: torch.Tensor, pixel_size_a: float, pre_exposure_e_per_a2, dose_e_per_a2=0.0, *,
                voltage_kv: float = 300.0, mode: str = "integrated") -> torch.Tensor:
    """Filter images ``(..., h, w)``; pre-exposure and dose are scalars or tensors of shape ``(...)``.

    The mean (k = 0) is kept. Images of a tilt series go in with each view's own pre-exposure and dose.
    """
    h, w = images.shape[-2:]
    k = frequency_magnitude((h, w), pixel_size_a, device=images.device)
    lead = images.shape[:-2]
    pre = torch.as_tensor(pre_exposure_e_per_a2, dtype=torch.float64, device=images.device)
    dose = torch.as_tensor(dose_e_per_a2, dtype=torch.float64, device=images.device)
    pre = pre.expand(lead)[..., None, None] if lead else pre
    dose = dose.expand(lead)[..., None, None] if lead else dose
    att = dose_attenuation(k, pre, dose, voltage_kv=voltage_kv, mode=mode)
    spec = torch.fft.rfft2(images.to(torch.float32))
    return torch.fft.irfft2(spec * att, s=(h, w))


def frame_dose_weights(shape_hw: tuple[int, int], pixel_size_a: float, n_frames: int, dose_per_frame_e_per_a2: float,
                       pre_exposure_e_per_a2: float = 0.0, *, voltage_kv: float = 300.0,
                       device=None) -> torch.Tensor:
    """Per-frame spectral weights ``(n, h, w // 2 + 1)`` for dose-weighted summing of a movie.

    Frame ``i`` is exposed from ``pre + i * d`` to ``pre + (i + 1) * d``. Weights are normalised so that
    ``sum_i w_i^2 = n`` at every frequency: summing ``w_i F_i`` keeps the k = 0 term of the plain sum and
    weights each frame by its signal (Grant & Grigorieff's optimal weighting).
    """
    k = frequency_magnitude(shape_hw, pixel_size_a, device=device)
    i = torch.arange(n_frames, dtype=torch.float64, device=device)[:, None, None]
    w = dose_attenuation(k, pre_exposure_e_per_a2 + i * dose_per_frame_e_per_a2, dose_per_frame_e_per_a2,
                         voltage_kv=voltage_kv).to(torch.float64)
    w = w * torch.sqrt(n_frames / (w ** 2).sum(0, keepdim=True).clamp(min=1e-300))
    return w.to(torch.float32)
