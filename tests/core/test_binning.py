"""Fourier-crop binning by integer and non-integer factors, and normalisation."""

from __future__ import annotations

import math

import pytest
import torch

from tomoforge.core.binning import bin_images, fourier_resize, normalise_intensity

from motion_testdata import texture


def _wave(shape, period_px, phase=0.0, centre=True):
    h, w = shape
    x = torch.arange(w, dtype=torch.float64)
    cx = (w - 1) / 2 if centre else 0
    return torch.cos(2 * math.pi * (x - cx) / period_px + phase)[None, :].expand(h, w)


@pytest.mark.parametrize("factor", [2, 3, 1.5, 2.5])
def test_low_frequency_wave_survives_with_the_right_pixel_size(factor):
    h, w = 60, 120
    img = (_wave((h, w), 30.0) + 5).float()
    out, (sy, sx) = bin_images(img, factor)
    ho, wo = out.shape
    assert (ho, wo) == (round(h / factor), round(w / factor))
    # the same wave, sampled about the same centre, in the new pixels
    expected = (_wave((ho, wo), 30.0 / sx) + 5).float()
    assert torch.allclose(out, expected, atol=2e-3)


def test_frequencies_above_new_nyquist_are_removed_not_aliased():
    img = _wave((64, 64), 64 / 26, centre=False).float()  # 0.41 cycles/px, periodic: above bin-2 Nyquist
    out, _ = bin_images(img, 2)
    assert float(out.abs().max()) < 1e-4
    # 2x2 averaging would alias it into a visible wave
    avg = torch.nn.functional.avg_pool2d(img[None, None], 2)[0, 0]
    assert float(avg.abs().max()) > 0.1


def test_normalisations_and_upsampling_round_trip():
    img = texture((64, 64), 4, sigma_px=4.0) * 3 + 10
    out, scale = bin_images(img, 2, normalisation="sum")
    assert abs(float(out.mean()) - 4 * float(img.mean())) < 1e-3
    z = normalise_intensity(img, "zscore")
    assert abs(float(z.mean())) < 1e-5 and abs(float(z.std()) - 1) < 1e-3
    assert abs(float(normalise_intensity(img, "mean").mean()) - 1) < 1e-5
    smooth = texture((64, 64), 4, sigma_px=6.0)
    up = fourier_resize(fourier_resize(smooth, (32, 32), edge_fraction=0), (64, 64), edge_fraction=0)
    assert float((up - smooth).abs().max()) < 0.02
    with pytest.raises(ValueError, match="unknown normalisation"):
        normalise_intensity(img, "bogus")
