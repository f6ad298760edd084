"""Fiducial erasing: beads found near their projected 3D positions, erased with matched noise."""

from __future__ import annotations

import math

import pytest
import torch
from tests.core.reconstruct.phantom import project_blobs, random_alignment, random_blobs

from tomoforge.core.reconstruct import reconstruct_wbp
from tomoforge.core.reconstruct.erase import (
    bead_contrast,
    detect_beads,
    erase_beads,
    project_beads,
    refine_bead_positions,
)

VOL = (32, 64, 64)
IMG = (88, 88)
BEADS = torch.tensor([[-20.0, -18.0, 9.0], [15.0, -5.0, -10.0], [2.0, 20.0, 11.0], [-8.0, 6.0, -12.0],
                      [22.0, -29.0, 4.0]], dtype=torch.float64)
BEAD_SIGMA = 1.6
RADIUS = 4.0


@pytest.fixture(scope="module")
def case():
    tilts = torch.arange(-60.0, 61.0, 4.0)
    xf = random_alignment(tilts, axis_deg=85.0, seed=11)
    specimen = random_blobs(15, VOL, seed=8, sigma_range=(2.0, 4.0), amp_scale=0.3)
    base = project_blobs(*specimen, tilts, xf, IMG)
    n = len(BEADS)
    beads = project_blobs(BEADS, torch.full((n,), BEAD_SIGMA, dtype=torch.float64),
                          torch.full((n,), 8.0, dtype=torch.float64), tilts, xf, IMG)
    g = torch.Generator().manual_seed(0)
    noise = torch.randn(base.shape, generator=g) * 0.5
    clean = -base + noise  # dense = dark, as in cryo-EM images
    with_beads = clean - beads
    return tilts, xf, clean, with_beads


def test_refine_finds_beads_from_offset_predictions(case):
    tilts, xf, _, stack = case
    truth = project_beads(BEADS, tilts, xf, IMG)
    g = torch.Generator().manual_seed(1)
    guess = truth + 2.0 * (torch.rand(truth.shape, generator=g, dtype=torch.float64) - 0.5) * 2
    found = refine_bead_positions(stack, guess, RADIUS, search_px=5)
    err = (found - truth).norm(dim=-1)
    # Beads cut by the image border are not expected to be exact.
    inside = ((truth >= RADIUS + 2) & (truth <= torch.tensor([IMG[1], IMG[0]]) - 1 - RADIUS - 2)).all(-1)
    assert float(err[inside].max()) < 0.6
    assert float((guess - truth).norm(dim=-1).mean()) > 1.2  # the guesses really were off


def test_erased_beads_invisible_and_no_streaks(case):
    tilts, xf, clean, stack = case
    truth = project_beads(BEADS, tilts, xf, IMG)
    before = bead_contrast(stack, truth, RADIUS)
    assert float(torch.nanmean(before)) > 2.0
    pos = refine_bead_positions(stack, truth, RADIUS)
    erased = erase_beads(stack, pos, RADIUS, generator=torch.Generator().manual_seed(2))
    after = bead_contrast(erased, truth, RADIUS)
    ok = ~torch.isnan(after)
    assert int(ok.sum()) > 0.8 * after.numel()
    assert float(after[ok].max()) < 3.0  # no bead darker than 3 local SDs in any view
    n_disc = sum(1 for y in range(-4, 5) for x in range(-4, 5) if x * x + y * y <= RADIUS**2)
    assert float((after[ok] * math.sqrt(n_disc)).abs().max()) < 4.5  # not even statistically

    def ray_variance(vol):
        # Samples along every view's ray through each bead (beyond 2 bead radii), in the X-Z plane.
        d, h, w = VOL
        vals = []
        for bx, by, bz in BEADS.tolist():
            y = round(by + (h - 1) / 2)
            for t_deg in tilts.tolist():
                t = math.radians(t_deg)
                for s in range(-40, 41):
                    if abs(s) < 2 * RADIUS:
                        continue
                    x = round(bx - s * math.sin(t) + (w - 1) / 2)
                    z = round(bz + s * math.cos(t) + (d - 1) / 2)
                    if 0 <= x < w and 0 <= z < d:
                        vals.append(float(vol[z, y, x]))
        return torch.tensor(vals).var().item()

    ref = ray_variance(reconstruct_wbp(clean, tilts, xf, VOL))
    raw = ray_variance(reconstruct_wbp(stack, tilts, xf, VOL))
    fixed = ray_variance(reconstruct_wbp(erased, tilts, xf, VOL))
    assert raw > 2.0 * ref  # beads do streak ...
    assert fixed < 1.3 * ref  # ... and erased beads do not


def test_detect_by_template_without_3d_positions(case):
    tilts, xf, _, stack = case
    truth = project_beads(BEADS, tilts, xf, IMG)
    i = int(torch.argmin(tilts.abs()))
    found = detect_beads(stack[i], RADIUS, threshold=0.5)
    d = torch.cdist(truth[i], found)
    assert float(d.min(dim=1).values.max()) < 0.6  # every bead found
    assert len(found) <= len(BEADS) + 2  # few false positives
