"""Tilt-series mode: the defocus-gradient sign that fits better is the handedness of the data."""

from __future__ import annotations

import pytest
import torch
from tests.core.ctf.synth import synth_view

from tomoforge.core.ctf.estimate import estimate_ctf
from tomoforge.core.ctf.fit import FitSettings
from tomoforge.core.ctf.model import Optics
from tomoforge.core.ctf.series import estimate_tilt_series

PIX = 2.0
SETTINGS = FitSettings(resolution_min_a=30.0, resolution_max_a=6.0, defocus_min_a=5000.0, defocus_max_a=60000.0,
                       defocus_step_a=500.0)
TILTS = [-50.0, 0.0, 50.0]


def _series(handedness: int, defoci: list[float]):
    return [synth_view(d + 400, d - 400, 30.0, pixel_size_a=PIX, size=640, tilt_deg=t, handedness=handedness,
                       snr=0.2, seed=i, column_step_a=50.0)[0] for i, (d, t) in enumerate(zip(defoci, TILTS, strict=True))]


@pytest.mark.parametrize("handedness", [1, -1])
def test_series_reports_the_handedness_and_defocus(handedness):
    defoci = [30000.0, 30300.0, 30600.0]
    r = estimate_tilt_series(_series(handedness, defoci), TILTS, [0.0] * 3, PIX, Optics(), SETTINGS, box=256,
                             shared_astigmatism=True)
    assert r.handedness == handedness
    assert r.handedness_scores[handedness] > r.handedness_scores[-handedness]
    for fit, d in zip(r.fits, defoci, strict=True):
        assert abs(fit.params.defocus_mean_a - d) <= 500.0
        assert abs(fit.params.astigmatism_a - 800.0) <= 300.0


def test_outlier_view_is_searched_again_near_its_neighbours():
    # The middle view is a blank (no signal): its free fit lands anywhere, the consistency pass pulls it in.
    imgs = _series(1, [30000.0, 30300.0, 30600.0])
    imgs[1] = torch.randn(imgs[1].shape, generator=torch.Generator().manual_seed(1))
    alone = estimate_ctf(imgs[1], PIX, Optics(), SETTINGS, box=256)
    assert abs(alone.params.defocus_mean_a - 30300.0) > 3000.0  # the blank view alone fits nonsense
    r = estimate_tilt_series(imgs, TILTS, [0.0] * 3, PIX, Optics(), SETTINGS, box=256, handedness=1,
                             max_deviation_a=3000.0)
    assert r.refitted == [1]
    assert abs(r.fits[1].params.defocus_mean_a - 30300.0) <= 3500.0
