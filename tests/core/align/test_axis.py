import copy

import torch

from tomoforge.core.align.axis import (
    axis_difference_deg,
    axis_from_images,
    axis_from_tracks,
    resolve_with_prior,
)


def test_axis_from_tracks_flags_wrong_prior(beads_series):
    s = beads_series
    obs = s.beads_raw + 0.3 * torch.randn(s.beads_raw.shape, generator=torch.Generator().manual_seed(0),
                                          dtype=torch.float64)
    shape = tuple(s.images.shape[-2:])
    good = axis_from_tracks(obs, s.tilt_deg, shape, prior_deg=-36.0)
    assert abs(good.tilt_axis_deg + 37.0) < 0.3 and good.prior_ok
    assert good.confidence > 0.3
    # a Tomo5-style value 180 degrees away is equivalent in geometry: kept near the prior, and accepted
    flipped = resolve_with_prior(copy.copy(good), 143.0)
    assert abs(flipped.tilt_axis_deg - 143.0) < 0.3 and flipped.prior_ok
    # a prior 90 (or 20) degrees off is caught and reported
    for wrong in (53.0, -17.0):
        est = resolve_with_prior(copy.copy(good), wrong)
        assert not est.prior_ok
        assert axis_difference_deg(est.tilt_axis_deg, -37.0) < 0.3
    # the scan itself does not depend on the prior
    far = axis_from_tracks(obs, s.tilt_deg, shape, prior_deg=53.0)
    assert not far.prior_ok and axis_difference_deg(far.tilt_axis_deg, -37.0) < 0.3


def test_axis_from_images(texture_series):
    s = texture_series
    est = axis_from_images(s.images, s.tilt_deg, prior_deg=-5.0)  # mdoc says -5: wrong by 90
    assert axis_difference_deg(est.tilt_axis_deg, 85.0) < 2.0
    assert est.prior_ok is False
