"""Dose filter: the measured attenuation of white noise matches Grant & Grigorieff's formula."""

from __future__ import annotations

import math

import pytest
import torch

from tomoforge.core.dose import critical_exposure, dose_attenuation, dose_filter


def _analytic(k, pre, dose, kv=300.0, mode="integrated"):
    # written out from the paper here, independently of the module
    ne = (0.245 * k ** -1.665 + 2.81) * (0.8 if kv == 200 else 1.0)
    if mode == "accumulated":
        return math.exp(-(pre + dose) / (2 * ne))
    return 2 * ne / dose * (math.exp(-pre / (2 * ne)) - math.exp(-(pre + dose) / (2 * ne)))


def _radial_ratio(out, inp, pixel_size_a, k_target):
    h, w = inp.shape[-2:]
    fo, fi = torch.fft.rfft2(out.double()), torch.fft.rfft2(inp.double())
    fy = torch.fft.fftfreq(h, dtype=torch.float64)[:, None]
    fx = torch.fft.rfftfreq(w, dtype=torch.float64)[None, :]
    k = torch.sqrt(fy ** 2 + fx ** 2) / pixel_size_a
    ring = (k - k_target).abs() < 0.004 / pixel_size_a
    return float(torch.sqrt((fo.abs() ** 2)[..., ring].sum() / (fi.abs() ** 2)[..., ring].sum()))


@pytest.mark.parametrize("pixel_size_a", [1.35, 2.7])
@pytest.mark.parametrize("mode", ["integrated", "accumulated"])
def test_spectrum_matches_analytic_attenuation(pixel_size_a, mode):
    g = torch.Generator().manual_seed(3)
    noise = torch.randn(2, 256, 256, generator=g)
    pre, dose = 30.0, 3.0
    out = dose_filter(noise, pixel_size_a, pre, dose, mode=mode)
    nyquist = 0.5 / pixel_size_a
    for frac in (0.1, 0.25, 0.5, 0.8):
        k = frac * nyquist
        measured = _radial_ratio(out, noise, pixel_size_a, k)
        expected = _analytic(k, pre, dose, mode=mode)
        assert abs(measured - expected) <= 0.02 * expected + 1e-4, (k, measured, expected)


def test_200kv_scaling_and_per_view_doses():
    k = torch.tensor([0.05, 0.1, 0.2])
    assert torch.allclose(critical_exposure(k, 200.0), 0.8 * critical_exposure(k, 300.0))
    imgs = torch.randn(3, 64, 64, generator=torch.Generator().manual_seed(0))
    pre = torch.tensor([0.0, 3.0, 60.0])
    out = dose_filter(imgs, 2.0, pre, 3.0)
    # a later view loses more high-resolution power, the mean stays
    hp = [float(torch.fft.rfft2(o)[20:44].abs().pow(2).sum()) for o in out]
    assert hp[0] > hp[1] > hp[2]
    assert torch.allclose(out.mean((-2, -1)), imgs.mean((-2, -1)), atol=1e-5)
    att = dose_attenuation(torch.tensor([0.0, 0.1]), 10.0, 2.0)
    assert float(att[0]) == 1.0 and 0 < float(att[1]) < 1
