"""Tiles, radial averages, background and radial rescaling of spectra."""

from __future__ import annotations

import pytest
import torch

from tomoforge.core.ctf.spectrum import (
    extract_tiles,
    radial_average,
    radius_grid,
    rescale_spectra,
    running_mean,
    tile_grid,
    tile_power_spectra,
)


def test_tiles_cover_image_and_centres_are_relative():
    img = torch.arange(300 * 200, dtype=torch.float32).reshape(300, 200)
    tiles, centres = extract_tiles(img, 100, overlap=0.5)
    corners = tile_grid((300, 200), 100, 0.5)
    assert tiles.shape == (len(corners), 100, 100)
    assert corners[:, 0].max() + 100 == 300 and corners[:, 1].max() + 100 == 200
    y0, x0 = corners[0].tolist()
    assert torch.equal(tiles[0], img[y0:y0 + 100, x0:x0 + 100])
    # Centres (x, y) relative to the image centre; symmetric layout sums to zero.
    assert centres.sum(0).abs().max() < 1e-9
    with pytest.raises(ValueError, match="larger than the image"):
        tile_grid((50, 50), 64)


def test_power_spectrum_of_a_cosine_peaks_at_its_frequency():
    y, x = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    p = tile_power_spectra(torch.cos(2 * torch.pi * 8 * x / 64)[None])[0]
    assert p.shape == (64, 33)
    assert tuple(torch.nonzero(p == p.max())[0].tolist()) == (0, 8)


def test_radial_average_recovers_a_radial_function():
    r = radius_grid(128)
    prof = radial_average(torch.exp(-r / 20.0), r, 65)
    expected = torch.exp(-torch.arange(65.0) / 20.0)
    assert torch.allclose(prof[1:60], expected[1:60], rtol=0.02)


def test_running_mean_of_a_line_is_the_line():
    v = torch.arange(50.0)
    m = running_mean(v, torch.full((50,), 3.0))
    assert torch.allclose(m[5:45], v[5:45], atol=1e-4)


def test_rescale_spectra_scales_radially():
    r = radius_grid(128)
    p = torch.cos(r / 3.0)[None]
    same = rescale_spectra(p, torch.ones_like(p))
    assert (same - p)[0, :50, :50].abs().max() < 1e-4
    half = rescale_spectra(p, torch.full_like(p, 0.5))
    inner = r < 50
    assert (half[0] - torch.cos(0.5 * r / 3.0))[inner].abs().max() < 0.05
