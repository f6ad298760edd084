"""Post-processing: explicit axis operations agree with core/geometry; slab-wise reading equals whole."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tomoforge.core.geometry import rotation_x
from tomoforge.core.reconstruct.postprocess import (
    flip_axes,
    normalise,
    plan_reorient,
    read_reoriented,
    rotate_x_90,
    to_8bit,
    trim_volume,
    volume_stats,
)


def test_rotate_x_matches_geometry():
    d, h, w = 5, 8, 6
    vol = torch.zeros(d, h, w)
    z, y, x = 1, 6, 4
    vol[z, y, x] = 1
    rot = rotation_x(90.0)
    p = torch.tensor([x - (w - 1) / 2, y - (h - 1) / 2, z - (d - 1) / 2], dtype=torch.float64)
    q = rot @ p
    out = rotate_x_90(vol)
    assert out.shape == (h, d, w)
    zz, yy, xx = (int(i) for i in torch.nonzero(out)[0])
    got = torch.tensor([xx - (w - 1) / 2, yy - (d - 1) / 2, zz - (h - 1) / 2], dtype=torch.float64)
    torch.testing.assert_close(got, q)
    torch.testing.assert_close(rotate_x_90(rotate_x_90(vol), -1), vol)


def test_slabwise_reorientation_equals_whole():
    g = torch.Generator().manual_seed(0)
    vol = torch.randn(7, 9, 5, generator=g)
    trim = {"z": (1, 6), "x": (0, 4)}
    for turns in (0, 1, -1, 2):
        for flip in ("", "x", "zy"):
            want = flip_axes(rotate_x_90(trim_volume(vol, z=(1, 6), x=(0, 4)), turns), flip)
            plan = plan_reorient(tuple(vol.shape), trim, turns, flip)
            h_out = want.shape[1]
            got = np.concatenate([read_reoriented(vol.numpy(), plan, a, min(h_out, a + 2))
                                  for a in range(0, h_out, 2)], axis=1)
            np.testing.assert_array_equal(got, want.numpy())
    with pytest.raises(ValueError, match="trim"):
        plan_reorient((4, 4, 4), {"z": (2, 9)})


def test_normalise_and_8bit():
    g = torch.Generator().manual_seed(1)
    vol = 5 + 2 * torch.randn(20, 30, 40, generator=g)
    st = volume_stats(vol, max_samples=5000)
    assert st["mean"] == pytest.approx(5, abs=0.1) and st["sd"] == pytest.approx(2, abs=0.1)
    z = normalise(vol, st)
    assert float(z.mean()) == pytest.approx(0, abs=0.05) and float(z.std()) == pytest.approx(1, abs=0.05)
    u8 = to_8bit(vol, st, n_sd=3.0)
    assert u8.dtype == torch.uint8 and 120 <= float(u8.float().mean()) <= 136
    assert float((u8 == 255).float().mean()) < 0.01
    i8 = to_8bit(vol, st, signed=True, invert=True)
    assert i8.dtype == torch.int8
    assert float(torch.corrcoef(torch.stack([i8.float().flatten(), vol.flatten()]))[0, 1]) < -0.9
