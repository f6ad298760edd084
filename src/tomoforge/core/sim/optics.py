"""Electron optics for the simulator: wavelength, interaction constant, CTF, exposure attenuation.

Conventions: defocus positive = underfocus (Å); astigmatism angle = direction of the U axis, CCW from image +X;
frequencies in 1/Å. The intensity of a weak phase/amplitude object is
``I = 1 + 2 F^-1[ -sin(chi + asin(A)) Phi - cos(chi) Alpha ]`` with ``Phi`` the projected phase and ``Alpha``
the extra absorption (gold), ``chi = pi lambda df k^2 - pi/2 Cs lambda^3 k^4``.
"""

from __future__ import annotations

import math

import torch

_MC2_KEV = 510.99895  # electron rest energy


def electron_wavelength_a(voltage_kv: float) -> float:
    """Relativistic electron wavelength (Å)."""
    v = voltage_kv * 1e3
    return 12.264259 / math.sqrt(v * (1 + 0.97848e-6 * v))


def interaction_constant(voltage_kv: float) -> float:
    """sigma_e in rad / (V Å): phase shift per volt of potential per Å of path."""
    lam = electron_wavelength_a(voltage_kv)
    return 2 * math.pi / (lam * voltage_kv * 1e3) * (_MC2_KEV + voltage_kv) / (2 * _MC2_KEV + voltage_kv)


def frequency_grid(shape: tuple[int, int], pixel_size_a: float, rfft: bool = True,
                   dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """``(ky, kx)`` in 1/Å for an ``(h, w)`` image; rfft layout by default ``(h, w // 2 + 1)``."""
    h, w = shape
    ky = torch.fft.fftfreq(h, d=pixel_size_a, dtype=torch.float64)
    kx = (torch.fft.rfftfreq if rfft else torch.fft.fftfreq)(w, d=pixel_size_a, dtype=torch.float64)
    gy, gx = torch.meshgrid(ky, kx, indexing="ij")
    return gy.to(dtype), gx.to(dtype)


def aberration_phase(ky: torch.Tensor, kx: torch.Tensor, defocus_u_a, defocus_v_a, astig_angle_deg: float,
                     voltage_kv: float, cs_mm: float) -> torch.Tensor:
    """chi ``(..., h, w)``; ``defocus_*`` may be tensors ``(k,)`` giving a stack ``(k, h, w)``."""
    lam = electron_wavelength_a(voltage_kv)
    du = torch.as_tensor(defocus_u_a, dtype=kx.dtype)[..., None, None]
    dv = torch.as_tensor(defocus_v_a, dtype=kx.dtype)[..., None, None]
    k2 = kx * kx + ky * ky
    ang = torch.atan2(ky, kx) - math.radians(astig_angle_deg)
    df = 0.5 * (du + dv) + 0.5 * (du - dv) * torch.cos(2 * ang)
    return math.pi * lam * df * k2 - 0.5 * math.pi * cs_mm * 1e7 * lam ** 3 * k2 * k2


def ctf_from_chi(chi: torch.Tensor, amplitude_contrast: float) -> torch.Tensor:
    """Phase-contrast transfer ``-sin(chi + asin(A))`` (negative at low frequency: protein is dark)."""
    return -torch.sin(chi + math.asin(amplitude_contrast))


def ctf_zeros_a(defocus_a: float, voltage_kv: float, cs_mm: float, amplitude_contrast: float,
                n: int = 1) -> list[float]:
    """Spatial frequencies (1/Å) of the first ``n`` zeros of ``-sin(chi + asin A)`` (isotropic defocus)."""
    lam = electron_wavelength_a(voltage_kv)
    cs = cs_mm * 1e7
    out = []
    for j in range(1, n + 1):
        target = j * math.pi - math.asin(amplitude_contrast)
        # pi lam df k^2 - pi/2 cs lam^3 k^4 = target, a quadratic in k^2 (take the small root)
        a, b, c = -0.5 * math.pi * cs * lam ** 3, math.pi * lam * defocus_a, -target
        if abs(a) < 1e-30:
            k2 = -c / b
        else:
            disc = b * b - 4 * a * c
            k2 = (-b + math.sqrt(disc)) / (2 * a) if disc >= 0 else float("nan")
        out.append(math.sqrt(k2))
    return out


def critical_exposure(k: torch.Tensor, voltage_kv: float) -> torch.Tensor:
    """Grant & Grigorieff (2015) critical exposure (e/Å²) at frequency ``k`` (1/Å); scaled 0.8 at 200 kV."""
    ne = 0.245 * k.clamp_min(1e-6).pow(-1.665) + 2.81
    if voltage_kv < 250:
        ne = ne * 0.8
    return ne


def exposure_attenuation(k: torch.Tensor, dose_e_per_a2: float, voltage_kv: float) -> torch.Tensor:
    """Amplitude attenuation ``exp(-N / (2 Ne(k)))`` after an accumulated exposure ``N``."""
    return torch.exp(-dose_e_per_a2 / (2 * critical_exposure(k, voltage_kv)))
