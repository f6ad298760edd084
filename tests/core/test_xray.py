"""X-ray eraser: injected hot pixels are found and removed; clean pixels are left alone."""

from __future__ import annotations

import pytest
import torch

from tomoforge.core.xray import erase_xrays, fill_pixels

from motion_testdata import texture


def _image_with_xrays(seed: int, n_hot: int = 150, size: int = 256):
    g = torch.Generator().manual_seed(seed)
    clean = torch.poisson(40 * (1 + 0.3 * texture((size, size), seed, sigma_px=2.0)).clamp(min=0), generator=g)
    sd = float(clean.std())
    img = clean.clone()
    hot = torch.zeros(size, size, dtype=torch.bool)
    ys = torch.randint(2, size - 2, (n_hot,), generator=g)
    xs = torch.randint(2, size - 2, (n_hot,), generator=g)
    amp = 10 + 40 * torch.rand(n_hot, generator=g)  # 10-50 SD above the local level
    for k, (y, x) in enumerate(zip(ys.tolist(), xs.tolist(), strict=True)):
        img[y, x] += float(amp[k]) * sd
        hot[y, x] = True
        if k % 5 == 0:  # some X-rays hit two pixels
            img[y, x + 1] += 0.5 * float(amp[k]) * sd
            hot[y, x + 1] = True
    return img, clean, hot, sd


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_removes_hot_pixels_and_leaves_clean_ones(seed):
    img, clean, hot, sd = _image_with_xrays(seed)
    out, mask = erase_xrays(img)
    removed = (out[hot] - clean[hot]).abs() < 4 * sd
    assert float(removed.float().mean()) >= 0.95
    changed_clean = (out != img) & ~hot
    assert float(changed_clean.float().mean()) < 0.001
    assert float(mask[hot].float().mean()) >= 0.95


def test_fixed_defects_are_replaced_too():
    img, clean, hot, sd = _image_with_xrays(5, n_hot=0)
    fixed = torch.zeros_like(hot)
    fixed[100:102, 50:53] = True
    img[fixed] = 0
    out, mask = erase_xrays(img, fixed_mask=fixed)
    assert bool(mask[fixed].all())
    assert float((out[fixed] - clean[fixed]).abs().max()) < 4 * sd


def test_fill_pixels_interpolates_a_smooth_ramp():
    yy, xx = torch.meshgrid(torch.arange(20.0), torch.arange(20.0), indexing="ij")
    ramp = 2 * xx + yy
    m = torch.zeros(20, 20, dtype=torch.bool)
    m[9:11, 9:11] = True
    out = fill_pixels(torch.where(m, torch.tensor(-1e3), ramp), m)
    assert torch.allclose(out[m], ramp[m], atol=0.5)
