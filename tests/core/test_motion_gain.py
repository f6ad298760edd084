"""Gain application (orientation as core.gain defines it), defect pixels."""

from __future__ import annotations

import pytest
import torch

from tomoforge.core.gain import invert_gain_orientation
from tomoforge.core.motion import apply_gain, correct_defects, defect_mask_from_coordinates, defects_from_gain
from tomoforge.errors import InputError


def test_apply_gain_multiplies_in_the_declared_orientation_and_refuses_a_wrong_shape():
    raw = torch.full((2, 4, 6), 3.0)
    gain = torch.arange(24.0).reshape(4, 6)
    assert torch.equal(apply_gain(raw, gain), raw * gain)
    stored = invert_gain_orientation(gain, 1, True)  # as it would sit in the file
    assert torch.equal(apply_gain(raw, stored, rotation=1, flip=True), raw * gain)
    dark = torch.ones(4, 6)
    assert torch.equal(apply_gain(raw, gain, dark=dark), (raw - 1) * gain)
    with pytest.raises(InputError, match="gain_rotation=1 or 3"):
        apply_gain(raw, gain.T)
    with pytest.raises(InputError):
        apply_gain(raw, torch.ones(5, 5))


def test_defects_are_filled_from_neighbours():
    img = torch.linspace(0, 1, 40)[None, :].expand(30, 40).clone()
    gain = torch.ones(30, 40)
    gain[10, 10] = 0
    mask = defects_from_gain(gain) | defect_mask_from_coordinates((30, 40), [(20, 5), (21, 5), (100, 3)])
    assert int(mask.sum()) == 3
    bad = img.clone()
    bad[mask] = 1e4
    fixed = correct_defects(bad, mask)
    assert torch.allclose(fixed, img, atol=0.02)
    assert torch.equal(fixed[~mask], img[~mask])
