"""Analytic test phantoms: Gaussian blobs and their exact projections under core/geometry conventions."""

from __future__ import annotations

import math

import torch

from tomoforge.core.geometry import project_points, xf_from_parameters, xf_magnification


def random_blobs(n: int, volume_shape, seed: int = 0, margin: float = 6.0, sigma_range=(1.2, 3.0),
                 min_abs_z: float = 4.0, amp_scale: float = 1.0):
    """Blob centres ``(n, 3)`` (X, Y, Z relative to the volume centre, pixels), sigmas and amplitudes.

    ``|Z| >= min_abs_z`` keeps blobs off the mid-plane so a Z mirror moves every one of them.
    """
    g = torch.Generator().manual_seed(seed)
    d, h, w = volume_shape
    half = torch.tensor([(w - 1) / 2 - margin, (h - 1) / 2 - margin, (d - 1) / 2 - margin], dtype=torch.float64)
    centres = (torch.rand(n, 3, generator=g, dtype=torch.float64) * 2 - 1) * half
    zmag = min_abs_z + torch.rand(n, generator=g, dtype=torch.float64) * (half[2] - min_abs_z)
    centres[:, 2] = torch.where(centres[:, 2] < 0, -zmag, zmag)
    sig = sigma_range[0] + torch.rand(n, generator=g, dtype=torch.float64) * (sigma_range[1] - sigma_range[0])
    amp = (0.5 + torch.rand(n, generator=g, dtype=torch.float64)) * amp_scale
    return centres, sig, amp


def render_volume(centres, sigmas, amps, volume_shape, binning: float = 1.0, z_shift_px: float = 0.0):
    """Sample the blobs on the voxel grid ``(d, h, w)`` (voxel = ``binning`` pixels), float32."""
    d, h, w = volume_shape
    z = (torch.arange(d, dtype=torch.float64) - (d - 1) / 2) * binning - z_shift_px
    y = (torch.arange(h, dtype=torch.float64) - (h - 1) / 2) * binning
    x = (torch.arange(w, dtype=torch.float64) - (w - 1) / 2) * binning
    vol = torch.zeros(volume_shape, dtype=torch.float64)
    for (cx, cy, cz), s, a in zip(centres.tolist(), sigmas.tolist(), amps.tolist(), strict=True):
        gz = torch.exp(-((z - cz) ** 2) / (2 * s * s))
        gy = torch.exp(-((y - cy) ** 2) / (2 * s * s))
        gx = torch.exp(-((x - cx) ** 2) / (2 * s * s))
        vol += a * gz[:, None, None] * gy[None, :, None] * gx[None, None, :]
    return vol.float()


def project_blobs(centres, sigmas, amps, tilt_deg, xf, image_shape, x_tilt_deg: float = 0.0):
    """Raw views ``(v, H, W)``: exact line integrals of the blobs, sampled at raw pixel centres."""
    uv = project_points(centres, torch.as_tensor(tilt_deg, dtype=torch.float64), xf, image_shape,
                        x_tilt_deg=x_tilt_deg)  # (v, n, 2)
    mag = xf_magnification(xf.to(torch.float64))  # (v,)
    hh, ww = image_shape
    yy = torch.arange(hh, dtype=torch.float64)[:, None]
    xx = torch.arange(ww, dtype=torch.float64)[None, :]
    out = torch.zeros((uv.shape[0], hh, ww), dtype=torch.float64)
    for i in range(uv.shape[0]):
        s_raw = sigmas / mag[i]  # aligned-frame Gaussian seen in the raw frame
        for j in range(uv.shape[1]):
            u, v = uv[i, j].tolist()
            s = float(s_raw[j])
            line = float(amps[j]) * math.sqrt(2 * math.pi) * float(sigmas[j])
            out[i] += line * torch.exp(-((xx - u) ** 2 + (yy - v) ** 2) / (2 * s * s))
    return out.float()


def random_alignment(tilt_deg, axis_deg: float = 84.0, shift_px: float = 6.0, mag_jitter: float = 0.0,
                     seed: int = 1):
    """Realistic ``.xf`` ``(v, 2, 3)``: tilt axis near ``axis_deg``, per-view shifts and rotation jitter."""
    g = torch.Generator().manual_seed(seed)
    v = len(tilt_deg)
    rot = axis_deg + 0.5 * torch.randn(v, generator=g, dtype=torch.float64)
    shift = shift_px * torch.randn(v, 2, generator=g, dtype=torch.float64)
    mag = 1.0 + mag_jitter * torch.randn(v, generator=g, dtype=torch.float64)
    return xf_from_parameters(rot, shift, mag)


def lowpass(vol: torch.Tensor, cutoff: float) -> torch.Tensor:
    """Sharp radial low-pass at ``cutoff`` cycles/voxel."""
    spec = torch.fft.rfftn(vol.double())
    kz = torch.fft.fftfreq(vol.shape[0], dtype=torch.float64)[:, None, None]
    ky = torch.fft.fftfreq(vol.shape[1], dtype=torch.float64)[None, :, None]
    kx = torch.fft.rfftfreq(vol.shape[2], dtype=torch.float64)[None, None, :]
    spec = spec * ((kz**2 + ky**2 + kx**2) <= cutoff**2)
    return torch.fft.irfftn(spec, s=vol.shape).float()


def corr(a: torch.Tensor, b: torch.Tensor) -> float:
    a = a.double().flatten() - a.double().mean()
    b = b.double().flatten() - b.double().mean()
    return float((a @ b) / (a.norm() * b.norm()))


def wedge_limit(vol: torch.Tensor, max_tilt_deg: float) -> torch.Tensor:
    """Truth restricted to the measured wedge (what any reconstruction from +-max_tilt can recover)."""
    spec = torch.fft.fftn(vol.double())
    kz = torch.fft.fftfreq(vol.shape[0])[:, None, None]
    kx = torch.fft.fftfreq(vol.shape[2])[None, None, :]
    ang = torch.rad2deg(torch.atan2(kz.abs(), kx.abs()))
    keep = (ang <= max_tilt_deg + 0.5) | ((kz == 0) & (kx == 0))
    return torch.fft.ifftn(spec * keep).real.float()
