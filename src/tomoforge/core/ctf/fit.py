"""CTFFIND-style fit of a background-subtracted amplitude spectrum against CTF².

The background (rotational average smoothed in log space over half a Thon-ring period) is subtracted and
the rest divided by its smooth radial RMS, so strong low-frequency structure cannot outweigh the rings.

1. Exhaustive search of the mean defocus (and phase shift) on the 1D rotational average, each candidate
   CTF² with the same smoothing removed as the data.
2. Local 2D refinement of defocus U, V, angle (and phase shift) by Nelder-Mead on the normalised
   cross-correlation over the resolution band (astigmatism bounded by ``max_astigmatism_a``).
3. The background is re-estimated at the fitted defocus and the refinement repeated.
4. The fit resolution is where the ring-wise cross-correlation of the equiphase 1D average with the fit
   first drops below 0.75 (CTFFIND's criterion).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy.optimize import minimize

from tomoforge.core.ctf.model import CtfParams, Optics, canonical_params, ctf_phase, equiphase_s2
from tomoforge.core.ctf.spectrum import (
    radial_average,
    radius_grid,
    running_mean,
    sample_profile,
    smooth_background,
)

FIT_RESOLUTION_THRESHOLD = 0.75


@dataclass(frozen=True)
class FitSettings:
    """What to search. Resolutions and defoci in Å, angles in degrees."""

    resolution_min_a: float = 30.0
    resolution_max_a: float = 5.0
    defocus_min_a: float = 5000.0
    defocus_max_a: float = 50000.0
    defocus_step_a: float = 500.0
    fit_astigmatism: bool = True
    max_astigmatism_a: float = 2000.0  # hard limit on U - V (noise otherwise buys score with astigmatism)
    fit_phase_shift: bool = False
    phase_shift_min_deg: float = 0.0
    phase_shift_max_deg: float = 180.0
    phase_shift_step_deg: float = 10.0

    def check(self, pixel_size_a: float) -> None:
        """Raise ValueError for a band outside Nyquist or an empty defocus range."""
        nyquist = 2.0 * pixel_size_a
        if self.resolution_max_a < nyquist - 1e-6:
            raise ValueError(f"resolution_max_a {self.resolution_max_a:g} Å is beyond Nyquist ({nyquist:g} Å)")
        if self.resolution_min_a <= self.resolution_max_a:
            raise ValueError(f"resolution_min_a {self.resolution_min_a:g} Å must be larger (coarser) than "
                             f"resolution_max_a {self.resolution_max_a:g} Å")
        if self.defocus_min_a > self.defocus_max_a:
            raise ValueError(f"defocus_min_a {self.defocus_min_a:g} > defocus_max_a {self.defocus_max_a:g}")
        if self.max_astigmatism_a < 0:
            raise ValueError(f"max_astigmatism_a must not be negative, got {self.max_astigmatism_a:g}")
        if self.defocus_step_a <= 0:
            raise ValueError(f"defocus_step_a must be positive, got {self.defocus_step_a:g}")


@dataclass
class CtfFit:
    """A fitted CTF and what is needed to draw it."""

    params: CtfParams
    score: float
    fit_resolution_a: float
    spectrum: torch.Tensor = field(repr=False)  # (box, box//2+1) background-subtracted amplitude
    background: torch.Tensor = field(repr=False)  # (box, box//2+1)
    profile_freq_per_a: torch.Tensor = field(repr=False)  # (n,) 1D frequencies
    profile: torch.Tensor = field(repr=False)  # (n,) equiphase average of ``spectrum``
    profile_fit: torch.Tensor = field(repr=False)  # (n,) CTF² of the fit, scaled to the profile
    profile_cc: torch.Tensor = field(repr=False)  # (n,) ring-wise cross-correlation


def _grid(box: int, pixel_size_a: float):
    ky = torch.fft.fftfreq(box, d=pixel_size_a)
    kx = torch.fft.rfftfreq(box, d=pixel_size_a)
    kx, ky = kx[None, :].expand(box, -1), ky[:, None].expand(-1, kx.shape[0])
    return kx, ky


def ring_period_bins(freq_per_a: torch.Tensor, defocus_a: float, optics: Optics, bin_per_a: float) -> torch.Tensor:
    """Local period of CTF² (in profile bins) at frequencies ``freq_per_a``: ``pi / |d chi / d s|``."""
    lam = optics.wavelength_a
    cs = optics.cs_mm * 1e7
    s = freq_per_a.to(torch.float64)
    dchi = (2 * math.pi * lam * defocus_a * s - 2 * math.pi * cs * lam**3 * s**3).abs()
    return (math.pi / dchi.clamp_min(1e-12)) * bin_per_a


def _smoothing_half_width(box: int, pixel_size_a: float, defocus_a: float, optics: Optics) -> torch.Tensor:
    """Half width (bins) of the background smoothing: half a ring period, and at most a third of the radius
    so the steep low-frequency fall-off is followed."""
    n = box // 2 + 1
    freq = torch.arange(n, dtype=torch.float64) / (box * pixel_size_a)
    period = ring_period_bins(freq, defocus_a, optics, box * pixel_size_a)
    r = torch.arange(n, dtype=torch.float64)
    return torch.minimum(0.5 * period, (r / 3).clamp_min(1.0)).clamp(1.0, n / 8)


def estimate_background(amplitude: torch.Tensor, pixel_size_a: float, defocus_a: float,
                        optics: Optics) -> torch.Tensor:
    """Smooth isotropic background ``(box, box//2+1)`` of an amplitude spectrum.

    The rotational average is smoothed over half a Thon-ring period at ``defocus_a``, which averages
    the rings away while following the background's fall-off. Smoothing the logarithm avoids the bias
    a box filter has on the steep, convex low-frequency fall-off.
    """
    box = amplitude.shape[-2]
    radius = radius_grid(box)
    prof = radial_average(amplitude, radius, box // 2 + 1).clamp_min(1e-30)
    hw = _smoothing_half_width(box, pixel_size_a, defocus_a, optics)
    bg = torch.exp(smooth_background(torch.log(prof.to(torch.float64)), hw)).to(prof.dtype)
    return sample_profile(bg, radius)


def normalise_spectrum(residual: torch.Tensor, pixel_size_a: float, defocus_a: float,
                       optics: Optics) -> torch.Tensor:
    """Divide a background-subtracted spectrum by its smooth radial RMS, so every ring weighs alike
    in the cross-correlation (strong low-frequency structure would otherwise drown the outer rings)."""
    box = residual.shape[-2]
    radius = radius_grid(box)
    ms = radial_average(residual * residual, radius, box // 2 + 1)
    hw = _smoothing_half_width(box, pixel_size_a, defocus_a, optics) * 2
    rms = smooth_background(ms, hw).clamp_min(1e-30).sqrt()
    return residual / sample_profile(rms, radius)


def prepared_spectrum(amplitude: torch.Tensor, pixel_size_a: float, defocus_a: float,
                      optics: Optics) -> tuple[torch.Tensor, torch.Tensor]:
    """Background-subtracted, normalised spectrum and the background."""
    background = estimate_background(amplitude, pixel_size_a, defocus_a, optics)
    return normalise_spectrum(amplitude - background, pixel_size_a, defocus_a, optics), background


def _ncc(data: torch.Tensor, model: torch.Tensor) -> torch.Tensor:
    """Normalised cross-correlation along the last axis."""
    d = data - data.mean(-1, keepdim=True)
    m = model - model.mean(-1, keepdim=True)
    return (d * m).sum(-1) / torch.sqrt((d * d).sum(-1) * (m * m).sum(-1)).clamp_min(1e-30)


def search_defocus_1d(profile: torch.Tensor, freq_per_a: torch.Tensor, band: torch.Tensor,
                      settings: FitSettings, optics: Optics, half_width: torch.Tensor | None = None
                      ) -> tuple[float, float, float]:
    """Exhaustive search on a 1D profile: best ``(defocus_a, phase_shift_deg, score)``.

    ``half_width`` ``(n,)``: the smoothing that removed the background from ``profile``; the same
    smoothing is removed from each candidate CTF², so what the background estimate left behind (or took
    away) cannot favour a wrong defocus.
    """
    dfs = torch.arange(settings.defocus_min_a, settings.defocus_max_a + 0.5 * settings.defocus_step_a,
                       settings.defocus_step_a, dtype=torch.float64)
    if settings.fit_phase_shift:
        pss = torch.arange(settings.phase_shift_min_deg, settings.phase_shift_max_deg, settings.phase_shift_step_deg,
                           dtype=torch.float64)
    else:
        pss = torch.tensor([settings.phase_shift_min_deg], dtype=torch.float64)
    s2 = freq_per_a.to(torch.float64) ** 2
    model = torch.sin(ctf_phase(s2[None, None], dfs[:, None, None], optics, pss[None, :, None])) ** 2
    if half_width is not None:
        model = model - smooth_background(model, half_width)
    cc = _ncc(profile[band].to(torch.float64)[None, None], model[..., band])  # (n_df, n_ps)
    i = int(torch.argmax(cc))
    idf, ips = divmod(i, pss.numel())
    return float(dfs[idf]), float(pss[ips]), float(cc[idf, ips])


class _Band:
    """The pixels of a spectrum inside the resolution band, cropped for speed."""

    def __init__(self, spectrum: torch.Tensor, pixel_size_a: float, settings: FitSettings):
        box = spectrum.shape[-2]
        kx, ky = _grid(box, pixel_size_a)
        s2 = kx * kx + ky * ky
        mask = (s2 >= settings.resolution_min_a ** -2) & (s2 <= settings.resolution_max_a ** -2)
        self.s2 = s2[mask].to(torch.float64)
        self.azimuth = torch.atan2(ky, kx)[mask].to(torch.float64)
        self.data = spectrum[mask].to(torch.float64)
        self.data = self.data - self.data.mean()

    def score(self, dfm: float, ax: float, ay: float, ps: float, optics: Optics) -> float:
        # Astigmatism as (half difference) * (cos 2a, sin 2a): smooth, no angle wrap.
        df = dfm + ax * torch.cos(2 * self.azimuth) + ay * torch.sin(2 * self.azimuth)
        m = torch.sin(ctf_phase(self.s2, df, optics, ps)) ** 2
        m = m - m.mean()
        return float((self.data * m).sum() / torch.sqrt((self.data ** 2).sum() * (m * m).sum()).clamp_min(1e-30))


def refine_2d(spectrum: torch.Tensor, pixel_size_a: float, start: CtfParams, settings: FitSettings,
              optics: Optics) -> tuple[CtfParams, float]:
    """Local Nelder-Mead refinement of the 2D fit from ``start``: best params and NCC."""
    band = _Band(spectrum, pixel_size_a, settings)
    half = 0.5 * start.astigmatism_a
    a = math.radians(start.astigmatism_angle_deg)
    x0 = [start.defocus_mean_a, half * math.cos(2 * a), half * math.sin(2 * a), start.phase_shift_deg]
    free = [True, settings.fit_astigmatism, settings.fit_astigmatism, settings.fit_phase_shift]
    scale = np.array([200.0, 200.0, 200.0, 10.0])

    def unpack(x):
        full = list(x0)
        j = 0
        for i in range(4):
            if free[i]:
                full[i] = x0[i] + float(x[j]) * scale[i]
                j += 1
        return full

    def cost(x):
        dfm, ax, ay, ps = unpack(x)
        excess = 2.0 * math.hypot(ax, ay) - settings.max_astigmatism_a
        if excess > 0:
            return 1.0 + excess / max(settings.max_astigmatism_a, 1.0)
        return -band.score(dfm, ax, ay, ps, optics)

    n_free = sum(free)
    starts = [np.zeros(n_free)]
    if settings.fit_astigmatism and abs(half) < 1.0:
        # Break the symmetry of the round start: try a few astigmatism directions.
        for ang in (0.0, 45.0, 90.0, 135.0):
            x = np.zeros(n_free)
            x[1], x[2] = 1.5 * math.cos(math.radians(2 * ang)), 1.5 * math.sin(math.radians(2 * ang))
            starts.append(x)
    best = min(starts, key=cost)
    simplex = [best] + [best + np.eye(n_free)[i] for i in range(n_free)]
    res = minimize(cost, best, method="Nelder-Mead",
                   options={"initial_simplex": np.array(simplex), "xatol": 0.02, "fatol": 1e-6, "maxiter": 600})
    dfm, ax, ay, ps = unpack(res.x)
    half = math.hypot(ax, ay)
    angle = 0.5 * math.degrees(math.atan2(ay, ax))
    ps = ps % 180.0 if settings.fit_phase_shift else ps
    return canonical_params(dfm + half, dfm - half, angle, ps), -float(res.fun)


def equiphase_average(spectrum: torch.Tensor, pixel_size_a: float, params: CtfParams,
                      optics: Optics) -> tuple[torch.Tensor, torch.Tensor]:
    """1D average ``(n,)`` of a 2D spectrum along lines of equal CTF phase (astigmatism removed).

    Each pixel is placed at the radius where a round CTF of the mean defocus has the same phase.
    Returns the frequencies ``(n,)`` (1/Å) and the profile.
    """
    box = spectrum.shape[-2]
    kx, ky = _grid(box, pixel_size_a)
    s2 = (kx * kx + ky * ky).to(torch.float64)
    az = torch.atan2(ky, kx).to(torch.float64)
    half = 0.5 * params.astigmatism_a
    df = params.defocus_mean_a + half * torch.cos(2 * (az - math.radians(params.astigmatism_angle_deg)))
    s2_eq = equiphase_s2(s2, df, params.defocus_mean_a, optics)
    n = box // 2 + 1
    radius = torch.sqrt(s2_eq.clamp_min(0)) * box * pixel_size_a
    prof = radial_average(spectrum.to(torch.float64), radius, n)
    return torch.arange(n, dtype=torch.float64) / (box * pixel_size_a), prof


def ring_cc(profile: torch.Tensor, model: torch.Tensor, half_width: torch.Tensor) -> torch.Tensor:
    """Cross-correlation of ``profile`` and ``model`` ``(n,)`` in a sliding window of ``half_width`` bins."""
    e = lambda x: running_mean(x, half_width)  # noqa: E731
    md, mm = e(profile), e(model)
    cov = e(profile * model) - md * mm
    vd = (e(profile * profile) - md * md).clamp_min(0)
    vm = (e(model * model) - mm * mm).clamp_min(0)
    return cov / torch.sqrt(vd * vm).clamp_min(1e-30)


def fit_resolution_a(freq_per_a: torch.Tensor, cc: torch.Tensor, start_per_a: float, pixel_size_a: float,
                     threshold: float = FIT_RESOLUTION_THRESHOLD) -> float:
    """Resolution (Å) where ``cc`` first drops below ``threshold`` beyond ``start_per_a``; Nyquist if never."""
    idx = torch.nonzero((freq_per_a >= start_per_a) & (cc < threshold)).squeeze(1)
    if idx.numel() == 0:
        return 2.0 * pixel_size_a
    i = int(idx[0])
    if i == 0 or freq_per_a[i] <= 0:
        return float("inf")
    # Interpolate the crossing between bins i-1 and i.
    c0, c1 = float(cc[i - 1]), float(cc[i])
    f0, f1 = float(freq_per_a[i - 1]), float(freq_per_a[i])
    t = 0.0 if c0 == c1 else min(max((c0 - threshold) / (c0 - c1), 0.0), 1.0)
    return 1.0 / (f0 + t * (f1 - f0))


def first_zero_per_a(defocus_a: float, phase_shift_deg: float, optics: Optics) -> float:
    """Frequency (1/Å) of the first CTF zero, ignoring Cs (good enough to start the resolution scan)."""
    chi0 = math.asin(optics.amplitude_contrast) + math.radians(phase_shift_deg)
    return math.sqrt(max(math.pi - chi0, 1e-3) / (math.pi * optics.wavelength_a * max(defocus_a, 1.0)))


def fit_spectrum(amplitude: torch.Tensor, pixel_size_a: float, optics: Optics, settings: FitSettings,
                 start: CtfParams | None = None) -> CtfFit:
    """Fit a CTF to a mean amplitude spectrum ``(box, box//2+1)`` (unshifted rfft layout).

    With ``start`` the exhaustive search is skipped and only the local refinement runs.
    """
    settings.check(pixel_size_a)
    amplitude = amplitude.to(torch.float32)
    box = amplitude.shape[-2]
    n = box // 2 + 1
    freq = torch.arange(n, dtype=torch.float64) / (box * pixel_size_a)
    band1d = (freq >= 1 / settings.resolution_min_a) & (freq <= 1 / settings.resolution_max_a)
    if int(band1d.sum()) < 4:
        raise ValueError(f"the band {settings.resolution_min_a:g}-{settings.resolution_max_a:g} Å holds fewer "
                         f"than 4 frequencies at box {box}")
    if start is None:
        guess = math.sqrt(max(settings.defocus_min_a, 1000.0) * settings.defocus_max_a)
        spec, _ = prepared_spectrum(amplitude, pixel_size_a, guess, optics)
        prof = radial_average(spec, radius_grid(box), n).to(torch.float64)
        hw = _smoothing_half_width(box, pixel_size_a, guess, optics)
        dfm, ps, _ = search_defocus_1d(prof, freq, band1d, settings, optics, hw)
        start = CtfParams(dfm, dfm, 0.0, ps)
    params = start
    for _ in range(2):  # background from the current defocus, then refine
        spec, background = prepared_spectrum(amplitude, pixel_size_a, params.defocus_mean_a, optics)
        params, score = refine_2d(spec, pixel_size_a, params, settings, optics)
    freq_eq, prof = equiphase_average(spec, pixel_size_a, params, optics)
    model = torch.sin(ctf_phase(freq_eq ** 2, params.defocus_mean_a, optics, params.phase_shift_deg)) ** 2
    period = ring_period_bins(freq_eq, params.defocus_mean_a, optics, box * pixel_size_a)
    cc = ring_cc(prof, model, (0.5 * period).clamp(1.5, n / 4))
    start_f = max(1 / settings.resolution_min_a, first_zero_per_a(params.defocus_mean_a, params.phase_shift_deg, optics))
    res = fit_resolution_a(freq_eq, cc, start_f, pixel_size_a)
    # Scale the model to the data in the band for display.
    sel = band1d
    d, m = prof[sel], model[sel]
    gain = float(((d - d.mean()) * (m - m.mean())).sum() / ((m - m.mean()) ** 2).sum().clamp_min(1e-30))
    fit_prof = (model - m.mean()) * gain + d.mean()
    return CtfFit(params=params, score=score, fit_resolution_a=res, spectrum=spec, background=background,
                  profile_freq_per_a=freq_eq, profile=prof, profile_fit=fit_prof, profile_cc=cc)
