import math

import numpy as np
import torch
from tests.core.sim.simkit import render_series, tiny_config

from tomoforge.core.sim.optics import (
    ctf_zeros_a,
    electron_wavelength_a,
    exposure_attenuation,
    interaction_constant,
)


def test_wavelength_and_interaction_constant():
    assert electron_wavelength_a(300) == __import__("pytest").approx(0.019687, rel=1e-4)
    assert electron_wavelength_a(200) == __import__("pytest").approx(0.025079, rel=1e-4)
    assert interaction_constant(300) == __import__("pytest").approx(6.526e-4, rel=2e-3)


def test_exposure_attenuation_grant_grigorieff():
    k = torch.tensor([0.1])  # 10 Å: Ne = 0.245 * 0.1^-1.665 + 2.81
    ne = 0.245 * 0.1 ** -1.665 + 2.81
    assert float(exposure_attenuation(k, ne * 2, 300)) == __import__("pytest").approx(math.exp(-1), rel=1e-5)


def _radial_profile(img: np.ndarray, px: float):
    a = img - img.mean()
    p = np.abs(np.fft.fft2(a)) ** 2
    ky = np.fft.fftfreq(a.shape[0], d=px)
    kx = np.fft.fftfreq(a.shape[1], d=px)
    k = np.sqrt(ky[:, None] ** 2 + kx[None, :] ** 2)
    step = 1.0 / (a.shape[0] * px)
    idx = np.round(k / step).astype(int)
    n = a.shape[0] // 2
    prof = np.bincount(idx.ravel(), p.ravel(), minlength=n + 1)[:n] / np.bincount(idx.ravel(), minlength=n + 1)[:n]
    return np.arange(n) * step, prof


def test_first_ctf_zero_of_noise_free_spectrum_is_where_the_defocus_says():
    """Texture only (white phase), 0° view: the first minimum of the power spectrum is the first CTF zero."""
    cfg = tiny_config(image_size_px=256, tilt_scheme="custom", custom_tilts_deg="0", n_rings=0, beads_per_um2=0,
                      crowding_per_um3=0, astigmatism_a=0.0, noise_on=False, hot_pixels_per_mpx_frame=0,
                      drift_total_px=0.0, stage_shift_rms_px=0.0, target_defocus_um=2.5)
    for seed in (0, 1, 2):
        plan, _, _, views = render_series(cfg, seed)
        v = plan.views[0]
        k, prof = _radial_profile(views[0].noise_free.astype(np.float64), cfg.pixel_size_a)
        smooth = np.convolve(prof, np.ones(3) / 3, mode="same")
        start = int(np.searchsorted(k, 0.012))
        # first deep local minimum (the texture's own scatter makes shallow ones)
        mins = [i for i in range(start, len(k) - 1) if smooth[i] < smooth[i - 1] and smooth[i] <= smooth[i + 1]
                and smooth[i] < 0.2 * smooth[start:i].max()]
        k_meas = k[mins[0]]
        df_true = 0.5 * (v.defocus_u_a + v.defocus_v_a)
        k_true = ctf_zeros_a(df_true, cfg.voltage_kv, cfg.cs_mm, cfg.amplitude_contrast)[0]
        k_nominal = ctf_zeros_a(cfg.target_defocus_um * 1e4, cfg.voltage_kv, cfg.cs_mm, cfg.amplitude_contrast)[0]
        step = k[1]
        assert abs(k_meas - k_true) <= 1.0 * step, (seed, k_meas, k_true)
        # the nominal (mdoc) defocus predicts it worse: the true mean is offset by >= 0.2 µm
        assert abs(k_meas - k_true) < abs(k_meas - k_nominal), (seed, k_meas, k_true, k_nominal)


def _thon_score(cfg, seed: int, tile: int = 64) -> tuple[float, float]:
    """Correlation of the flattened tile-averaged spectrum of a noisy 0° view with CTF² (true, nominal)."""
    from tomoforge.core.sim.optics import aberration_phase, ctf_from_chi, frequency_grid

    plan, _, _, views = render_series(cfg, seed)
    v = plan.views[0]
    img = views[0].frames.sum(0)  # raw counts (gain ~ 1 +- 5 %)
    n = img.shape[0]
    tiles = [img[y:y + tile, x:x + tile] for y in range(0, n - tile + 1, tile // 2)
             for x in range(0, n - tile + 1, tile // 2)]
    ps = np.mean([np.abs(np.fft.rfft2(a - a.mean())) ** 2 for a in tiles], axis=0)
    ky, kx = frequency_grid((tile, tile), cfg.pixel_size_a, dtype=torch.float64)
    k = torch.sqrt(kx ** 2 + ky ** 2).numpy()
    band = (k > 0.025) & (k < 0.075)
    # flatten the fall-off (envelope, exposure, shot noise) with a smooth fit of log power against k
    flat = ps[band] / np.exp(np.polyval(np.polyfit(k[band], np.log(ps[band]), 3), k[band]))
    flat = (flat - flat.mean()) / flat.std()
    out = []
    for du, dv in ((v.defocus_u_a, v.defocus_v_a), (cfg.target_defocus_um * 1e4,) * 2):
        chi = aberration_phase(ky, kx, du, dv, v.astig_angle_deg, cfg.voltage_kv, cfg.cs_mm)
        m = (ctf_from_chi(chi, cfg.amplitude_contrast) ** 2).numpy()[band]
        out.append(float((flat * (m - m.mean()) / m.std()).mean()))
    return out[0], out[1]


def test_noisy_tile_spectra_show_thon_rings_at_low_dose():
    """At 2.5 e/Å² per tilt the tile-averaged spectrum of a 0° view follows the true CTF, not the nominal one;
    the amorphous texture is what makes the rings."""
    cfg = tiny_config(image_size_px=384, tilt_scheme="custom", custom_tilts_deg="0", dose_per_tilt_e_per_a2=2.5,
                      pixel_size_a=6.0, target_defocus_um=3.0, ice_thickness_a=1200.0, beads_per_um2=0,
                      n_rings=20, crowding_per_um3=1000.0)
    for seed in (0, 1):
        s_true, s_nominal = _thon_score(cfg, seed)
        assert s_true > 0.3, (seed, s_true, s_nominal)
        assert s_true > s_nominal + 0.1, (seed, s_true, s_nominal)
    no_texture, _ = _thon_score(cfg.model_copy(update={"texture_on": False}), 0)
    assert no_texture < s_true - 0.1, (no_texture, s_true)


def test_defocus_gradient_across_a_tilted_view_has_the_documented_sign():
    """Strips left and right of the tilt axis: each spectrum fits defocus + handedness * height, not the mirror."""
    cfg = tiny_config(image_size_px=512, tilt_scheme="custom", custom_tilts_deg="45", n_rings=0, beads_per_um2=0,
                      crowding_per_um3=0, astigmatism_a=0.0, noise_on=False, hot_pixels_per_mpx_frame=0,
                      drift_total_px=0.0, stage_shift_rms_px=0.0, tilt_axis_nominal_deg=0.0, tilt_axis_error_deg=0.0,
                      view_rotation_rms_deg=0.0, view_magnification_rms=0.0, target_defocus_um=2.5,
                      texture_rms_rad=0.2)
    plan, _, _, views = render_series(cfg, 0)
    v = plan.views[0]
    img = views[0].noise_free.astype(np.float64)
    px = cfg.pixel_size_a
    df0 = 0.5 * (v.defocus_u_a + v.defocus_v_a)  # at the image centre (no stage shift here)
    slope = np.tan(np.radians(v.tilt_deg)) * px  # Å of height per px of x: h = -x tan(theta)
    w = 128
    for x0 in (0, 512 - w):
        strip = img[:, x0:x0 + w]
        xc = x0 + (w - 1) / 2 - (512 - 1) / 2
        prof = np.mean([_radial_profile(strip[y:y + w], px)[1] for y in range(0, 512 - w + 1, w // 2)], axis=0)
        k = _radial_profile(strip[:w], px)[0]
        sel = (k > 0.02) & (k < 0.06)

        def fit(df, k=k, prof=prof, sel=sel):
            lam = electron_wavelength_a(cfg.voltage_kv)
            chi = np.pi * lam * df * k ** 2 - 0.5 * np.pi * cfg.cs_mm * 1e7 * lam ** 3 * k ** 4
            m = np.sin(chi + np.arcsin(cfg.amplitude_contrast)) ** 2
            p = prof[sel] / np.convolve(prof, np.ones(9) / 9, "same")[sel]
            return float(np.corrcoef(p, m[sel])[0, 1])

        right = fit(df0 - xc * slope)  # documented: defocus = view defocus + height, height = -x tan(theta)
        mirror = fit(df0 + xc * slope)
        flat = fit(df0)
        assert right > mirror + 0.15 and right > flat + 0.03, (x0, right, flat, mirror)
