"""From projected phase to expected frame intensities: CTF per height bin, exposure attenuation, drift.

All images here are relative intensities (1 = unscattered beam).
"""

from __future__ import annotations

import math

import torch

from tomoforge.core.sim.optics import aberration_phase, ctf_from_chi, exposure_attenuation, frequency_grid


def view_spectrum(phase: torch.Tensor, absorb: torch.Tensor, heights_a: torch.Tensor, defocus_u_a: float,
                  defocus_v_a: float, astig_angle_deg: float, voltage_kv: float, cs_mm: float,
                  amplitude_contrast: float, pixel_size_a: float, ctf_on: bool = True,
                  handedness: int = 1) -> torch.Tensor:
    """Contrast spectrum ``(H, W//2+1)`` of one view: ``sum_k CTF_k Phi_k - cos(chi_k) Alpha_k``.

    phase, absorb: ``(k, H, W)`` per height bin; bin ``k`` has defocus ``defocus + handedness * heights_a[k]``.
    Without CTF the transfer is -1 for both (dark protein, an ideal projection).
    """
    ph = torch.fft.rfft2(phase)
    ab = torch.fft.rfft2(absorb)
    if not ctf_on:
        return -(ph.sum(0) + ab.sum(0))
    ky, kx = frequency_grid(phase.shape[-2:], pixel_size_a)
    dh = handedness * heights_a.to(torch.float32)
    chi = aberration_phase(ky, kx, defocus_u_a + dh, defocus_v_a + dh, astig_angle_deg, voltage_kv, cs_mm)
    out = (ctf_from_chi(chi, amplitude_contrast) * ph).sum(0)
    if torch.any(absorb != 0):
        out = out - (torch.cos(chi) * ab).sum(0)
    return out


def frame_intensity(spectrum: torch.Tensor, shape: tuple[int, int], pixel_size_a: float, shift_xy_px=(0.0, 0.0),
                    exposure_e_per_a2: float | None = None, voltage_kv: float = 300.0,
                    grid: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """Expected intensity ``(H, W)``: ``1 + 2 irfft(S * attenuation * shift ramp)``.

    ``shift_xy_px`` moves the content by (+dx, +dy) pixels (periodic; keep a margin).
    ``exposure_e_per_a2``: exposure before this frame's mid-point, None for no attenuation.
    ``grid``: ``frequency_grid(shape, 1.0, dtype=float64)`` when the caller has it already.
    """
    ky, kx = grid if grid is not None else frequency_grid(shape, 1.0, dtype=torch.float64)
    s = spectrum
    if exposure_e_per_a2 is not None:
        k = torch.sqrt(kx * kx + ky * ky) / pixel_size_a
        s = s * exposure_attenuation(k, exposure_e_per_a2, voltage_kv).to(s.real.dtype)
    dx, dy = float(shift_xy_px[0]), float(shift_xy_px[1])
    if dx or dy:
        # separable ramp: exp(-2 pi i (kx dx + ky dy)) = ramp_y[:, None] * ramp_x[None, :]
        ry = torch.exp(-2j * math.pi * ky[:, :1] * dy)
        rx = torch.exp(-2j * math.pi * kx[:1, :] * dx)
        s = s * (ry * rx).to(s.dtype)
    return 1 + 2 * torch.fft.irfft2(s, s=shape)
