"""Fitting synthetic spectra: defocus, astigmatism, phase shift, fit resolution, bad settings."""

from __future__ import annotations

import random
import statistics

import pytest
import torch
from tests.core.ctf.synth import synth_view

from tomoforge.core.ctf.estimate import estimate_ctf
from tomoforge.core.ctf.fit import FitSettings, fit_resolution_a
from tomoforge.core.ctf.model import Optics

PIX = 1.5
SETTINGS = FitSettings(resolution_min_a=30.0, resolution_max_a=5.0, defocus_min_a=5000.0, defocus_max_a=60000.0,
                       defocus_step_a=500.0)


def _angle_error(a: float, b: float) -> float:
    return abs((a - b + 90.0) % 180.0 - 90.0)


def test_defocus_and_astigmatism_recovered_over_seeds():
    rng = random.Random(7)
    errors, astig_errors, angle_errors = [], [], []
    for seed in range(5):
        dfm, ast, ang = rng.uniform(12000, 50000), rng.uniform(1200, 2500), rng.uniform(-90, 90)
        img, _ = synth_view(dfm + ast / 2, dfm - ast / 2, ang, pixel_size_a=PIX, size=512, snr=0.2, seed=seed)
        p = estimate_ctf(img, PIX, Optics(), SETTINGS, box=256).params
        errors.append(abs(p.defocus_mean_a - dfm))
        astig_errors.append(abs(p.astigmatism_a - ast))
        angle_errors.append(_angle_error(p.astigmatism_angle_deg, ang))
        assert p.defocus_u_a >= p.defocus_v_a
    assert statistics.median(errors) <= 500.0  # 50 nm
    assert max(errors) <= 1500.0
    assert max(astig_errors) <= 300.0  # 30 nm
    assert max(angle_errors) <= 10.0


def test_phase_shift_recovered():
    img, _ = synth_view(20000, 19000, 40.0, pixel_size_a=PIX, size=512, snr=0.3, ps_deg=65.0, seed=3)
    s = FitSettings(resolution_min_a=30, resolution_max_a=5, defocus_min_a=5000, defocus_max_a=40000,
                    defocus_step_a=500, fit_phase_shift=True)
    p = estimate_ctf(img, PIX, Optics(), s, box=256).params
    assert abs(p.phase_shift_deg - 65.0) <= 10.0
    assert abs(p.defocus_mean_a - 19500) <= 500.0


def test_fit_resolution_falls_with_dose():
    res = []
    for snr in (2.0, 0.2, 0.02):
        img, _ = synth_view(25000, 24000, 10.0, pixel_size_a=PIX, size=512, snr=snr, seed=1)
        res.append(estimate_ctf(img, PIX, Optics(), SETTINGS, box=256).fit_resolution_a)
    assert res[0] < res[1] < res[2], res


def test_fit_resolution_threshold_crossing():
    f = torch.linspace(0, 0.3, 31, dtype=torch.float64)
    cc = torch.where(f < 0.1, 0.9, 0.5)
    assert fit_resolution_a(f, cc, 0.02, 1.0) == pytest.approx(1 / 0.095, rel=0.02)
    assert fit_resolution_a(f, torch.ones(31, dtype=torch.float64), 0.02, 1.5) == 3.0


@pytest.mark.parametrize("kwargs,match", [
    (dict(resolution_max_a=2.0), "beyond Nyquist"),
    (dict(defocus_min_a=40000.0, defocus_max_a=10000.0), "defocus_min_a"),
    (dict(resolution_min_a=4.0, resolution_max_a=5.0), "larger"),
])
def test_bad_settings_are_refused(kwargs, match):
    img = torch.randn(256, 256)
    s = FitSettings(**{**SETTINGS.__dict__, **kwargs})
    with pytest.raises(ValueError, match=match):
        estimate_ctf(img, PIX, Optics(), s, box=128)
