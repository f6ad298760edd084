"""Synthetic views for CTF tests: white-noise specimen, CTF from ``torch_ctf`` (an independent
implementation), a defocus that changes across columns as the documented tilt convention says, noise."""

from __future__ import annotations

import math

import torch
from torch_ctf import calculate_ctf_2d


def peer_ctf(shape, pixel_size_a, du_a, dv_a, angle_deg, voltage_kv=300.0, cs_mm=2.7, amp=0.07, ps_deg=0.0):
    """CTF on the unshifted rfft grid from torch_ctf (defocus in µm there; mean and half difference)."""
    return calculate_ctf_2d(defocus=(du_a + dv_a) / 2e4, astigmatism=(du_a - dv_a) / 2e4, astigmatism_angle=angle_deg,
                            voltage=voltage_kv, spherical_aberration=cs_mm, amplitude_contrast=amp, phase_shift=ps_deg,
                            pixel_size=pixel_size_a, image_shape=tuple(shape), rfft=True, fftshift=False).to(torch.float64)


def synth_view(du_a, dv_a, angle_deg, *, pixel_size_a=1.5, size=1024, tilt_deg=0.0, handedness=1, snr=0.5,
               bfactor=100.0, ps_deg=0.0, amp=0.07, seed=0, column_step_a=20.0, noise_free=False):
    """One view ``(size, size)``: ``CTF * specimen + noise``; defocus at column x (from the centre column)
    is ``d + handedness * pixel * (-x tan(tilt))``. Returns ``(image, specimen)``."""
    g = torch.Generator().manual_seed(seed)
    n = size
    spec = torch.randn(n, n, generator=g, dtype=torch.float64)
    ky = torch.fft.fftfreq(n, d=pixel_size_a, dtype=torch.float64)
    kx = torch.fft.rfftfreq(n, d=pixel_size_a, dtype=torch.float64)
    s2 = ky[:, None] ** 2 + kx[None] ** 2
    spec = torch.fft.irfft2(torch.fft.rfft2(spec) * torch.exp(-bfactor * s2 / 4), s=(n, n))
    f = torch.fft.rfft2(spec)
    x = torch.arange(n, dtype=torch.float64) - (n - 1) / 2
    offsets = handedness * pixel_size_a * (-x * math.tan(math.radians(tilt_deg)))
    groups = torch.round(offsets / column_step_a)
    img = torch.empty(n, n, dtype=torch.float64)
    for gval in torch.unique(groups):
        cols = groups == gval
        off = float(offsets[cols].mean())
        ctf = peer_ctf((n, n), pixel_size_a, du_a + off, dv_a + off, angle_deg, amp=amp, ps_deg=ps_deg)
        img[:, cols] = torch.fft.irfft2(f * ctf, s=(n, n))[:, cols]
    if noise_free:
        return img, spec
    img = img / img.std()
    img = img + torch.randn(n, n, generator=g, dtype=torch.float64) / math.sqrt(snr)
    return img.to(torch.float32), spec
