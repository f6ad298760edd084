"""Tilt-aware estimation: tiles rescaled for the defocus gradient of a tilted view beat the plain average."""

from __future__ import annotations

import statistics

import torch
from tests.core.ctf.synth import synth_view

from tomoforge.core.ctf.estimate import (
    estimate_ctf,
    group_tiles,
    mean_amplitude,
    tile_defocus_offsets_a,
    view_tile_spectra,
)
from tomoforge.core.ctf.fit import FitSettings
from tomoforge.core.ctf.model import Optics

PIX = 2.0
SETTINGS = FitSettings(resolution_min_a=30.0, resolution_max_a=6.0, defocus_min_a=5000.0, defocus_max_a=60000.0,
                       defocus_step_a=500.0)


def test_tilt_aware_beats_plain_at_high_tilt():
    plain_err, aware_err, plain_score, aware_score = [], [], [], []
    for seed, (df, tilt) in enumerate([(30000.0, 60.0), (22000.0, -55.0), (40000.0, 60.0)]):
        img, _ = synth_view(df + 300, df - 300, 25.0, pixel_size_a=PIX, size=768, tilt_deg=tilt, snr=0.15,
                            seed=seed, column_step_a=50.0)
        plain = estimate_ctf(img, PIX, Optics(), SETTINGS, box=256, tilt_deg=tilt, tilt_aware=False)
        aware = estimate_ctf(img, PIX, Optics(), SETTINGS, box=256, tilt_deg=tilt, tilt_aware=True)
        plain_err.append(abs(plain.params.defocus_mean_a - df))
        aware_err.append(abs(aware.params.defocus_mean_a - df))
        plain_score.append(plain.score)
        aware_score.append(aware.score)
    assert statistics.median(aware_err) <= 1500.0  # 150 nm
    assert all(a > p for a, p in zip(aware_score, plain_score, strict=True)), (aware_score, plain_score)
    assert sum(aware_err) <= sum(plain_err)


def test_tile_offsets_follow_the_documented_sign():
    img = torch.zeros(256, 512)
    _, centres = view_tile_spectra(img, 128, 0.0)
    off = tile_defocus_offsets_a(centres, 2.0, 30.0, 0.0, handedness=1)
    # Axis along +Y (psi = 0): tiles at +x have less underfocus for positive tilt and handedness +1.
    right = centres[:, 0] > 0
    assert (off[right] < 0).all() and (off[~right] > 0).all()
    expected = -2.0 * centres[:, 0] * torch.tan(torch.deg2rad(torch.tensor(30.0, dtype=torch.float64)))
    assert torch.allclose(off, expected)
    # An axis at 90 deg (along -X) measures distance along +Y instead.
    off90 = tile_defocus_offsets_a(centres, 2.0, 30.0, 90.0, handedness=-1)
    assert torch.allclose(off90, 2.0 * centres[:, 1] * torch.tan(torch.deg2rad(torch.tensor(30.0, dtype=torch.float64))))


def test_grouped_tiles_give_the_same_mean_spectrum():
    img, _ = synth_view(25000, 25000, 0.0, pixel_size_a=PIX, size=512, tilt_deg=40.0, snr=0.5, seed=2)
    power, centres = view_tile_spectra(img, 128, 0.5)
    groups, gcentres, count = group_tiles(power, centres, 30.0, max_groups=4)
    assert len(count) <= 5 and int(count.sum()) == power.shape[0]
    plain = mean_amplitude(power)
    assert torch.allclose(mean_amplitude(groups, weights=count), plain, rtol=1e-5)
    # Tilted: per-tile and grouped rescaling agree closely (group spread is a few tens of Å here).
    kw = dict(pixel_size_a=PIX, optics=Optics(), tilt_deg=40.0, tilt_axis_deg=30.0, reference_defocus_a=25000.0)
    per_tile = mean_amplitude(power, centres, max_groups=10_000, **kw)
    grouped = mean_amplitude(groups, gcentres, weights=count, **kw)
    assert (per_tile - grouped).abs().mean() < 0.02 * per_tile.mean()
    assert (per_tile - plain).abs().mean() > 3 * (per_tile - grouped).abs().mean()
