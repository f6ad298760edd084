"""Bookkeeping through the preprocessing chain on the simulator's tiny case (with a dark view).

motion-correct -> exclude-views (auto, mark) -> exclude-views (list: both ends and the middle, restack)
-> xray-erase -> dose-filter -> bin -> (a stand-in alignment) -> assign-alignment back onto the unfiltered
series. After every step each surviving image must still be the image of its acquisition order (it
correlates best with that view of the noise-free truth), with that view's angle and dose.
"""

from __future__ import annotations

import numpy as np
import pytest

from tomoforge.errors import InputError
from tomoforge.io.mrc import read_mrc, read_section
from tomoforge.io.sim_session import session_path
from tomoforge.model import TiltSeries, Transform2D
from tomoforge.steps.assign_alignment import AssignAlignment
from tomoforge.steps.base import Port, Step, StepParams, UnitResult
from tomoforge.steps.bin import Bin
from tomoforge.steps.dose_filter import DoseFilter
from tomoforge.steps.exclude_views import ExcludeViews
from tomoforge.steps.motion_correct import MotionCorrect
from tomoforge.steps.xray_erase import XrayErase

from preprocess_project import SimProject

DARK_ORDER = 20  # the last view acquired (at +-60 deg)


class FakeAlign(Step):
    """Stands in for an alignment step: transform shift dx = acquisition order, refined angle + 0.3."""

    name = "fake-align"
    inputs = {"tilt_series": Port(TiltSeries)}
    outputs = {"tilt_series": Port(TiltSeries)}
    Params = StepParams

    def run_unit(self, params, unit, ctx):
        ts = unit.one("tilt_series").load(TiltSeries)
        imgs = [im.model_copy(update={"transform": Transform2D(dx_px=float(im.acquisition_order), dy_px=1.0),
                                      "nominal_tilt_angle_deg": im.tilt_angle_deg,
                                      "tilt_angle_deg": im.tilt_angle_deg + 0.3}) for im in ts.images]
        res = UnitResult()
        res.artifacts.append(ctx.write_record("tilt_series", ts.ts_id, ts.model_copy(update={"images": imgs})))
        return res


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    return SimProject(tmp_path_factory.mktemp("chain"), seed=2, overrides={"dark_views": str(DARK_ORDER)})


def _check_identity(sim: SimProject, ts: TiltSeries, crop: int = 8):
    truth = sim.truth.series("TS_01")
    clean, _ = read_mrc(session_path(sim.truth_path, truth.noise_free_stack))  # acquisition order
    for im in ts.images:
        view = truth.views[im.acquisition_order]
        assert im.dose_e_per_a2 == pytest.approx(view.dose_e_per_a2 if not view.dark else im.dose_e_per_a2)
        assert im.accumulated_dose_e_per_a2 == pytest.approx(view.accumulated_dose_e_per_a2, abs=1e-6) or view.dark
        nominal = im.nominal_tilt_angle_deg if im.nominal_tilt_angle_deg is not None else im.tilt_angle_deg
        assert nominal == pytest.approx(view.nominal_tilt_deg, abs=0.01)
        if view.dark:
            continue
        img = read_section(im.image.path, im.image.index)
        if img.shape != clean.shape[1:]:  # binned: compare against the truth binned by 2x2 averaging
            h, w = img.shape
            ref = clean.reshape(len(clean), h, 2, w, 2).mean((2, 4))
        else:
            ref = clean
        c = crop * img.shape[0] // clean.shape[1]
        scores = [np.corrcoef(img[c:-c, c:-c].ravel(), r[c:-c, c:-c].ravel())[0, 1] for r in ref]
        assert int(np.argmax(scores)) == im.acquisition_order, (im.acquisition_order, np.argsort(scores)[-3:])


def test_chain_keeps_every_image_with_its_angle_dose_and_order(sim, tmp_path):
    mc = sim.run(MotionCorrect, {"split_even_odd": True}, sim.imported.id)
    ts = sim.records(mc.id)["TS_01"]
    _check_identity(sim, ts)

    # with even/odd on, motion-correct has three TiltSeries outputs: say which one
    auto = sim.run(ExcludeViews, {"auto": True}, specs=[f"{mc.id}:tilt_series"])
    marked = sim.records(auto.id)["TS_01"]
    flagged = [im for im in marked.images if im.excluded]
    assert [im.acquisition_order for im in flagged] == [DARK_ORDER], [(i.acquisition_order, i.exclude_reason)
                                                                      for i in flagged]
    assert flagged[0].exclude_reason.startswith("auto: dark")
    assert [im.image for im in marked.images] == [im.image for im in ts.images]  # mark keeps the images

    listing = tmp_path / "exclude.txt"
    listing.write_text("TS_01 1 11 21\n")  # first, middle and last view in angle order
    restacked_job = sim.run(ExcludeViews, {"mode": "restack", "list_file": str(listing)}, auto.id)
    restacked = sim.records(restacked_job.id)["TS_01"]
    dropped = {marked.images[i].acquisition_order for i in (0, 10, 20)} | {DARK_ORDER}
    assert sorted(im.acquisition_order for im in restacked.images) == sorted(set(range(21)) - dropped)
    assert [im.image.index for im in restacked.images] == list(range(len(restacked.images)))
    assert all(im.even is not None and im.odd is not None for im in restacked.images)
    _check_identity(sim, restacked)

    xr = sim.run(XrayErase, {}, restacked_job.id)
    _check_identity(sim, sim.records(xr.id)["TS_01"])
    df = sim.run(DoseFilter, {}, xr.id)
    filtered = sim.records(df.id)["TS_01"]
    assert filtered.dose_filtered and not sim.records(xr.id)["TS_01"].dose_filtered
    _check_identity(sim, filtered)
    with pytest.raises(InputError, match="already dose filtered"):
        sim.run(DoseFilter, {}, df.id)
    bn = sim.run(Bin, {"factor": 2}, df.id)
    binned = sim.records(bn.id)["TS_01"]
    assert binned.image_shape_yx == (64, 64)
    assert binned.acquisition.pixel_size_a == pytest.approx(2 * filtered.acquisition.pixel_size_a)
    _check_identity(sim, binned)

    aligned = sim.run(FakeAlign, {}, bn.id)
    assigned_job = sim.run(AssignAlignment, {}, specs=[f"tilt_series={xr.id}", f"alignment={aligned.id}"])
    assigned = sim.records(assigned_job.id)["TS_01"]
    assert not assigned.dose_filtered
    for im in assigned.images:
        assert im.transform.dx_px == pytest.approx(2.0 * im.acquisition_order)  # binned px -> unbinned px
        assert im.tilt_angle_deg == pytest.approx(im.nominal_tilt_angle_deg + 0.3)
    _check_identity(sim, assigned)

    # a mismatch is refused: the alignment lacks views the target has
    n_jobs = len(sim.project.jobs())
    with pytest.raises(InputError, match="no partner in the alignment input"):
        sim.run(AssignAlignment, {}, specs=[f"tilt_series={mc.id}:tilt_series", f"alignment={aligned.id}"])
    assert len(sim.project.jobs()) == n_jobs


def test_exclude_by_angle_whole_series_and_bad_list(sim, tmp_path):
    mc = sim.run(MotionCorrect, {"split_even_odd": True}, sim.imported.id)  # the same job as above: reused
    ts = sim.records(mc.id)["TS_01"]
    src = [f"{mc.id}:tilt_series"]
    job = sim.run(ExcludeViews, {"tilt_angles": [-60.0, 0.0]}, specs=src)
    out = sim.records(job.id)["TS_01"]
    assert sorted(round(im.tilt_angle_deg) for im in out.images if im.excluded) == \
        sorted(round(im.tilt_angle_deg) for im in ts.images if abs(im.tilt_angle_deg + 60) < 1 or
               abs(im.tilt_angle_deg) < 1)
    whole = sim.run(ExcludeViews, {"exclude_series": ["TS_01"]}, specs=src)
    assert sim.records(whole.id)["TS_01"].excluded
    gone = sim.run(ExcludeViews, {"exclude_series": ["TS_01"], "mode": "restack"}, specs=src)
    assert sim.records(gone.id) == {}
    bad = tmp_path / "bad.txt"
    bad.write_text("TS_01 1 x\n")
    from tomoforge.errors import ParseError
    with pytest.raises(ParseError, match="bad.txt:1"):
        sim.run(ExcludeViews, {"list_file": str(bad)}, specs=src)
    bad.write_text("TS_09 1\n")
    with pytest.raises(InputError, match="TS_09"):
        sim.run(ExcludeViews, {"list_file": str(bad)}, specs=src)
    bad.write_text("TS_01 22\n")
    with pytest.raises(InputError, match="has 21 views"):
        sim.run(ExcludeViews, {"list_file": str(bad)}, specs=src)
