"""Corrected sums: frame range, even/odd halves, binning, dose weighting."""

from __future__ import annotations

import pytest
import torch

from tomoforge.core.dose import frame_dose_weights
from tomoforge.core.motion import frame_indices, sum_frames

from motion_testdata import shift_image, texture


def _labelled_frames(n=7, h=32, w=40):
    # frame i is constant 10**i: any sum tells exactly which frames went in
    return torch.stack([torch.full((h, w), 10.0 ** i) for i in range(n)])


def test_even_odd_halves_use_the_right_frames():
    frames = _labelled_frames()
    out = sum_frames(frames, indices=frame_indices(7, 1, 5), split_even_odd=True)
    assert out.frames_summed == [1, 2, 3, 4, 5]
    # even positions of the range: frames 1, 3, 5; odd: frames 2, 4
    assert torch.allclose(out.even, torch.full_like(out.even, 10 + 1e3 + 1e5), rtol=1e-5)
    assert torch.allclose(out.odd, torch.full_like(out.odd, 100 + 1e4), rtol=1e-5)
    assert torch.allclose(out.total, out.even + out.odd, rtol=1e-5)


def test_frame_range_past_the_end_is_refused():
    with pytest.raises(ValueError, match="does not fit a movie of 7 frames"):
        frame_indices(7, 0, 7)
    with pytest.raises(ValueError):
        frame_indices(7, 5, 3)


def test_shifts_are_undone_and_binning_keeps_mean_and_centre():
    img = texture((128, 128), 2, sigma_px=4.0) + 5
    shifts = torch.tensor([[0.0, 0.0], [1.5, -2.25], [-3.0, 0.5]])
    frames = torch.stack([shift_image(img, s) for s in shifts])
    out = sum_frames(frames, shifts=shifts)
    assert torch.allclose(out.total, 3 * img, atol=1e-3)
    binned = sum_frames(frames, shifts=shifts, bin_factor=2)
    assert binned.total.shape == (64, 64) and binned.scale_yx == (2.0, 2.0)
    assert abs(float(binned.total.mean()) - float(3 * img.mean())) < 1e-3
    # a smooth image binned by 2 agrees with 2x2 averaging (same pixel centres) up to the lost detail
    avg = torch.nn.functional.avg_pool2d((3 * img)[None, None], 2)[0, 0]
    assert float((binned.total - avg).abs().max()) < 0.05 * float((3 * img).std())


def test_dose_weighting_keeps_low_frequencies_and_damps_late_frames_at_high_frequency():
    n, h, w = 8, 64, 64
    weights = frame_dose_weights((h, w), 1.0, n, 2.0)
    assert weights.shape == (n, h, w // 2 + 1)
    assert torch.allclose(weights[:, 0, 0], torch.ones(n), atol=1e-5)
    assert torch.allclose((weights ** 2).sum(0), torch.full((h, w // 2 + 1), float(n)), rtol=1e-4)
    hi = weights[:, 0, w // 4]  # 0.25 1/A
    assert bool((hi[1:] < hi[:-1]).all())  # later frames count less
    frames = torch.stack([texture((h, w), i) for i in range(n)])
    plain = sum_frames(frames).total
    weighted = sum_frames(frames, dose_weights=weights).total
    assert abs(float(weighted.mean() - plain.mean())) < 1e-4
