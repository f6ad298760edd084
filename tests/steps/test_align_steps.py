"""The alignment steps on a synthetic tilt series written as an MRC stack: chain, files, bad input."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from tests.core.align.synth import make_series, shift_error_rms

from tomoforge.errors import InputError, ParamError
from tomoforge.io.imod import read_tilt_angles, read_xf
from tomoforge.io.imod_model import fiducial_points, read_model
from tomoforge.io.mrc import read_mrc, write_mrc
from tomoforge.io.sim_session import load_truth, session_path, simulate_case
from tomoforge.model import Acquisition, ImageRef, TiltImage, TiltSeries
from tomoforge.model.landmarks import LandmarkModel
from tomoforge.steps._align import transforms_of
from tomoforge.steps.align_coarse import AlignCoarse, AlignCoarseParams
from tomoforge.steps.align_patches import AlignPatches, AlignPatchesParams
from tomoforge.steps.base import InputArtifact, UnitContext
from tomoforge.steps.fiducial_align import FiducialAlign, FiducialAlignParams
from tomoforge.steps.fiducial_model import FiducialModel, FiducialModelParams
from tomoforge.steps.tilt_axis_refine import TiltAxisRefine, TiltAxisRefineParams

PX_A = 10.0  # so the 8 px beads are 8 nm


def _record(s, root, name, axis, excluded=()):
    path = root / f"{name}.mrcs"
    write_mrc(path, s.images.numpy(), PX_A, stack=True)
    images = [TiltImage(tilt_angle_deg=float(t), nominal_tilt_angle_deg=float(t), acquisition_order=k,
                        image=ImageRef(path=str(path), index=k), excluded=k in excluded)
              for k, t in enumerate(s.tilt_deg)]
    return TiltSeries(ts_id=name, acquisition=Acquisition(pixel_size_a=PX_A, tilt_axis_deg=axis), images=images,
                      image_shape_yx=tuple(s.images.shape[-2:]))


def _art(root, port, key, rec, i=1):
    p = root / f"{key}.{port}.{i}.json"
    p.write_text(rec.model_dump_json())
    return InputArtifact(artifact_id=i, port=port, key=key, type=type(rec).__name__, path=str(p))


def _run(step_cls, params, root, **records):
    step = step_cls()
    inputs = {port: [_art(root, port, rec.ts_id, rec, i)] for i, (port, rec) in enumerate(records.items())}
    (unit,) = step.plan(params, inputs)
    res = step.run_unit(params, unit, UnitContext(job_dir=root, unit_key=unit.key))
    out = {}
    for a in res.artifacts:
        out[a.port] = json.loads(open(a.path).read())
    return out, res


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    root = tmp_path_factory.mktemp("align")
    s = make_series(seed=11, size=224, tilt_axis_deg=-37.0, step=3.0, n_beads=18, dark_views=(2,))
    ts = _record(s, root, "TS_01", axis=-35.8, excluded=(39,))
    out, res = _run(AlignCoarse, AlignCoarseParams(write_aligned_stack=True, aligned_stack_binning=2), root,
                    tilt_series=ts)
    coarse = TiltSeries.model_validate(out["tilt_series"])
    out, res_m = _run(FiducialModel, FiducialModelParams(bead_diameter_nm=8.0), root, tilt_series=coarse)
    lm = LandmarkModel.model_validate(out["landmarks"])
    out, res_a = _run(FiducialAlign, FiducialAlignParams(), root, tilt_series=coarse, landmarks=lm)
    aligned = TiltSeries.model_validate(out["tilt_series"])
    return dict(s=s, root=root, ts=ts, coarse=coarse, lm=lm, aligned=aligned, refined=out["landmarks"],
                res_a=res_a, res_m=res_m)


def test_coarse_step_records_transforms_and_prexg(chain):
    s, coarse = chain["s"], chain["coarse"]
    xf = transforms_of(coarse)
    good = torch.ones(len(s.tilt_deg), dtype=torch.bool)
    good[[2, 39]] = False
    assert shift_error_rms(xf, s.xf, s.tilt_deg, good) < 1.0
    back = read_xf(chain["root"] / "outputs" / "TS_01.prexg")
    assert torch.allclose(back, xf, atol=1e-3)
    assert coarse.images[39].excluded and coarse.images[39].tilt_angle_deg == pytest.approx(float(s.tilt_deg[39]))
    ali, _ = read_mrc(chain["root"] / "outputs" / "TS_01_coarse_bin2.mrc")
    assert ali.shape == (len(s.tilt_deg), 112, 112)


def test_fiducial_model_and_fid_file(chain):
    lm = chain["lm"]
    assert len(lm.beads) >= 12
    fid = read_model(lm.fid_path)
    pts = fiducial_points(fid)
    assert len(pts) == len(lm.beads)
    views = {int(v) for p in pts for v in p[:, 2]}
    assert 2 not in views and 39 not in views  # dark and excluded views carry no points
    # .fid points are the record's points, in IMOD's model coordinates (pixel centre at index + 0.5)
    assert np.allclose(pts[0][:, :2] - 0.5, np.array([[x, y] for _, x, y in lm.beads[0].points]), atol=1e-3)
    assert fid.units == -9 and abs(fid.pixel_size - 0.1 * lm.pixel_size_a) < 1e-6


def test_fiducial_align_geometry_and_files(chain):
    s, aligned, res = chain["s"], chain["aligned"], chain["res_a"]
    assert abs(aligned.acquisition.tilt_axis_deg + 37.0) < 0.3
    xf = transforms_of(aligned)
    good = torch.ones(len(s.tilt_deg), dtype=torch.bool)
    good[[2, 39]] = False
    assert shift_error_rms(xf, s.xf, s.tilt_deg, good) < 0.5
    assert res.metrics["residual_mean_px"] < 0.6
    assert res.metrics["residual_mean_nm"] == pytest.approx(res.metrics["residual_mean_px"] * PX_A / 10)
    # rows stay mapped to their angles; files round-trip through the project's readers
    out = chain["root"] / "outputs"
    assert torch.allclose(read_xf(out / "TS_01.xf"), xf, atol=2e-3)
    tlt = read_tilt_angles(out / "TS_01.tlt")
    assert np.allclose(tlt, [im.tilt_angle_deg for im in aligned.images], atol=0.01)
    assert np.allclose(tlt, s.tilt_deg.numpy(), atol=0.5)
    assert chain["refined"]["refined"] is True


def test_tilt_axis_refine_catches_wrong_mdoc_axis(chain, tmp_path):
    wrong = chain["coarse"].model_copy(update={"acquisition": chain["coarse"].acquisition.model_copy(
        update={"tilt_axis_deg": 53.0})})
    out, res = _run(TiltAxisRefine, TiltAxisRefineParams(), tmp_path, tilt_series=wrong, landmarks=chain["lm"])
    rec = TiltSeries.model_validate(out["tilt_series"])
    assert res.metrics["given_axis_ok"] == 0.0
    assert abs(((rec.acquisition.tilt_axis_deg + 37.0 + 90) % 180) - 90) < 0.5
    assert any("WRONG" in n for n in rec.notes)


def test_patches_step_without_beads(tmp_path):
    s = make_series(seed=12, size=192, tilt_axis_deg=85.0, step=4.0, n_beads=0, pretilt_deg=3.0, thickness_px=30.0)
    ts = _record(s, tmp_path, "TS_02", axis=86.0)
    out, res = _run(AlignPatches, AlignPatchesParams(patch_size_px=48, patches_x=5, patches_y=5), tmp_path,
                    tilt_series=ts)
    rec = TiltSeries.model_validate(out["tilt_series"])
    assert abs(rec.acquisition.tilt_axis_deg - 85.0) < 0.5
    assert shift_error_rms(transforms_of(rec), s.xf, s.tilt_deg + 3.0) < 1.0
    assert abs(res.metrics["pretilt_deg"] - 3.0) < 1.5


def test_bad_input_is_refused_clearly(chain, tmp_path):
    with pytest.raises(ParamError, match="tilt axis"):
        _run(AlignCoarse, AlignCoarseParams(tilt_axis_deg=math.nan), tmp_path, tilt_series=chain["ts"])
    # no beads at this size: the message suggests the size it sees
    s = make_series(seed=13, size=192, n_beads=0, step=10.0)
    with pytest.raises(InputError, match="no beads found at 3 nm"):
        _run(FiducialModel, FiducialModelParams(bead_diameter_nm=3.0), tmp_path,
             tilt_series=_record(s, tmp_path, "TS_03", axis=85.0))
    s = make_series(seed=14, size=192, n_beads=2, step=10.0)
    with pytest.raises(InputError, match="align-patches"):
        _run(FiducialModel, FiducialModelParams(bead_diameter_nm=8.0), tmp_path,
             tilt_series=_record(s, tmp_path, "TS_04", axis=85.0))


def test_tilt_axis_refine_corrects_flipped_tilt_sign(tmp_path):
    path = simulate_case("tiny", tmp_path / "sim", seed=5, overrides={
        "image_size_px": 256, "pixel_size_a": 5.0, "target_defocus_um": 4.0, "write_stack": True,
        "movie_format": "none", "tilt_axis_nominal_deg": -40.0})
    truth = load_truth(path).tilt_series[0]
    stack = str(session_path(path, truth.stack))
    for sign, expected in ((1, 1.0), (-1, -1.0)):
        images = [TiltImage(tilt_angle_deg=sign * v.nominal_tilt_deg, acquisition_order=v.acquisition_order,
                            image=ImageRef(path=stack, index=v.stack_section)) for v in truth.views]
        ts = TiltSeries(ts_id="TS_01", acquisition=Acquisition(pixel_size_a=5.0, tilt_axis_deg=-40.0),
                        images=images, image_shape_yx=(256, 256))
        out, res = _run(TiltAxisRefine, TiltAxisRefineParams(), tmp_path, tilt_series=ts)
        rec = TiltSeries.model_validate(out["tilt_series"])
        assert res.metrics["handedness"] == expected
        want = truth.acquisition.tilt_axis_deg + (0.0 if sign == 1 else 180.0)
        assert abs((rec.acquisition.tilt_axis_deg - want + 180) % 360 - 180) < 2.0
