"""Shared helpers for simulator tests: small configs rendered in memory (no files)."""

from __future__ import annotations

import numpy as np
import torch

from tomoforge.core.sim.build import build_specimen
from tomoforge.core.sim.cases import CASES
from tomoforge.core.sim.config import SimConfig
from tomoforge.core.sim.detector import gain_reference
from tomoforge.core.sim.simulate import plan_tilt_series, render_view, session_start


def tiny_config(**changes) -> SimConfig:
    data = CASES["tiny"].model_dump()
    data.update(changes)
    return SimConfig.model_validate(data)


def render_series(cfg: SimConfig, seed: int = 0, views: list[int] | None = None):
    """Plan, build and render one tilt series in memory: (plan, specimen, box_shape, rendered views)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # many small tensor ops: thread wake-ups cost more than they give
    try:
        return _render_series(cfg, seed, views)
    finally:
        torch.set_num_threads(threads)


def _render_series(cfg: SimConfig, seed: int, views: list[int] | None):
    ss = np.random.SeedSequence([seed, 1000])
    rng_plan, rng_spec, rng_tex, rng_noise = (np.random.default_rng(s) for s in ss.spawn(4))
    plan = plan_tilt_series(cfg, 0, rng_plan, session_start(seed))
    n = cfg.effective_image_size_px()
    px = cfg.effective_pixel_size_a()
    d = int(np.ceil(1.15 * cfg.ice_thickness_a / px / 2)) * 2
    box = (d, n, n)
    spec = build_specimen(cfg, rng_spec, plan.max_abs_tilt_deg, (n * px, n * px, d * px))
    gain = gain_reference((n, n), cfg.gain_rms, np.random.default_rng(7))
    idx = range(len(plan.views)) if views is None else views
    out = [render_view(cfg, spec, plan.views[i], gain, rng_noise, rng_tex) for i in idx]
    return plan, spec, box, out


def lowpass(vol: torch.Tensor, sigma_vox: float) -> torch.Tensor:
    """Gaussian low-pass of a volume ``(d, h, w)`` with SD ``sigma_vox`` voxels (float64)."""
    d, h, w = vol.shape
    kz, ky, kx = (torch.fft.fftfreq(n, dtype=torch.float64) for n in (d, h, w))
    k2 = kz[:, None, None] ** 2 + ky[None, :, None] ** 2 + kx[None, None, :] ** 2
    return torch.fft.ifftn(torch.fft.fftn(vol.double()) * torch.exp(-2 * (np.pi * sigma_vox) ** 2 * k2)).real


def wedge_filter(vol: torch.Tensor, tilt_min: float, tilt_max: float) -> torch.Tensor:
    """Keep the Fourier components a tilt series from tilt_min to tilt_max measures (about Y)."""
    d, h, w = vol.shape
    kz = torch.fft.fftfreq(d, dtype=torch.float64)[:, None, None]
    kx = torch.fft.fftfreq(w, dtype=torch.float64)[None, None, :]
    # view theta measures k with kz / kx = tan(theta) (its central section)
    ang = (torch.rad2deg(torch.atan2(kz, kx)) + 90) % 180 - 90
    keep = ((ang >= tilt_min) & (ang <= tilt_max)) | ((kz == 0) & (kx == 0))
    return torch.fft.ifftn(torch.fft.fftn(vol.double()) * keep).real


def corr(a, b) -> float:
    """Pearson correlation of two arrays."""
    a = a - a.mean()
    b = b - b.mean()
    return float((a * b).sum() / (a.norm() * b.norm()))
