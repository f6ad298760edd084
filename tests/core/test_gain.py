"""Gain orientation: a synthetic gain stored rotated/flipped is found, and a wrong choice is flagged."""

from __future__ import annotations

import pytest
import torch

from tomoforge.core.gain import (
    ORIENTATIONS,
    apply_gain_orientation,
    better_gain_orientation,
    check_gain_shape,
    describe_orientation,
    invert_gain_orientation,
    score_gain_orientations,
)
from tomoforge.errors import InputError


def _scene(h=64, w=80, n_frames=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    gain = 1 + 0.08 * torch.randn(h, w, generator=g) + 0.1 * torch.linspace(-1, 1, w)[None]  # texture + ramp
    gain[5, 7] = 0.0  # a defect pixel
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32),
                            indexing="ij")
    signal = 15 * (1 + 0.4 * torch.sin(xx / 6) * torch.cos(yy / 9))  # specimen structure
    raw = torch.poisson((signal / gain.clamp(min=0.5)).expand(n_frames, h, w).contiguous(), generator=g)
    return gain, raw


def test_orientation_helpers_are_the_8_distinct_symmetries():
    x = torch.arange(12.0).reshape(3, 4)
    outs = {tuple(apply_gain_orientation(x, r, f).flatten().tolist()) for r, f in ORIENTATIONS}
    assert len(outs) == 8
    for r, f in ORIENTATIONS:
        assert torch.equal(invert_gain_orientation(apply_gain_orientation(x, r, f), r, f), x)
    assert torch.equal(apply_gain_orientation(x, 0, True), x.flip(-1))
    assert torch.equal(apply_gain_orientation(x, 1, False), torch.rot90(x))
    assert describe_orientation(1, True) == "rotate 90° counter-clockwise, then flip left-right"


@pytest.mark.parametrize("rotation,flip", [(0, False), (1, False), (2, True), (3, True), (0, True)])
def test_stored_orientation_is_recovered(rotation, flip):
    gain, raw = _scene(seed=rotation + 4 * flip)
    stored = invert_gain_orientation(gain, rotation, flip)  # what the camera software wrote to disk
    scores = score_gain_orientations(stored, raw.mean(0))
    best = scores[0]
    assert (best[0], best[1]) == (rotation, flip)
    assert best[2] > 0.5 and all(abs(s[2]) < 0.15 for s in scores[1:])
    better = better_gain_orientation(scores, 0, False, n_pixels=raw[0].numel())
    if (rotation, flip) == (0, False):
        assert better is None
    else:
        assert better is not None and (better[0], better[1]) == (rotation, flip)
    # corrected = raw * gain flattens the frames: the right orientation leaves the least texture
    corrected = raw.mean(0) * apply_gain_orientation(stored, rotation, flip)
    if (rotation, flip) != (0, False) and stored.shape == corrected.shape:
        wrong = raw.mean(0) * stored
        hp = lambda im: im - torch.nn.functional.avg_pool2d(im[None, None], 5, 1, 2, count_include_pad=False)[0, 0]  # noqa: E731
        assert hp(corrected)[8:-8, 8:-8].std() < hp(wrong)[8:-8, 8:-8].std()


def test_unrelated_gain_is_not_flagged():
    gain, raw = _scene(seed=1)
    other = 1 + 0.08 * torch.randn(gain.shape, generator=torch.Generator().manual_seed(99))
    scores = score_gain_orientations(other, raw.mean(0))
    assert all(abs(s[2]) < 0.1 for s in scores)
    assert better_gain_orientation(scores, 0, False, n_pixels=raw[0].numel()) is None


def test_wrong_size_messages():
    check_gain_shape((64, 80), (64, 80))
    check_gain_shape((80, 64), (64, 80), rotation=1)
    with pytest.raises(InputError, match="try gain_rotation=1 or 3"):
        check_gain_shape((80, 64), (64, 80))
    with pytest.raises(InputError, match="gain is 100x100"):
        check_gain_shape((100, 100), (64, 80))
    with pytest.raises(InputError, match="gain is 50x50"):
        score_gain_orientations(torch.ones(50, 50), torch.ones(64, 80))
