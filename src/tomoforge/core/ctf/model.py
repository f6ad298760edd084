"""The CTF model: electron wavelength, phase aberration, 1D and 2D CTF.

Conventions (the same as CTFFIND and ``tomoforge.model.CtfEstimate``):

- Defocus is in Å, positive for underfocus. ``defocus_u_a >= defocus_v_a``; the astigmatism angle is
  counter-clockwise from image +X (towards +Y, array rows) to the U axis. A spatial frequency whose
  azimuth ``phi = atan2(ky, kx)`` equals the angle sees ``defocus_u_a``:
  ``df(phi) = (u + v) / 2 + (u - v) / 2 * cos(2 (phi - angle))``.
- Phase ``chi(s) = pi lambda df s^2 - pi/2 Cs lambda^3 s^4 + phase_shift + asin(amplitude_contrast)`` and
  ``CTF = sin(chi)``, so the CTF is positive at low frequency (as ``torch_ctf`` computes it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

# CODATA constants (SI).
_H = 6.62607015e-34
_M0 = 9.1093837015e-31
_E = 1.602176634e-19
_C = 299792458.0


@dataclass(frozen=True)
class Optics:
    """Microscope constants of a CTF."""

    voltage_kv: float = 300.0
    cs_mm: float = 2.7
    amplitude_contrast: float = 0.07

    @property
    def wavelength_a(self) -> float:
        return electron_wavelength_a(self.voltage_kv)


@dataclass(frozen=True)
class CtfParams:
    """Per-image CTF parameters (Å, degrees)."""

    defocus_u_a: float
    defocus_v_a: float
    astigmatism_angle_deg: float = 0.0
    phase_shift_deg: float = 0.0

    @property
    def defocus_mean_a(self) -> float:
        return 0.5 * (self.defocus_u_a + self.defocus_v_a)

    @property
    def astigmatism_a(self) -> float:
        """Difference ``u - v`` (Å)."""
        return self.defocus_u_a - self.defocus_v_a

    def shifted(self, offset_a: float) -> CtfParams:
        """The same CTF with ``offset_a`` added to both defoci."""
        return CtfParams(self.defocus_u_a + offset_a, self.defocus_v_a + offset_a,
                         self.astigmatism_angle_deg, self.phase_shift_deg)

    def rotated(self, angle_deg: float) -> CtfParams:
        """The same CTF in an image frame rotated counter-clockwise by ``angle_deg``."""
        return canonical_params(self.defocus_u_a, self.defocus_v_a, self.astigmatism_angle_deg + angle_deg,
                                self.phase_shift_deg)


def canonical_params(defocus_u_a: float, defocus_v_a: float, angle_deg: float,
                     phase_shift_deg: float = 0.0) -> CtfParams:
    """CTFFIND's canonical form: ``u >= v`` and the angle in ``(-90, 90]``."""
    u, v, a = float(defocus_u_a), float(defocus_v_a), float(angle_deg)
    if u < v:
        u, v, a = v, u, a + 90.0
    a = -((-a + 90.0) % 180.0) + 90.0  # wrap to (-90, 90]
    return CtfParams(u, v, a, float(phase_shift_deg))


def electron_wavelength_a(voltage_kv: float) -> float:
    """Relativistic electron wavelength (Å) at an accelerating voltage in kV (0.01969 Å at 300 kV)."""
    ev = _E * voltage_kv * 1e3
    return _H * _C / math.sqrt(ev * (2 * _M0 * _C**2 + ev)) * 1e10


def frequency_grid(shape: tuple[int, int], pixel_size_a: float, rfft: bool = True,
                   device: torch.device | None = None, dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """Spatial frequencies ``(kx, ky)`` in 1/Å on the (r)FFT grid of an image ``(h, w)``, unshifted.

    Returns two tensors ``(h, w//2+1)`` (rfft) or ``(h, w)``.
    """
    h, w = shape
    ky = torch.fft.fftfreq(h, d=pixel_size_a, device=device, dtype=dtype)
    kx = (torch.fft.rfftfreq if rfft else torch.fft.fftfreq)(w, d=pixel_size_a, device=device, dtype=dtype)
    return kx[None, :].expand(h, -1), ky[:, None].expand(-1, kx.shape[0])


def defocus_at_azimuth(defocus_u_a, defocus_v_a, angle_deg, azimuth_rad: torch.Tensor) -> torch.Tensor:
    """Defocus (Å) seen by frequencies at ``azimuth_rad``; parameters broadcast as ``(..., 1, 1)``."""
    u = torch.as_tensor(defocus_u_a, dtype=azimuth_rad.dtype, device=azimuth_rad.device)
    v = torch.as_tensor(defocus_v_a, dtype=azimuth_rad.dtype, device=azimuth_rad.device)
    a = torch.deg2rad(torch.as_tensor(angle_deg, dtype=azimuth_rad.dtype, device=azimuth_rad.device))
    return 0.5 * (u + v) + 0.5 * (u - v) * torch.cos(2.0 * (azimuth_rad - a))


def ctf_phase(s2: torch.Tensor, defocus_a, optics: Optics, phase_shift_deg=0.0) -> torch.Tensor:
    """Phase ``chi`` (radians) at squared frequency ``s2`` (1/Å²) for defocus ``defocus_a`` (broadcast)."""
    lam = optics.wavelength_a
    cs = optics.cs_mm * 1e7
    df = torch.as_tensor(defocus_a, dtype=s2.dtype, device=s2.device)
    ps = torch.deg2rad(torch.as_tensor(phase_shift_deg, dtype=s2.dtype, device=s2.device))
    amp = math.asin(min(max(optics.amplitude_contrast, 0.0), 1.0))
    return math.pi * lam * df * s2 - 0.5 * math.pi * cs * lam**3 * s2 * s2 + ps + amp


def ctf_1d(freq_per_a: torch.Tensor, defocus_a, optics: Optics, phase_shift_deg=0.0) -> torch.Tensor:
    """CTF ``sin(chi)`` at radial frequencies ``freq_per_a`` (1/Å), any shape broadcasting with defocus."""
    return torch.sin(ctf_phase(freq_per_a * freq_per_a, defocus_a, optics, phase_shift_deg))


def ctf_2d(shape: tuple[int, int], pixel_size_a: float, params: CtfParams, optics: Optics,
           rfft: bool = True, device: torch.device | None = None, dtype=torch.float32) -> torch.Tensor:
    """CTF on the unshifted (r)FFT grid of an image ``(h, w)``: ``(h, w//2+1)`` or ``(h, w)``."""
    kx, ky = frequency_grid(shape, pixel_size_a, rfft=rfft, device=device, dtype=dtype)
    df = defocus_at_azimuth(params.defocus_u_a, params.defocus_v_a, params.astigmatism_angle_deg,
                            torch.atan2(ky, kx))
    return torch.sin(ctf_phase(kx * kx + ky * ky, df, optics, params.phase_shift_deg))


def equiphase_s2(s2: torch.Tensor, defocus_from_a, defocus_to_a, optics: Optics) -> torch.Tensor:
    """Squared frequency at which a CTF of ``defocus_to_a`` has the phase that ``defocus_from_a`` has at ``s2``.

    Solves ``pi lam dt u - a u^2 = pi lam df s2 - a s2^2`` for ``u`` (the root continuous with ``Cs = 0``);
    where no root exists (beyond the Cs turning point) the result is clamped to it.
    """
    lam = optics.wavelength_a
    a = 0.5 * math.pi * optics.cs_mm * 1e7 * lam**3
    df_from = torch.as_tensor(defocus_from_a, dtype=s2.dtype, device=s2.device)
    df_to = torch.as_tensor(defocus_to_a, dtype=s2.dtype, device=s2.device)
    x = math.pi * lam * df_from * s2 - a * s2 * s2
    b = math.pi * lam * df_to
    if a == 0.0:
        return x / b
    disc = (b * b - 4.0 * a * x).clamp_min(0.0)
    # (b - sqrt(disc)) / (2a) rewritten to stay accurate when a*x << b^2.
    return 2.0 * x / (b + torch.sqrt(disc))
