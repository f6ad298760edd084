"""A small project for interoperability tests: the simulator's 'tiny' session, imported, plus a fake upstream
job whose TiltSeries records carry the simulator's TRUE alignment, tilt angles and CTF (and a tomogram and picks)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from tomoforge.core.geometry import project_points
from tomoforge.core.sim.truth import TiltSeriesTruth
from tomoforge.interop.views import view_name
from tomoforge.io.relion import RelionMotion, write_motion_star
from tomoforge.io.sim_session import load_truth, session_path, simulate_case
from tomoforge.model import Coordinates3D, CtfEstimate, ImageRef, Particle, TiltSeries, Tomogram, Transform2D
from tomoforge.project.runner import run_step
from tomoforge.project.store import Project
from tomoforge.steps.import_steps import Import

EXCLUDED_ORDER = 19  # acquisition order of the view the truth job marks excluded (a high tilt)


@dataclass
class TinyProject:
    project: Project
    import_job: int
    truth_job: int
    truth: TiltSeriesTruth
    session: Path


def add_job(project: Project, step: str, records: list[tuple[str, str, object]]) -> int:
    """A done job holding ``records`` as (port, key, pydantic record) artifacts."""
    job = project.create_job(step, {}, f"{step}-p", f"{step}-i", {})
    out = project.job_dir(job) / "outputs"
    out.mkdir(parents=True, exist_ok=True)
    project.ensure_units(job.id, {"all": "s"})
    arts = []
    for port, key, rec in records:
        path = out / f"{key}.{port}.json"
        path.write_text(rec.model_dump_json(indent=1))
        arts.append({"port": port, "key": key, "type": type(rec).__name__, "path": str(path)})
    project.complete_unit(job.id, "all", arts, {})
    project.finish_job(job.id, "done", {})
    return job.id


def truth_tilt_series(ts: TiltSeries, truth: TiltSeriesTruth, noise_free: Path) -> TiltSeries:
    """``ts`` with every view's true transform, tilt and CTF (matched by acquisition order); the noise-free
    views stand in for 'even' sums and the stack's own sections for 'odd' ones."""
    by_order = {v.acquisition_order: v for v in truth.views}
    images = []
    for im in ts.images:
        v = by_order[im.acquisition_order]
        images.append(im.model_copy(update={
            "transform": Transform2D.from_rows(v.xf), "tilt_angle_deg": v.tilt_deg,
            "nominal_tilt_angle_deg": im.tilt_angle_deg,
            "ctf": CtfEstimate(defocus_u_a=v.defocus_u_a, defocus_v_a=v.defocus_v_a,
                               astigmatism_angle_deg=v.astigmatism_angle_deg, fit_score=0.5, fit_resolution_a=20.0),
            "even": ImageRef(path=str(noise_free), index=im.acquisition_order), "odd": im.image,
            "excluded": im.acquisition_order == EXCLUDED_ORDER,
            "exclude_reason": "test" if im.acquisition_order == EXCLUDED_ORDER else None}))
    data = ts.model_dump()
    data["images"] = [i.model_dump() for i in images]
    data["acquisition"]["tilt_axis_deg"] = truth.acquisition.tilt_axis_deg
    return TiltSeries.model_validate(data)


def build_tiny_project(root: Path) -> TinyProject:
    session = root / "session"
    truth_path = simulate_case("tiny", session, seed=3, overrides={"movie_format": "none"})
    truth = load_truth(truth_path).tilt_series[0]
    project = Project.create(root / "project")
    imp = run_step(project, Import, {"mdoc": str(session / "*.mdoc")})
    art = project.artifacts(imp.id, "tilt_series")[0]
    ts = TiltSeries.model_validate(json.loads(project.resolve(art.uri).read_text()))
    aligned = truth_tilt_series(ts, truth, session_path(truth_path, truth.noise_free_stack))
    shifts = motion_record(aligned, truth, root / "motion")
    vol = session_path(truth_path, truth.volume.path)
    tomo = Tomogram(ts_id=ts.ts_id, path=str(vol), pixel_size_a=truth.volume.voxel_size_a,
                    shape_zyx=truth.volume.shape_zyx, binning=truth.volume.voxel_size_a / ts.acquisition.pixel_size_a)
    picks = Coordinates3D(ts_id=ts.ts_id, pixel_size_a=truth.volume.voxel_size_a, box_size_px=24,
                          particles=[Particle(x_a=p[0], y_a=p[1], z_a=p[2]) for p in
                                     (truth.xyz_from_voxel0_a(r) for r in truth.rings)])
    job = add_job(project, "truth-align", [("tilt_series", ts.ts_id, aligned), ("tomogram", ts.ts_id, tomo),
                                           ("coordinates", ts.ts_id, picks), ("shifts", ts.ts_id, shifts)])
    return TinyProject(project, imp.id, job, truth, session)


def motion_record(ts: TiltSeries, truth: TiltSeriesTruth, folder: Path):
    """A motion-correction shifts record with one RELION motion STAR per view (the true frame shifts)."""
    from tomoforge.model.motion import MotionShifts

    by_order = {v.acquisition_order: v for v in truth.views}
    stars, shifts = [], []
    for im in ts.in_acquisition_order():
        xy = np.array([[f.shift_x_px, f.shift_y_px] for f in by_order[im.acquisition_order].frames])
        star = folder / f"{view_name(ts, im)}.star"
        write_motion_star(star, RelionMotion({"rlnImageSizeX": "128", "rlnImageSizeY": "128"},
                                             np.arange(1, len(xy) + 1), xy))
        stars.append(str(star))
        shifts.append(xy.tolist())
    n = len(shifts[0])
    return MotionShifts(ts_id=ts.ts_id, pixel_size_a=ts.acquisition.pixel_size_a, table_path=str(folder / "t.tsv"),
                        star_paths=stars, shifts_xy_px=shifts, frames_aligned=list(range(n)),
                        frames_summed=list(range(n)))


def truth_bead_positions(truth: TiltSeriesTruth, in_field: bool = False) -> tuple[torch.Tensor, list, torch.Tensor]:
    """(beads (n, 3) px from the volume centre, views in tilt order, raw positions (v, n, 2)); ``in_field``
    keeps the beads that project inside the image at zero tilt."""
    px = truth.acquisition.pixel_size_a
    beads = torch.tensor([b.xyz_a for b in truth.beads], dtype=torch.float64) / px
    h, w = truth.acquisition.image_size_yx
    if in_field:
        beads = beads[(beads[:, 0].abs() < w / 2 - 4) & (beads[:, 1].abs() < h / 2 - 4)]
    views = truth.views_by_tilt()
    xf = torch.tensor([v.xf for v in views], dtype=torch.float64)
    tilt = torch.tensor([v.tilt_deg for v in views], dtype=torch.float64)
    return beads, views, project_points(beads, tilt, xf, (h, w))
