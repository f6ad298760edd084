"""Excluded-view bookkeeping through every later step, on the simulator's tiny case (issue 4, acceptance).

import-movies -> motion-correct (even/odd) -> xray-erase -> exclude-views (mark: both ends and two in the
middle) -> ctf-estimate -> ctf-exclude (lists one more view) -> dose-filter -> align (coarse + fiducials)
-> ctf-correct -> reconstruct -> erase-fiducials, plus align-coarse -> fiducial-model -> fiducial-align and
align-patches run by hand from the dose-filtered series.

After every step, for every view: the same acquisition order, nominal angle, dose and accumulated dose in
the same record position; every view excluded before stays excluded (later steps may only add exclusions,
each with a reason); each image (and its even/odd half) of a kept view still correlates best with the
noise-free truth of its own acquisition order; a view's CTF estimate stays with it; the alignment found
for each view is that view's true alignment. reconstruct reports using exactly the kept views.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tests.core.align.synth import shift_error_rms

from tomoforge.io.mrc import read_mrc, read_section
from tomoforge.io.sim_session import session_path
from tomoforge.model import TiltSeries
from tomoforge.steps.align_auto import Align
from tomoforge.steps.align_coarse import AlignCoarse
from tomoforge.steps.align_patches import AlignPatches
from tomoforge.steps.ctf_correct import CtfCorrect
from tomoforge.steps.ctf_estimate import CtfEstimateStep
from tomoforge.steps.ctf_exclude import CtfExclude
from tomoforge.steps.dose_filter import DoseFilter
from tomoforge.steps.erase_fiducials import EraseFiducials
from tomoforge.steps.exclude_views import ExcludeViews
from tomoforge.steps.fiducial_align import FiducialAlign
from tomoforge.steps.fiducial_model import FiducialModel
from tomoforge.steps.motion_correct import MotionCorrect
from tomoforge.steps.reconstruct import Reconstruct
from tomoforge.steps.xray_erase import XrayErase

from preprocess_project import SimProject

LISTED = (1, 9, 11, 21)  # 1-based positions in angle order: -60, -12, 0 and +60 degrees
CTF_LISTED_DEG = 30.0  # ctf-exclude flags this view by its stack section
# Steps whose records carry the fiducial alignment. align-patches is left out of the accuracy check: on this
# 128 px case patch tracking is 4.1 px rms off the truth even with no view excluded (2.6 px with), which
# cannot tell a view's transform from its neighbour's; it is checked for angles, doses and images below.
ALIGNED = ("align", "fiducial-align", "ctf-correct", "erase-fiducials")


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    root = tmp_path_factory.mktemp("bookkeeping")
    sim = SimProject(root, seed=3)
    jobs = {}
    jobs["motion-correct"] = mc = sim.run(MotionCorrect, {"split_even_odd": True}, sim.imported.id)
    jobs["xray-erase"] = xr = sim.run(XrayErase, {}, specs=[f"{mc.id}:tilt_series"])
    listing = root / "exclude.txt"
    listing.write_text("TS_01 " + " ".join(map(str, LISTED)) + "\n")
    jobs["exclude-views"] = ex = sim.run(ExcludeViews, {"list_file": str(listing)}, xr.id)
    jobs["ctf-estimate"] = ce = sim.run(CtfEstimateStep, {"box_size": 64, "write_view_plots": False}, ex.id)
    est = sim.records(ce.id)["TS_01"]
    section = next(im.image.index for im in est.images if abs(im.tilt_angle_deg - CTF_LISTED_DEG) < 1)
    jobs["ctf-exclude"] = cx = sim.run(CtfExclude, {"views": [section + 1]}, ce.id)
    jobs["dose-filter"] = df = sim.run(DoseFilter, {}, specs=[f"{cx.id}:good"])
    jobs["align"] = al = sim.run(Align, {}, df.id)
    jobs["ctf-correct"] = cc = sim.run(CtfCorrect, {}, specs=[f"{al.id}:tilt_series"])
    jobs["reconstruct"] = sim.run(Reconstruct, {"thickness_px": 80}, cc.id)
    jobs["erase-fiducials"] = sim.run(EraseFiducials, {},
                                      specs=[f"tilt_series={cc.id}", f"landmarks={al.id}:landmarks"])
    # the fiducial route by hand, and the fiducial-less one
    jobs["align-coarse"] = co = sim.run(AlignCoarse, {}, df.id)
    jobs["fiducial-model"] = fm = sim.run(FiducialModel, {}, co.id)
    jobs["fiducial-align"] = sim.run(FiducialAlign, {}, specs=[f"tilt_series={co.id}", f"landmarks={fm.id}"])
    jobs["align-patches"] = sim.run(AlignPatches, {}, df.id)
    truth = sim.truth.series("TS_01")
    clean, _ = read_mrc(session_path(sim.truth_path, truth.noise_free_stack))  # acquisition order
    return {"sim": sim, "jobs": jobs, "truth": truth, "clean": clean,
            "records": {name: sim.records(j.id, "good" if name == "ctf-exclude" else "tilt_series").get("TS_01")
                        for name, j in jobs.items() if name not in ("reconstruct", "fiducial-model")}}


def _excluded(ts: TiltSeries) -> set[int]:
    return {im.acquisition_order for im in ts.images if im.excluded}


def test_listed_views_are_marked_by_acquisition_order(chain):
    mc, ex = chain["records"]["motion-correct"], chain["records"]["exclude-views"]
    want = {mc.images[i - 1].acquisition_order for i in LISTED}
    assert [round(mc.images[i - 1].tilt_angle_deg) for i in LISTED] == [-60, -12, 0, 60]
    assert _excluded(ex) == want
    assert [im.image for im in ex.images] == [im.image for im in chain["records"]["xray-erase"].images]  # mark
    cx = chain["records"]["ctf-exclude"]
    extra = _excluded(cx) - want
    (k,) = extra
    assert chain["truth"].views[k].nominal_tilt_deg == pytest.approx(CTF_LISTED_DEG)
    assert "listed" in next(im.exclude_reason for im in cx.images if im.acquisition_order == k)


def _corr_argmax(img: np.ndarray, clean: np.ndarray, crop: int = 8) -> int:
    a = img[crop:-crop, crop:-crop].ravel()
    return int(np.argmax([np.corrcoef(a, r[crop:-crop, crop:-crop].ravel())[0, 1] for r in clean]))


STEPS = ["motion-correct", "xray-erase", "exclude-views", "ctf-estimate", "ctf-exclude", "dose-filter", "align",
         "ctf-correct", "erase-fiducials", "align-coarse", "fiducial-align", "align-patches"]
PARENT = {"xray-erase": "motion-correct", "exclude-views": "xray-erase", "ctf-estimate": "exclude-views",
          "ctf-exclude": "ctf-estimate", "dose-filter": "ctf-exclude", "align": "dose-filter",
          "ctf-correct": "align", "erase-fiducials": "ctf-correct", "align-coarse": "dose-filter",
          "fiducial-align": "align-coarse", "align-patches": "dose-filter"}


@pytest.mark.parametrize("step", STEPS)
def test_every_view_keeps_angle_dose_order_and_image(chain, step):
    recs, truth, clean = chain["records"], chain["truth"], chain["clean"]
    ts = recs[step]
    first = recs["motion-correct"]
    assert [im.acquisition_order for im in ts.images] == [im.acquisition_order for im in first.images]
    assert sorted(im.acquisition_order for im in ts.images) == list(range(len(truth.views)))
    for im in ts.images:
        view = truth.views[im.acquisition_order]
        assert im.nominal_tilt_angle_deg == pytest.approx(view.nominal_tilt_deg, abs=0.01)
        assert im.dose_e_per_a2 == pytest.approx(view.dose_e_per_a2, rel=1e-6)
        assert im.accumulated_dose_e_per_a2 == pytest.approx(view.accumulated_dose_e_per_a2, rel=1e-6)
    # refined (or nominal) angles: the view's own true angle up to one common offset (a gauge without beads);
    # the neighbours are 6 degrees away
    dev = np.array([im.tilt_angle_deg - truth.views[im.acquisition_order].tilt_deg for im in ts.images])
    assert abs(float(np.median(dev))) < 5.0
    assert np.abs(dev - np.median(dev)).max() < 1.0, dev
    # exclusions only grow along the chain, and what a step adds carries a reason
    if step in PARENT:
        parent = {im.acquisition_order: im for im in recs[PARENT[step]].images if im.excluded}
        for im in ts.images:
            if im.acquisition_order in parent:
                assert im.excluded and im.exclude_reason == parent[im.acquisition_order].exclude_reason
            elif im.excluded:
                assert im.exclude_reason, (step, im.acquisition_order)
    if STEPS.index(step) >= STEPS.index("exclude-views"):
        assert _excluded(recs["exclude-views"]) <= _excluded(ts)
    # each image is its own view's: the most similar of the clean views; erased images (beads gone) are compared
    # with the views they were erased from instead, which those checks tie to the clean ones
    refs = clean
    if step == "erase-fiducials":
        parent = {im.acquisition_order: im for im in recs[PARENT[step]].images}
        refs = np.stack([read_section(parent[k].image.path, parent[k].image.index) if k in parent
                         else np.zeros_like(clean[0]) for k in range(len(clean))])
    for im in ts.images:
        if im.excluded:
            continue
        for ref in (im.image, im.even, im.odd):
            assert ref is not None, (step, im.acquisition_order)
            k = _corr_argmax(read_section(ref.path, ref.index), refs)
            assert k == im.acquisition_order, (step, ref, k)


@pytest.mark.parametrize("step", ["ctf-exclude", "dose-filter", "align", "ctf-correct", "erase-fiducials"])
def test_ctf_estimates_stay_with_their_views(chain, step):
    est = {im.acquisition_order: im.ctf for im in chain["records"]["ctf-estimate"].images}
    assert sum(c is not None for c in est.values()) == len(est) - len(LISTED)
    for im in chain["records"][step].images:
        assert im.ctf == est[im.acquisition_order]


@pytest.mark.parametrize("step", ALIGNED)
def test_each_view_carries_its_own_alignment(chain, step):
    ts, truth = chain["records"][step], chain["truth"]
    kept = [im for im in ts.images if not im.excluded]
    est = torch.tensor([im.transform.as_rows() for im in kept], dtype=torch.float64)
    true = torch.tensor([truth.views[im.acquisition_order].xf for im in kept], dtype=torch.float64)
    tilt = torch.tensor([truth.views[im.acquisition_order].tilt_deg for im in kept])
    err = shift_error_rms(est, true, tilt)
    assert err < 1.0, err


def test_reconstruct_uses_exactly_the_kept_views(chain):
    job = chain["jobs"]["reconstruct"]
    kept = [im for im in chain["records"]["ctf-correct"].images if not im.excluded]
    assert job.metrics["views_used"] == len(kept)
    assert len(kept) <= len(chain["truth"].views) - len(LISTED) - 1
    (tomo,) = chain["sim"].raw(job.id, "tomogram")
    assert tomo["half1_path"] and tomo["half2_path"]  # every kept view had both halves
