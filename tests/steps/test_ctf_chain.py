"""The CTF steps through the project runner: import-movies -> motion-correct -> exclude-views (mark the
-60° view) -> ctf-estimate -> ctf-exclude (list one more) -> ctf-correct. Every view must keep its
acquisition order, its own estimate (close to the truth of that order) and its own image throughout."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tomoforge.core.ctf import CtfParams, Optics, correct_ctf_strips
from tomoforge.io.mrc import read_section
from tomoforge.steps.ctf_correct import CtfCorrect
from tomoforge.steps.ctf_estimate import CtfEstimateStep, view_tilt_axis_deg
from tomoforge.steps.ctf_exclude import CtfExclude
from tomoforge.steps.exclude_views import ExcludeViews
from tomoforge.steps.motion_correct import MotionCorrect

from preprocess_project import SimProject


def _section(ref) -> torch.Tensor:
    return torch.from_numpy(np.array(read_section(ref.path, ref.index), dtype=np.float32))


def test_ctf_chain_keeps_the_view_mapping(tmp_path):
    sim = SimProject(tmp_path, seed=1, overrides={"image_size_px": 256, "pixel_size_a": 4.0})
    mc = sim.run(MotionCorrect, {}, sim.imported.id)
    ex = sim.run(ExcludeViews, {"tilt_angles": "-60"}, mc.id)
    est = sim.run(CtfEstimateStep, {"box_size": 128, "resolution_max_a": 8.5, "write_view_plots": False}, ex.id)
    (ts_est,) = sim.records(est.id).values()
    listed = next(im for im in ts_est.images if abs(im.tilt_angle_deg - 30) < 1)
    cx = sim.run(CtfExclude, {"views": str(listed.image.index + 1), "min_views": 3}, est.id)
    co = sim.run(CtfCorrect, {}, specs=[f"{cx.id}:good"])
    (ts_mc,) = sim.records(mc.id).values()
    (ts_cx,) = sim.records(cx.id, "good").values()
    (ts_co,) = sim.records(co.id).values()
    truth = {v.acquisition_order: v for v in sim.truth.tilt_series[0].views}
    mc_by_order = {im.acquisition_order: im for im in ts_mc.images}
    acq = ts_co.acquisition
    optics = Optics(acq.voltage_kv, acq.cs_mm, acq.amplitude_contrast)
    errors = []
    for im_cx, im in zip(ts_cx.images, ts_co.images, strict=True):
        assert im.acquisition_order == im_cx.acquisition_order and im.ctf == im_cx.ctf
        t = truth[im.acquisition_order]
        assert im.tilt_angle_deg == pytest.approx(t.tilt_deg, abs=2.0)
        raw = _section(mc_by_order[im.acquisition_order].image)
        if abs(t.nominal_tilt_deg + 60) < 0.5:  # excluded before estimation: no CTF, copied
            assert im.excluded and im.ctf is None and torch.equal(_section(im.image), raw)
            continue
        if im.acquisition_order == listed.acquisition_order:
            assert im.excluded and "listed" in im.exclude_reason
        errors.append(abs(im.ctf.defocus_mean_a - 0.5 * (t.defocus_u_a + t.defocus_v_a)))
        p = CtfParams(im.ctf.defocus_u_a, im.ctf.defocus_v_a, im.ctf.astigmatism_angle_deg)
        expected = correct_ctf_strips(raw, p, acq.pixel_size_a, optics, im.tilt_angle_deg, defocus_tolerance_a=500.0,
                                      tilt_axis_deg=view_tilt_axis_deg(ts_co, im))
        assert torch.allclose(_section(im.image), expected, atol=1e-3 * float(expected.abs().max()))
    assert len(errors) == len(ts_co.images) - 1
    assert sorted(errors)[len(errors) // 2] < 1000.0, errors
