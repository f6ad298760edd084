"""``reconstruct`` on the simulator's tiny case with the true alignment: geometry, halves, bad input."""

from __future__ import annotations

import mrcfile
import pytest
import torch
from recon_case import ReconCase, sphere_peak
from tests.core.reconstruct.phantom import corr, lowpass, wedge_limit

from tomoforge.errors import InputError, ParamError
from tomoforge.model import Tomogram
from tomoforge.steps.base import UnitContext
from tomoforge.steps.reconstruct import Reconstruct, ReconstructParams


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    return ReconCase(tmp_path_factory.mktemp("recon"))


def _run(case, tmp_path, ts, **params):
    p = ReconstructParams(**params)
    step = Reconstruct()
    units = step.plan(p, case.unit(ts).inputs)
    ctx = UnitContext(job_dir=tmp_path, unit_key=units[0].key)
    res = step.run_unit(p, units[0], ctx)
    (art,) = res.artifacts
    return Tomogram.model_validate_json(open(art.path).read()), res


def _read(path):
    with mrcfile.open(path) as m:
        return torch.from_numpy(m.data.copy()), float(m.voxel_size.x)


def test_true_alignment_geometry_and_beads(case, tmp_path):
    d = case.volume.shape[0]
    tomo, res = _run(case, tmp_path, case.series(), thickness_px=d)
    vol, vox = _read(tomo.path)
    assert vox == pytest.approx(case.pixel_size_a)
    assert tuple(vol.shape) == tuple(case.volume.shape) == tomo.shape_zyx
    truth = -case.volume  # dense is dark in the images, so in the tomogram
    c = corr(lowpass(vol, 0.15), lowpass(wedge_limit(truth, 60), 0.15))
    assert c >= 0.85
    assert corr(lowpass(vol, 0.15), lowpass(truth, 0.15)) >= 0.7  # bounded by the +-60 deg wedge
    assert corr(lowpass(vol, 0.15), lowpass(truth.flip(0), 0.15)) < 0.2  # handedness
    radius = case.truth.beads[0].radius_a / case.pixel_size_a
    errs = []
    for x, y, z in case.bead_voxels(case.pixel_size_a, vol.shape):
        if min(x, y, z) < 6 or x > vol.shape[2] - 7 or y > vol.shape[1] - 7 or z > vol.shape[0] - 7:
            continue
        fx, fy, fz = sphere_peak(-vol, radius, (x, y, z))
        errs.append(((fx - x) ** 2 + (fy - y) ** 2 + (fz - z) ** 2) ** 0.5)
    assert len(errs) >= 5
    assert max(errs) < 1.0  # beads at their true 3D positions within a voxel


def test_binning_halves_and_excluded_views(case, tmp_path):
    ts = case.series(halves=True, exclude_orders=(20,))
    tomo, res = _run(case, tmp_path, ts, binning=3, thickness_px=30, px_units="binned", method="sirt-like")
    assert any("does not divide" in line for line in res.log)
    vol, vox = _read(tomo.path)
    assert vox == pytest.approx(3 * case.pixel_size_a)
    assert tuple(vol.shape) == (30, 42, 42)
    h1, _ = _read(tomo.half1_path)
    h2, _ = _read(tomo.half2_path)
    assert res.metrics["views_used"] == len(case.truth.views) - 1
    assert corr(lowpass(h1, 0.2), lowpass(h2, 0.2)) > 0.8
    assert corr(lowpass(h1, 0.2), lowpass(vol, 0.2)) > 0.85


def test_sirt_method_writes_a_tomogram(case, tmp_path):
    tomo, _ = _run(case, tmp_path, case.series(), binning=2, thickness_px=88, method="sirt", sirt_iterations=4)
    vol, _ = _read(tomo.path)
    assert tuple(vol.shape) == (44, 64, 64)
    ref = -torch.nn.functional.avg_pool3d(case.volume[None, None], 2)[0, 0]
    assert corr(lowpass(vol, 0.15), lowpass(wedge_limit(ref, 60), 0.15)) > 0.75


def test_bad_input_is_refused_clearly(case, tmp_path):
    with pytest.raises(ParamError, match="thickness"):
        _run(case, tmp_path, case.series(), thickness_px=0)
    with pytest.raises(InputError, match="alignment"):
        _run(case, tmp_path, case.series(aligned=False))
