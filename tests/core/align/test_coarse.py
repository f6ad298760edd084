import math

import pytest
import torch
from tests.core.align.synth import make_series, shift_error_rms

from tomoforge.core.align.coarse import align_coarse, auto_binning
from tomoforge.core.geometry import xf_rotation_deg


def test_coarse_recovers_shifts_and_keeps_axis(texture_series):
    s = texture_series
    r = align_coarse(s.images, s.tilt_deg, s.tilt_axis_deg)
    err = shift_error_rms(r.xf, s.xf, s.tilt_deg)
    assert err < 0.75, err  # acceptance: 2 px after the coarse step
    assert torch.allclose(xf_rotation_deg(r.xf), torch.full((len(s.tilt_deg),), 85.0, dtype=torch.float64))
    # reference view is the one nearest zero tilt and keeps a zero shift
    assert abs(float(s.tilt_deg[r.reference_view])) < 1e-9
    assert torch.all(r.xf[r.reference_view, :, 2] == 0)


def test_coarse_skips_dark_view(beads_series):
    s = beads_series
    skip = torch.zeros(len(s.tilt_deg), dtype=torch.bool)
    skip[3] = True
    r = align_coarse(s.images, s.tilt_deg, s.tilt_axis_deg, skip=skip)
    assert torch.isfinite(r.xf).all()
    assert shift_error_rms(r.xf, s.xf, s.tilt_deg, ~skip) < 1.0
    assert math.isnan(float(r.peak[3]))


def test_coarse_with_binning_and_cumulative_on_thin_specimen():
    s = make_series(seed=7, size=256, tilt_axis_deg=20.0, step=4.0, n_beads=6, thickness_px=0.0)
    r = align_coarse(s.images, s.tilt_deg, 20.0, binning=2)
    assert r.binning == 2
    assert shift_error_rms(r.xf, s.xf, s.tilt_deg) < 1.5
    rc = align_coarse(s.images, s.tilt_deg, 20.0, cumulative=True)
    assert shift_error_rms(rc.xf, s.xf, s.tilt_deg) < 2.0


def test_coarse_refuses_nan_axis(texture_series):
    with pytest.raises(ValueError, match="not a number"):
        align_coarse(texture_series.images[:3], texture_series.tilt_deg[:3], float("nan"))


def test_auto_binning():
    assert auto_binning((4096, 5760), 512) == 12
    assert auto_binning((256, 256), 512) == 1
