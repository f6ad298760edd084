"""Full-frame motion: recovered drift against the truth at tomography doses (Poisson noise)."""

from __future__ import annotations

import pytest
import torch

from tomoforge.core.motion import estimate_global_shifts, frame_outliers, sum_frames
from tomoforge.core.motion.peaks import find_peak

from motion_testdata import correlation, crop_centre, drift, gauge_free_rms, movie, texture


@pytest.mark.parametrize("seed,dose,size", [(0, 0.1, 384), (1, 0.3, 256), (2, 0.5, 256), (11, 0.3, 256)])
def test_drift_rms_error_below_0p3_px(seed, dose, size):
    # 0.1-0.5 e/px/frame as in tilt movies; at 0.1 e/px a 256 px frame holds too few electrons, so 384 px.
    signal = texture((size + 64, size + 64), seed, sigma_px=3.0)
    truth = drift(16, seed, total_px=8.0)
    frames, _ = movie(signal, truth, (size, size), dose, seed + 100)
    est = estimate_global_shifts(frames, b_factor_a2=300)
    assert est.shape == (16, 2)
    assert torch.equal(est[0], torch.zeros(2))  # relative to the first frame
    assert gauge_free_rms(est, truth) <= 0.3


def test_shift_convention_is_content_displacement_dy_dx():
    # Frame 1's content moved by +3 px in y and -5 px in x: the result says (3, -5).
    signal = texture((300, 300), 5, sigma_px=3.0)
    truth = torch.tensor([[0.0, 0.0], [3.0, -5.0], [3.0, -5.0]])
    frames, _ = movie(signal, truth, (200, 200), 50.0, 1)
    est = estimate_global_shifts(frames)
    assert torch.allclose(est, truth, atol=0.05)


def test_corrected_sum_correlates_better_than_plain_sum():
    seed, dose = 3, 0.3
    signal = texture((320, 320), seed, sigma_px=3.0)
    truth = drift(20, seed, total_px=10.0)
    frames, clean = movie(signal, truth, (256, 256), dose, seed)
    est = estimate_global_shifts(frames, b_factor_a2=300)
    inner = (200, 200)
    plain = correlation(crop_centre(sum_frames(frames).total, inner), crop_centre(clean, inner))
    fixed = correlation(crop_centre(sum_frames(frames, shifts=est).total, inner), crop_centre(clean, inner))
    # stated margin: at least +0.2 in correlation with the noise-free truth
    assert fixed > plain + 0.2, (plain, fixed)


def test_max_shift_limits_search_and_batch_matches_single():
    signal = texture((300, 300), 7, sigma_px=3.0)
    truth = drift(8, 7, total_px=4.0)
    frames, _ = movie(signal, truth, (160, 160), 2.0, 7)
    single = estimate_global_shifts(frames, max_shift_px=10)
    batch = estimate_global_shifts(torch.stack([frames, frames]), max_shift_px=10)
    assert torch.allclose(batch[0], single, atol=1e-4) and torch.allclose(batch[1], single, atol=1e-4)
    assert gauge_free_rms(single, truth) < 0.2


def test_subpixel_peak_of_sampled_gaussian():
    yy, xx = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    for cy, cx in [(3.3, -2.2), (-7.45, 10.1), (0.0, 0.0)]:
        dy = (yy - cy + 16) % 32 - 16
        dx = (xx - cx + 16) % 32 - 16
        cc = torch.exp(-(dy ** 2 + dx ** 2) / 2)
        peak = find_peak(cc)
        assert abs(float(peak[0]) - cy) < 0.1 and abs(float(peak[1]) - cx) < 0.1


def test_xray_hits_in_frames_do_not_make_false_peaks():
    signal = texture((300, 300), 21, sigma_px=3.0)
    truth = drift(6, 21, total_px=3.0)
    frames, _ = movie(signal, truth, (160, 160), 0.5, 21)
    frames[1, 40, 50] += 3000.0  # one X-ray in frame 1 and one in frame 4, 30 px apart
    frames[4, 70, 80] += 3000.0
    est = estimate_global_shifts(frames)
    assert gauge_free_rms(est, truth) < 0.3
    hits = frame_outliers(frames)
    assert bool(hits[1, 40, 50]) and bool(hits[4, 70, 80]) and int(hits.sum()) == 2
