"""Automatic view exclusion: finds a dark, a blank and a jumping view, and no good view."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from tomoforge.core.exclude import find_bad_views

from motion_testdata import texture


def _tilt_series(seed: int, n: int = 21, size: int = 128, counts: float = 30.0):
    """Views of one texture stretched by 1/cos(tilt) along x, dimmer at high tilt, small drifts, Poisson."""
    g = torch.Generator().manual_seed(seed)
    tex = texture((size * 2, size * 2), seed, sigma_px=3.0)
    angles = torch.linspace(-60, 60, n)
    views = []
    yy, xx = torch.meshgrid(torch.linspace(-0.5, 0.5, size), torch.linspace(-0.5, 0.5, size), indexing="ij")
    for a in angles.tolist():
        c = math.cos(math.radians(a))
        jitter = 0.01 * torch.randn(2, generator=g)
        grid = torch.stack([xx * c + jitter[1], yy + jitter[0]], -1)[None]
        img = F.grid_sample(tex[None, None], grid, mode="bilinear", align_corners=True)[0, 0]
        level = counts * math.exp(-0.3 / c)
        views.append(torch.poisson((level * (1 + 0.3 * c * img)).clamp(min=0), generator=g))
    return torch.stack(views), angles


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_good_series_has_no_bad_view(seed):
    views, _ = _tilt_series(seed)
    verdicts, stats = find_bad_views(views)
    assert verdicts == [], [v.reason for v in verdicts]
    assert stats.neighbour_cc.shape == (20,)


@pytest.mark.parametrize("seed", [0, 3])
def test_finds_dark_blank_and_jumping_views(seed):
    views, _ = _tilt_series(seed)
    g = torch.Generator().manual_seed(seed + 50)
    views[0] = torch.poisson(torch.full_like(views[0], 0.5), generator=g)  # dark first view (-60 deg)
    views[13] = torch.poisson(torch.full_like(views[13], float(views[13].mean())), generator=g)  # blank
    views[8] = torch.roll(views[8], shifts=(0, 30), dims=(0, 1))  # jump of 30 px in x
    verdicts, _ = find_bad_views(views)
    found = {v.index: v.kind for v in verdicts}
    assert found == {0: "dark", 8: "jump", 13: "low-signal"}, [(v.index, v.reason) for v in verdicts]
    jump = next(v for v in verdicts if v.index == 8)
    dx = float(jump.reason.split("(")[1].split(",")[0])
    assert abs(dx - 30) < 3, jump.reason
