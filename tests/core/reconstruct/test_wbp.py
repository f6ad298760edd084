"""WBP against analytic blob phantoms projected with core/geometry conventions (independent projector)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tests.core.reconstruct.phantom import (
    corr,
    lowpass,
    project_blobs,
    random_alignment,
    random_blobs,
    render_volume,
    wedge_limit,
)

from tomoforge.core.reconstruct import reconstruct_wbp

VOL = (32, 48, 64)
IMG = (56, 72)


@pytest.fixture(scope="module")
def blobs():
    return random_blobs(20, VOL, seed=3)


def test_full_range_matches_truth_and_handedness(blobs):
    tilts = torch.arange(-88.0, 89.0, 4.0)
    xf = random_alignment(tilts, axis_deg=-96.0, seed=5)
    stack = project_blobs(*blobs, tilts, xf, IMG)
    rec = reconstruct_wbp(stack, tilts, xf, VOL)
    truth = render_volume(*blobs, VOL)
    c = corr(lowpass(rec, 0.2), lowpass(truth, 0.2))
    assert c >= 0.95
    # Handedness: a flipped Z (or X) axis must correlate far worse.
    assert corr(lowpass(rec, 0.2), lowpass(truth.flip(0), 0.2)) < c - 0.5
    assert corr(lowpass(rec, 0.2), lowpass(truth.flip(2), 0.2)) < c - 0.5


def test_limited_tilt_range_within_wedge(blobs):
    tilts = torch.arange(-60.0, 61.0, 3.0)
    xf = random_alignment(tilts, axis_deg=84.0, mag_jitter=0.01, seed=7)
    stack = project_blobs(*blobs, tilts, xf, IMG)
    rec = reconstruct_wbp(stack, tilts, xf, VOL, filter="hamming")
    truth = render_volume(*blobs, VOL)
    lp_rec = lowpass(rec, 0.2)
    assert corr(lp_rec, lowpass(wedge_limit(truth, 60.0), 0.2)) >= 0.9
    assert corr(lp_rec, lowpass(truth, 0.2)) >= 0.75  # bounded by the missing wedge (~0.8)
    assert corr(lp_rec, lowpass(truth.flip(0), 0.2)) < 0.4


def test_beads_land_at_true_positions():
    vol = (24, 40, 48)
    centres = torch.tensor([[10.0, -8.0, 5.0], [-12.0, 6.0, -6.0], [3.0, 12.0, 0.0], [-4.0, -14.0, 7.5]],
                           dtype=torch.float64)
    sig = torch.full((4,), 1.2, dtype=torch.float64)
    amp = torch.ones(4, dtype=torch.float64)
    tilts = torch.arange(-60.0, 61.0, 3.0)
    xf = random_alignment(tilts, axis_deg=86.0, seed=2)
    rec = reconstruct_wbp(project_blobs(centres, sig, amp, tilts, xf, (44, 52)), tilts, xf, vol)
    d, h, w = vol
    for cx, cy, cz in centres.tolist():
        x, y, z = round(cx + (w - 1) / 2), round(cy + (h - 1) / 2), round(cz + (d - 1) / 2)
        sub = rec[z - 3:z + 4, y - 3:y + 4, x - 3:x + 4].clamp(min=0) ** 2
        zz, yy, xx = torch.meshgrid(*(torch.arange(-3.0, 4.0),) * 3, indexing="ij")
        com = torch.stack([(sub * g).sum() / sub.sum() for g in (xx, yy, zz)])
        found = com + torch.tensor([x, y, z]) - torch.tensor([(w - 1) / 2, (h - 1) / 2, (d - 1) / 2])
        assert torch.linalg.norm(found - torch.tensor([cx, cy, cz])) < 1.0


def test_binning_z_shift_and_x_tilt(blobs):
    tilts = torch.arange(-66.0, 67.0, 3.0)
    xf = random_alignment(tilts, axis_deg=80.0, seed=9)
    img = (96, 128)
    centres, sig, amp = blobs
    # Blobs twice as large in pixels, seen at binning 2 with a Z shift and an X-axis tilt.
    big = (centres * 2 + torch.tensor([0.0, 0.0, 6.0], dtype=torch.float64), sig * 2, amp)
    stack = project_blobs(*big, tilts, xf, img, x_tilt_deg=4.0)
    rec = reconstruct_wbp(stack, tilts, xf, (32, 48, 64), binning=2, z_shift_px=-6.0, x_tilt_deg=4.0)
    truth = render_volume(*big, (32, 48, 64), binning=2, z_shift_px=-6.0)
    assert corr(lowpass(rec, 0.2), lowpass(wedge_limit(truth, 66), 0.2)) >= 0.9
    wrong = reconstruct_wbp(stack, tilts, xf, (32, 48, 64), binning=2, z_shift_px=6.0, x_tilt_deg=4.0)
    assert corr(lowpass(wrong, 0.2), lowpass(truth, 0.2)) < 0.5


def test_slabs_outputs_and_excluded_views(blobs, tmp_path):
    tilts = torch.arange(-60.0, 61.0, 6.0)
    xf = random_alignment(tilts, seed=4)
    stack = project_blobs(*blobs, tilts, xf, IMG)
    whole = reconstruct_wbp(stack, tilts, xf, VOL, slab_rows=VOL[1])
    mm = np.lib.format.open_memmap(tmp_path / "v.npy", mode="w+", dtype=np.float32, shape=VOL)
    seen = []
    reconstruct_wbp(stack, tilts, xf, VOL, slab_rows=7, out=mm, on_slab=lambda a, b, s: seen.append((a, b)))
    assert seen[0] == (0, 7) and seen[-1][1] == VOL[1]
    np.testing.assert_allclose(mm, whole.numpy(), atol=1e-5 * float(whole.abs().max()))
    # A garbage view marked excluded must not change anything.
    bad = torch.cat([stack, torch.randn(1, *IMG) * 100])
    tilts_b = torch.cat([tilts, torch.tensor([3.0])])
    xf_b = torch.cat([xf, xf[:1]])
    mask = torch.zeros(len(tilts_b), dtype=torch.bool)
    mask[-1] = True
    excl = reconstruct_wbp(bad, tilts_b, xf_b, VOL, exclude=mask)
    torch.testing.assert_close(excl, whole, atol=1e-5 * float(whole.abs().max()), rtol=0)
