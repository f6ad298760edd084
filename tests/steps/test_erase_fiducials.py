"""``erase-fiducials`` on the simulator's tiny case: beads projected from 3D (true alignment) or detected."""

from __future__ import annotations

import pytest
import torch
from recon_case import ReconCase

from tomoforge.core.reconstruct.erase import bead_contrast, project_beads
from tomoforge.errors import InputError
from tomoforge.io.mrc import read_mrc
from tomoforge.model import Coordinates3D, Particle, TiltSeries, Tomogram
from tomoforge.model.landmarks import LandmarkBead, LandmarkModel
from tomoforge.steps.base import InputArtifact, UnitContext
from tomoforge.steps.erase_fiducials import EraseFiducials, EraseFiducialsParams


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    return ReconCase(tmp_path_factory.mktemp("erase"))


def _beads_inputs(case, root, z_shift_px=0.0):
    """Bead picks (Å from voxel 0) in a tomogram of the truth volume's shape, shifted by ``z_shift_px``."""
    d, h, w = case.volume.shape
    px = case.pixel_size_a
    parts = []
    for o in case.truth.beads:
        x, y, z = o.xyz_a
        # Specimen Z = (z_vox - (d-1)/2) - z_shift  ->  z_vox = Z + z_shift + (d-1)/2
        parts.append(Particle(x_a=x + (w - 1) / 2 * px, y_a=y + (h - 1) / 2 * px,
                              z_a=z + (z_shift_px + (d - 1) / 2) * px))
    coords = Coordinates3D(ts_id=case.truth.ts_id, particles=parts, pixel_size_a=px)
    tomo = Tomogram(ts_id=case.truth.ts_id, path="unused.mrc", pixel_size_a=px, shape_zyx=(d, h, w),
                    z_shift_px=z_shift_px)
    (root / "beads.json").write_text(coords.model_dump_json())
    (root / "tomo.json").write_text(tomo.model_dump_json())
    return {"beads": [InputArtifact(2, "beads", case.truth.ts_id, "Coordinates3D", str(root / "beads.json"))],
            "tomogram": [InputArtifact(3, "tomogram", case.truth.ts_id, "Tomogram", str(root / "tomo.json"))]}


def _run(case, tmp_path, ts, extra=None, **params):
    unit = case.unit(ts)
    unit.inputs.update(extra or {})
    p = EraseFiducialsParams(**params)
    res = EraseFiducials().run_unit(p, unit, UnitContext(job_dir=tmp_path, unit_key=unit.key))
    (art,) = res.artifacts
    return TiltSeries.model_validate_json(open(art.path).read()), res


def _stack(ts):
    """Views in record order (stacks may hold them in another order)."""
    data, _ = read_mrc(ts.images[0].image.path)
    return torch.from_numpy(data[[im.image.index for im in ts.images]].copy())


def _true_positions(case, ts):
    order = [im.acquisition_order for im in ts.images]
    views = [case.truth.views[k] for k in order]
    tilt = torch.tensor([v.tilt_deg for v in views], dtype=torch.float64)
    xf = torch.tensor([v.xf for v in views], dtype=torch.float64)
    pts = torch.tensor([o.xyz_a for o in case.truth.beads], dtype=torch.float64) / case.pixel_size_a
    pos = project_beads(pts, tilt, xf, case.shape_yx)
    return pos


def test_project_mode_erases_every_bead(case, tmp_path):
    ts = case.series(noisy=True, halves=True)
    radius = 0.5 * 2 * case.truth.beads[0].radius_a / case.pixel_size_a
    pos = _true_positions(case, ts)
    before = bead_contrast(_stack(ts), pos, radius)
    out, res = _run(case, tmp_path, ts, _beads_inputs(case, tmp_path, z_shift_px=5.0),
                    bead_diameter_a=2 * case.truth.beads[0].radius_a, mode="project")
    after = bead_contrast(_stack(out), pos, radius)
    ok = ~torch.isnan(after)
    assert int(ok.sum()) > 100
    # Isolated beads were clearly visible before (overlapping ones need not be).
    assert float(torch.nanmedian(before)) > 3.0
    assert float(after[ok].max()) < 3.0  # no bead darker than 3 local SDs in any view
    assert float(after[ok].abs().mean()) < 0.3
    assert res.metrics["beads_erased"] > 0
    assert out.images[0].even is not None and out.images[0].even.path != ts.images[0].even.path


def test_detect_mode_without_3d_positions(case, tmp_path):
    ts = case.series(noisy=True, halves=False)
    radius = case.truth.beads[0].radius_a / case.pixel_size_a
    pos = _true_positions(case, ts)
    before = bead_contrast(_stack(ts), pos, radius)
    out, _ = _run(case, tmp_path, ts, bead_diameter_a=2 * case.truth.beads[0].radius_a, mode="detect")
    after = bead_contrast(_stack(out), pos, radius)
    ok = ~torch.isnan(after) & (before > 3.0)
    frac_erased = float((after[ok] < 1.5).float().mean())
    assert frac_erased > 0.9


def test_project_mode_needs_picks(case, tmp_path):
    with pytest.raises(InputError, match="bead"):
        _run(case, tmp_path, case.series(), mode="project")


def test_project_mode_from_fiducial_align_landmarks(case, tmp_path):
    """The refined landmark model of fiducial-align (3D positions about the volume centre) drives erasing;
    the bead size comes from the model."""
    ts = case.series(noisy=True)
    px = case.pixel_size_a
    radius = case.truth.beads[0].radius_a / px
    lm = LandmarkModel(ts_id=ts.ts_id, image_shape_yx=case.shape_yx, pixel_size_a=px,
                       bead_diameter_px=2 * radius, refined=True,
                       beads=[LandmarkBead(points=[], xyz_px=tuple(c / px for c in o.xyz_a))
                              for o in case.truth.beads])
    (tmp_path / "lm.json").write_text(lm.model_dump_json())
    extra = {"landmarks": [InputArtifact(4, "landmarks", ts.ts_id, "LandmarkModel", str(tmp_path / "lm.json"))]}
    out, res = _run(case, tmp_path, ts, extra)  # mode auto -> project, diameter from the model
    pos = _true_positions(case, ts)
    after = bead_contrast(_stack(out), pos, radius)
    ok = ~torch.isnan(after)
    assert int(ok.sum()) > 100
    assert float(after[ok].max()) < 3.0
    assert any("landmark model" in line for line in res.log)
