"""One tilt series in memory: plan the acquisition (angles, errors, defocus, dose, motion), render the views.

Pure computation; io/sim_session.py writes the files. Random streams are numpy Generators handed in by the
caller, one per purpose, so that switching noise off does not change the specimen or the geometry.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import torch

from tomoforge.core.geometry import apply_xf, image_center, xf_from_parameters
from tomoforge.core.sim.config import SimConfig
from tomoforge.core.sim.detector import count_frame, xray_hits
from tomoforge.core.sim.imaging import frame_intensity, view_spectrum
from tomoforge.core.sim.motion import global_drift_px, local_control_grid, local_field_px, warp_local
from tomoforge.core.sim.optics import frequency_grid, interaction_constant
from tomoforge.core.sim.projection import project_view
from tomoforge.core.sim.specimen import Specimen
from tomoforge.core.sim.tilt_scheme import bidirectional_tilts, dose_symmetric_tilts, parse_custom_tilts


@dataclass
class ViewPlan:
    """Everything decided about one view before rendering."""

    order: int
    nominal_tilt_deg: float
    tilt_deg: float
    tilt_axis_deg: float
    magnification: float
    shift_xy_px: tuple[float, float]
    xf: torch.Tensor  # (2, 3)
    defocus_u_a: float  # at the volume centre's projection (height 0)
    defocus_v_a: float
    astig_angle_deg: float
    dose_e_per_a2: float
    accumulated_dose_e_per_a2: float
    transmission: float
    dark: bool
    date_time: datetime
    frame_shifts_px: np.ndarray  # (f, 2)
    local_control_px: np.ndarray | None  # (f, 2, g, g)

    @property
    def pre_exposure_e_per_a2(self) -> float:
        return self.accumulated_dose_e_per_a2 - self.dose_e_per_a2

    def height_at_raw_center_a(self, image_shape: tuple[int, int], pixel_size_a: float, slab_tilt_deg: float) -> float:
        """Height of the specimen mid-plane under the raw image centre (Å)."""
        c = image_center(image_shape)
        al = apply_xf(self.xf.to(torch.float64), c[None], c)[0]
        x_al = float(al[0] - c[0]) * pixel_size_a
        return -x_al * math.tan(math.radians(self.tilt_deg - slab_tilt_deg))


@dataclass
class SeriesPlan:
    ts_index: int
    ts_id: str
    bad: bool
    slab_scale: float
    tilt_axis_nominal_deg: float
    tilt_axis_deg: float
    tilt_offset_deg: float
    defocus_mean_a: float
    views: list[ViewPlan] = field(default_factory=list)  # acquisition order

    @property
    def max_abs_tilt_deg(self) -> float:
        return max(abs(v.tilt_deg) for v in self.views)


def nominal_tilts(cfg: SimConfig) -> list[float]:
    """Nominal tilt angles in acquisition order, centred on the pretilt."""
    if cfg.tilt_scheme == "custom":
        return parse_custom_tilts(cfg.custom_tilts_deg)
    if cfg.tilt_scheme == "bidirectional":
        return bidirectional_tilts(cfg.tilt_step_deg, cfg.tilt_max_deg, cfg.bidirectional_start_deg + cfg.pretilt_deg,
                                   cfg.pretilt_deg)
    return dose_symmetric_tilts(cfg.tilt_step_deg, cfg.tilt_max_deg, cfg.dose_symmetric_group, cfg.pretilt_deg)


def parse_index_list(text: str) -> list[str]:
    return [p.strip() for p in text.split(",") if p.strip()]


def dark_view_orders(cfg: SimConfig, ts_index: int) -> set[int]:
    """Acquisition orders of dark views in tilt series ``ts_index`` (0-based) from ``cfg.dark_views``."""
    out = set()
    for item in parse_index_list(cfg.dark_views):
        if ":" in item:
            ts, order = item.split(":", 1)
            if int(ts) - 1 == ts_index:
                out.add(int(order))
        elif ts_index == 0:
            out.add(int(item))
    return out


def session_start(seed: int) -> datetime:
    """A fixed clock for the seed, so that the same seed writes the same DateTime values."""
    return datetime(2026, 1, 5, 9, 0, 0) + timedelta(days=seed % 300, minutes=7 * (seed % 50))


def plan_tilt_series(cfg: SimConfig, ts_index: int, rng, start: datetime) -> SeriesPlan:
    """Draw the acquisition of one tilt series (``rng``: numpy Generator)."""
    bad = str(ts_index + 1) in parse_index_list(cfg.bad_series)
    s = cfg.scale
    angles = nominal_tilts(cfg)
    offset = float(rng.uniform(-cfg.tilt_offset_max_deg, cfg.tilt_offset_max_deg))
    axis = cfg.tilt_axis_nominal_deg + float(rng.uniform(-cfg.tilt_axis_error_deg, cfg.tilt_axis_error_deg))
    sign = 1 if rng.uniform() < 0.5 else -1
    df_off_um = sign * rng.uniform(cfg.defocus_offset_min_um, max(cfg.defocus_offset_max_um, cfg.defocus_offset_min_um))
    df_mean_a = (cfg.target_defocus_um + df_off_um) * 1e4
    astig = cfg.astigmatism_a * float(rng.uniform(0.7, 1.3))
    astig_angle = float(rng.uniform(-90, 90))
    slab_scale = 3.0 if bad else 1.0
    shift_rms = cfg.stage_shift_rms_px * s * (8.0 if bad else 1.0)
    drift = cfg.drift_total_px * s * (4.0 if bad else 1.0)
    dark = dark_view_orders(cfg, ts_index)
    plan = SeriesPlan(ts_index, f"TS_{ts_index + 1:02d}", bad, slab_scale, cfg.tilt_axis_nominal_deg, axis, offset,
                      df_mean_a)
    acc = 0.0
    t = start
    for order, nom in enumerate(angles):
        tilt = nom + offset
        rot_err = float(rng.normal(0, cfg.view_rotation_rms_deg)) if cfg.view_rotation_rms_deg else 0.0
        mag = 1.0 + (float(rng.normal(0, cfg.view_magnification_rms)) if cfg.view_magnification_rms else 0.0)
        shift = rng.normal(0, shift_rms, size=2) if shift_rms else np.zeros(2)
        view_axis = axis + rot_err
        xf = xf_from_parameters(view_axis, torch.tensor(shift, dtype=torch.float64), mag)
        df = df_mean_a + (float(rng.normal(0, cfg.defocus_scatter_um * 1e4)) if cfg.defocus_scatter_um else 0.0)
        dose = cfg.dose_per_tilt_e_per_a2
        acc += dose
        path = cfg.ice_thickness_a * slab_scale / max(math.cos(math.radians(tilt - cfg.pretilt_deg)), 0.05)
        trans = math.exp(-path / cfg.mean_free_path_a) * (0.03 if order in dark else 1.0)
        shifts = global_drift_px(cfg.frames_per_movie, drift, rng)
        local = (local_control_grid(cfg.frames_per_movie, cfg.local_motion_px * s, rng)
                 if cfg.local_motion_px > 0 and cfg.frames_per_movie > 1 else None)
        plan.views.append(ViewPlan(
            order=order, nominal_tilt_deg=float(nom), tilt_deg=float(tilt), tilt_axis_deg=float(view_axis),
            magnification=float(mag), shift_xy_px=(float(shift[0]), float(shift[1])), xf=xf,
            defocus_u_a=df + astig / 2, defocus_v_a=df - astig / 2,
            astig_angle_deg=astig_angle + (float(rng.normal(0, 2.0)) if cfg.astigmatism_a else 0.0),
            dose_e_per_a2=dose, accumulated_dose_e_per_a2=acc, transmission=trans, dark=order in dark,
            date_time=t, frame_shifts_px=shifts, local_control_px=local))
        t = t + timedelta(seconds=int(rng.integers(35, 70)))
    return plan


@dataclass
class RenderedView:
    frames: np.ndarray  # (f, h, w) float64 raw counts (integers unless noise is off)
    noise_free: np.ndarray  # (h, w) float32 expected relative intensity, frame-0 geometry
    hot_pixels: list  # [frame, y, x, counts]
    mean_counts_per_px: float  # expected gain-corrected counts per pixel per frame, blank beam
    mean_relative_intensity: float  # mean over the image and frames of the expected intensity (specimen contrast)


def render_view(cfg: SimConfig, spec: Specimen, view: ViewPlan, gain: np.ndarray, rng_noise, rng_texture,
                slab_scale: float = 1.0) -> RenderedView:
    """Frames of one view: project, CTF, exposure attenuation, drift, counting noise, X-rays."""
    n = cfg.effective_image_size_px()
    px = cfg.effective_pixel_size_a()
    shape = (n, n)
    m = max(int(round(cfg.margin_px * cfg.scale)),
            int(math.ceil(np.abs(view.frame_shifts_px).max(initial=0.0))) + 8)
    big = (n + 2 * m, n + 2 * m)
    sigma_e = interaction_constant(cfg.voltage_kv)

    texture = None
    if cfg.texture_on and cfg.texture_rms_rad > 0:
        path = cfg.ice_thickness_a * slab_scale / max(math.cos(math.radians(view.tilt_deg - cfg.pretilt_deg)), 0.05)
        rms = cfg.texture_rms_rad * math.sqrt(path / 1000.0) * (8.0 / px)
        texture = torch.as_tensor(rng_texture.normal(0, rms, size=big), dtype=torch.float32)
    bin_step = cfg.defocus_bin_a if (cfg.defocus_gradient_on and cfg.ctf_on) else None
    phase, absorb, heights = project_view(spec, view.tilt_deg, view.xf, shape, px, sigma_e, m, bin_step, texture,
                                          cfg.pretilt_deg)
    spec_k = view_spectrum(phase, absorb, heights, view.defocus_u_a, view.defocus_v_a, view.astig_angle_deg,
                           cfg.voltage_kv, cfg.cs_mm, cfg.amplitude_contrast, px, cfg.ctf_on,
                           cfg.defocus_handedness)
    del phase, absorb

    nf = cfg.frames_per_movie
    dose_frame = view.dose_e_per_a2 / nf
    mean_counts = dose_frame * px * px * view.transmission
    crop = (slice(m, m + n), slice(m, m + n))
    frames = np.empty((nf, n, n), dtype=np.float64)
    hot = []
    mean_rel = 0.0
    mid = view.pre_exposure_e_per_a2 + 0.5 * view.dose_e_per_a2
    grid = frequency_grid(big, 1.0, dtype=torch.float64)
    ref = frame_intensity(spec_k, big, px, (0.0, 0.0), mid if cfg.dose_weighting_on else None, cfg.voltage_kv, grid)
    noise_free = ref[crop].clamp_min(0).numpy().astype(np.float32)
    for f in range(nf):
        pre = view.pre_exposure_e_per_a2 + (f + 0.5) * dose_frame
        img = frame_intensity(spec_k, big, px, view.frame_shifts_px[f], pre if cfg.dose_weighting_on else None,
                              cfg.voltage_kv, grid)
        if view.local_control_px is not None:
            img = warp_local(img, local_field_px(view.local_control_px[f], n, m).to(img.dtype))
        rel = img[crop].clamp_min(0).numpy()
        mean_rel += float(rel.mean()) / nf
        expected = rel * mean_counts
        counts = count_frame(expected, gain, rng_noise, cfg.noise_on)
        if cfg.hot_pixels_per_mpx_frame > 0:
            for y, x, c in xray_hits(shape, cfg.hot_pixels_per_mpx_frame, max(mean_counts, 1.0), rng_noise):
                counts[y, x] += c
                hot.append([f, y, x, c])
        frames[f] = counts
    return RenderedView(frames, noise_free, hot, mean_counts, mean_rel)
