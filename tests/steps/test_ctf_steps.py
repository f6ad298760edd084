"""ctf-estimate -> ctf-exclude -> ctf-correct on a simulated series with an excluded view: outputs, the
view mapping, and bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from ctf_series import artifact, run_step, simulated_series, write_record

from tomoforge.core.ctf import CtfParams, Optics, correct_ctf_strips
from tomoforge.errors import InputError, ParamError, ParseError
from tomoforge.io.ctffind import read_ctffind
from tomoforge.io.defocus import read_defocus
from tomoforge.io.mrc import read_section
from tomoforge.io.star import read_star
from tomoforge.model import TiltSeries
from tomoforge.steps.ctf_correct import CtfCorrect
from tomoforge.steps.ctf_estimate import (
    CtfEstimateFiles,
    CtfEstimateStep,
    parse_expected_defocus,
    view_tilt_axis_deg,
)
from tomoforge.steps.ctf_exclude import CtfExclude

PARAMS = {"box_size": 256, "resolution_min_a": 30.0, "resolution_max_a": 8.5, "joint": True}
EXCLUDED_ORDER = 3  # acquisition order of the view excluded before estimation


@pytest.fixture(scope="module")
def estimated(tmp_path_factory):
    root = tmp_path_factory.mktemp("ctfsteps")
    rec, ts, truth = simulated_series(root, seed=3, size=384)
    images = [im.model_copy(update={"excluded": True, "exclude_reason": "test"})
              if im.acquisition_order == EXCLUDED_ORDER else im for im in ts.images]
    ts = ts.model_copy(update={"images": images})
    write_record(rec, ts)
    (res,) = run_step(CtfEstimateStep, PARAMS, {"tilt_series": [artifact(rec, ts.ts_id)]}, root / "estimate")
    arts = {a.port: a for a in res.artifacts}
    out = TiltSeries.model_validate_json(open(arts["tilt_series"].path).read())
    files = CtfEstimateFiles.model_validate_json(open(arts["ctf_files"].path).read())
    return root, ts, truth, out, files, arts["tilt_series"].path


def test_estimate_matches_truth_and_files_agree(estimated):
    _, ts, truth, out, files, _ = estimated
    by_order = {v.acquisition_order: v for v in truth.views}
    active = [im for im in out.images if not im.excluded]
    assert len(active) == len(out.images) - 1
    for im in out.images:
        if im.excluded:
            assert im.acquisition_order == EXCLUDED_ORDER and im.ctf is None
            continue
        v = by_order[im.acquisition_order]
        assert abs(im.ctf.defocus_mean_a - 0.5 * (v.defocus_u_a + v.defocus_v_a)) < 1000.0
        assert im.ctf.defocus_u_a >= im.ctf.defocus_v_a and im.ctf.fit_resolution_a is not None
    assert files.handedness == 1
    # .defocus: one row per estimated view, numbered by its stack section.
    d = read_defocus(files.defocus_path)
    assert d.version == 3
    assert [e.start_view for e in d.entries] == [im.image.index + 1 for im in active]
    for e, im in zip(d.entries, active, strict=True):
        assert e.ctf.defocus_u_a == pytest.approx(im.ctf.defocus_u_a, abs=1.0)  # 0.1 nm rounding
        assert e.ctf.astigmatism_angle_deg == pytest.approx(im.ctf.astigmatism_angle_deg, abs=0.01)
    c = read_ctffind(files.ctffind_path)
    assert [r.ctf.defocus_v_a for r in c.rows] == pytest.approx([im.ctf.defocus_v_a for im in active], abs=0.01)
    star = read_star(files.star_path)
    block = next(iter(star.values()))
    assert [float(x) for x in block.column("rlnDefocusU")] == pytest.approx([im.ctf.defocus_u_a for im in active],
                                                                               abs=0.01)
    assert len(block.column("rlnCtfMaxResolution")) == len(active)
    assert len(files.view_pngs) == len(active)
    for p in files.view_pngs + [files.summary_png]:
        assert open(p, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    table = open(files.table_path).read().splitlines()
    assert len(table) == len(active) + 1 and table[0].startswith("view\tacquisition_order")


def test_bad_estimate_parameters_are_refused(estimated):
    root, ts, *_ = estimated
    rec = root / "input" / f"{ts.ts_id}.json"
    inputs = {"tilt_series": [artifact(rec, ts.ts_id)]}
    with pytest.raises(ParamError, match="resolution_max_a.*Nyquist|Nyquist"):
        run_step(CtfEstimateStep, {**PARAMS, "resolution_max_a": 5.0}, inputs, root / "bad1")
    with pytest.raises(ParamError, match="defocus_min_a"):
        run_step(CtfEstimateStep, {**PARAMS, "defocus_min_a": 40000.0, "defocus_max_a": 10000.0}, inputs, root / "bad2")
    bad_file = root / "expected.txt"
    bad_file.write_text("TS_01 four\n")
    with pytest.raises(ParseError, match="expected.txt:1"):
        run_step(CtfEstimateStep, {**PARAMS, "expected_defocus_file": str(bad_file)}, inputs, root / "bad3")
    bad_file.write_text("TS_99 4000\n")
    with pytest.raises(InputError, match="TS_99"):
        run_step(CtfEstimateStep, {**PARAMS, "expected_defocus_file": str(bad_file)}, inputs, root / "bad4")


def test_expected_defocus_file_and_dose_filtered_warning(estimated, tmp_path):
    root, ts, truth, *_ = estimated
    f = tmp_path / "defocus.txt"
    f.write_text("# expected defocus (nm)\nTS_01 2900.0\n")
    assert parse_expected_defocus(f) == {"TS_01": 29000.0}
    filtered = write_record(tmp_path / "filtered.json", ts.model_copy(update={"dose_filtered": True}))
    (res,) = run_step(CtfEstimateStep, {**PARAMS, "joint": False, "expected_defocus_file": str(f),
                                        "expected_defocus_range_a": 3000.0, "write_view_plots": False},
                      {"tilt_series": [artifact(filtered, ts.ts_id)]}, tmp_path / "job")
    log = "\n".join(res.log)
    assert "dose filtered" in log and "26000-32000" in log
    out = TiltSeries.model_validate_json(open(res.artifacts[0].path).read())
    assert all(26000 <= im.ctf.defocus_mean_a <= 32000 for im in out.images if not im.excluded)


def test_exclude_then_correct_keeps_the_view_mapping(estimated, tmp_path):
    root, ts, truth, out, files, est_path = estimated
    # Make one estimated view an outlier, list another by its stack section.
    images = list(out.images)
    outlier = next(i for i, im in enumerate(images) if not im.excluded and im.tilt_angle_deg > 10)
    c = images[outlier].ctf
    images[outlier] = images[outlier].model_copy(update={"ctf": c.model_copy(update={
        "defocus_u_a": c.defocus_u_a + 9000, "defocus_v_a": c.defocus_v_a + 9000})})
    listed = min((im for k, im in enumerate(images) if not im.excluded and k != outlier),
                 key=lambda im: abs(im.tilt_angle_deg))
    rec = write_record(tmp_path / "est.json", out.model_copy(update={"images": images}))
    (res,) = run_step(CtfExclude, {"views": str(listed.image.index + 1), "min_views": 2},
                      {"tilt_series": [artifact(rec, ts.ts_id)]}, tmp_path / "exclude")
    (art,) = res.artifacts
    assert art.port == "good"
    good = TiltSeries.model_validate_json(open(art.path).read())
    reasons = {im.acquisition_order: im.exclude_reason for im in good.images if im.excluded}
    assert set(reasons) == {EXCLUDED_ORDER, images[outlier].acquisition_order, listed.acquisition_order}
    assert "from the series median" in reasons[images[outlier].acquisition_order]
    # The whole series to "bad" when asked.
    (res_bad,) = run_step(CtfExclude, {"exclude_series": "TS_01"}, {"tilt_series": [artifact(rec, ts.ts_id)]},
                          tmp_path / "exclude2")
    assert [a.port for a in res_bad.artifacts] == ["bad"]

    (res_c,) = run_step(CtfCorrect, {"mode": "flip"}, {"tilt_series": [artifact(art.path, ts.ts_id)]},
                        tmp_path / "correct")
    corrected = TiltSeries.model_validate_json(open(res_c.artifacts[0].path).read())
    assert corrected.ctf_corrected
    acq = ts.acquisition
    for before, after in zip(good.images, corrected.images, strict=True):
        assert (before.acquisition_order, before.ctf) == (after.acquisition_order, after.ctf)
        raw = torch.from_numpy(np.array(read_section(before.image.path, before.image.index), dtype=np.float32))
        new = torch.from_numpy(np.array(read_section(after.image.path, after.image.index), dtype=np.float32))
        if before.ctf is None:  # excluded before estimation: copied
            assert torch.equal(raw, new)
            continue
        p = CtfParams(before.ctf.defocus_u_a, before.ctf.defocus_v_a, before.ctf.astigmatism_angle_deg)
        expected = correct_ctf_strips(raw, p, acq.pixel_size_a, Optics(acq.voltage_kv, acq.cs_mm, acq.amplitude_contrast),
                                      before.tilt_angle_deg, defocus_tolerance_a=500.0,
                                      tilt_axis_deg=view_tilt_axis_deg(good, before))
        assert torch.allclose(new, expected, atol=1e-3 * float(expected.abs().max()))
    with pytest.raises(InputError, match="already CTF corrected"):
        run_step(CtfCorrect, {}, {"tilt_series": [artifact(res_c.artifacts[0].path, ts.ts_id)]}, tmp_path / "again")
    assert json.loads(open(res_c.artifacts[0].path).read())["ctf_corrected"] is True
