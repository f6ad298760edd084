"""What an export needs from a project: per tilt series, the newest TiltSeries record and its companions.

Only done jobs count. The views' images are taken from before dose filtering and CTF correction (see
_unfiltered_images); the newest LandmarkModel gives the bead tracks, renumbered to the exported views. With ``job`` the tilt series are that job's ``tilt_series`` records; tomograms, motion
shift tables and picks are always the newest ones over the project (matched by tilt-series id).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
from pydantic import BaseModel, ValidationError

from tomoforge.errors import InputError
from tomoforge.model import Coordinates3D, TiltSeries, Tomogram
from tomoforge.project.store import ArtifactRow, Project


@dataclass
class SeriesExport:
    """One tilt series and what belongs to it (newest of each kind)."""

    ts: TiltSeries
    job: int
    tomogram: Tomogram | None = None
    motion: BaseModel | None = None          # steps.motion_correct.MotionShifts
    coordinates: Coordinates3D | None = None
    even: TiltSeries | None = None
    odd: TiltSeries | None = None
    # Bead tracks for the .fid: per bead an (n, 3) array of raw full-size (x, y, 0-based view), views indexing
    # ``ts.images`` (from the newest LandmarkModel; see _fiducial_tracks).
    fiducials: list | None = None
    notes: list[str] = field(default_factory=list)


def _load(project: Project, art: ArtifactRow, record: type[BaseModel]) -> BaseModel:
    path = project.resolve(art.uri)
    try:
        return record.model_validate(json.loads(path.read_text()))
    except (OSError, ValueError, ValidationError) as err:
        raise InputError(f"artifact {art.id} ({art.type}) cannot be read: {str(err).splitlines()[0]}",
                         path=path) from None


def collect_for_export(project: Project, job: int | None = None) -> list[SeriesExport]:
    """The tilt series to export, sorted by id; InputError when there is none."""
    from tomoforge.model.motion import MotionShifts

    done = [j for j in project.jobs() if j.status == "done"]
    if job is not None:
        row = project.job(job)
        if row.status != "done":
            raise InputError(f"job {job} ({row.step}) is {row.status}, not done", field="--job")
        sources = [row]
    else:
        sources = done
    series: dict[str, SeriesExport] = {}
    for j in sources:
        for art in project.artifacts(j.id, "tilt_series"):
            if art.type == "TiltSeries":
                ts = _load(project, art, TiltSeries)
                series[ts.ts_id] = SeriesExport(ts=ts, job=j.id)
    if not series:
        where = f"job {job}" if job is not None else "the project"
        raise InputError(f"{where} has no finished tilt series to export", path=project.root,
                         expected="a done job with a 'tilt_series' output (run an import first)")
    landmarks: dict[str, tuple[int, ArtifactRow]] = {}
    for j in done:
        for art in project.artifacts(j.id):
            ex = series.get(art.key)
            if ex is None:
                continue
            if art.type == "LandmarkModel":
                landmarks[art.key] = (j.id, art)
            elif art.type == "Tomogram":
                tomo = _load(project, art, Tomogram)
                ex.tomogram = tomo.model_copy(update={"path": str(project.resolve(tomo.path))})
            elif art.type == "MotionShifts":
                ex.motion = _load(project, art, MotionShifts)
            elif art.type == "Coordinates3D":
                ex.coordinates = _load(project, art, Coordinates3D)
            elif art.type == "TiltSeries" and art.port in ("even", "odd") and j.id == ex.job:
                rec = _load(project, art, TiltSeries)
                if art.port == "even":
                    ex.even = rec
                else:
                    ex.odd = rec
    for ex in series.values():
        _unfiltered_images(project, ex)
    for key, (job_id, art) in landmarks.items():
        _fiducial_tracks(project, series[key], job_id, art)
    return [series[k] for k in sorted(series)]


def _fiducial_tracks(project: Project, ex: SeriesExport, job_id: int, art: ArtifactRow) -> None:
    """Fill ``ex.fiducials`` from a LandmarkModel, its views renumbered to ``ex.ts.images``.

    The model's views index the images of the tilt series its job read (or, failing that, wrote); views are
    matched by acquisition order, so a record with views dropped or reordered still maps right."""
    from tomoforge.model.landmarks import LandmarkModel

    lm = _load(project, art, LandmarkModel)
    source = None
    for rows in (project.job_inputs(job_id).get("tilt_series", []), project.artifacts(job_id, "tilt_series")):
        row = next((r for r in rows if r.type == "TiltSeries" and r.key == ex.ts.ts_id), None)
        if row is not None:
            source = _load(project, row, TiltSeries)
            break
    section = {im.acquisition_order: k for k, im in enumerate(ex.ts.images)}
    if source is not None:
        to_section = {v: section.get(im.acquisition_order) for v, im in enumerate(source.images)}
    elif all(v < len(ex.ts.images) for b in lm.beads for v, _, _ in b.points):
        to_section = {v: v for v in range(len(ex.ts.images))}
        ex.notes.append(f"{ex.ts.ts_id}: the fiducial model's tilt series was not found; its views are taken "
                        "as the stack's sections in order")
    else:
        ex.notes.append(f"{ex.ts.ts_id}: the fiducial model (artifact {art.id}) does not match the tilt series; "
                        "no .fid written")
        return
    if tuple(lm.image_shape_yx) != tuple(ex.ts.image_shape_yx or lm.image_shape_yx):
        ex.notes.append(f"{ex.ts.ts_id}: the fiducial model is on {lm.image_shape_yx[1]}x{lm.image_shape_yx[0]} "
                        "images, not the stack's size; no .fid written")
        return
    tracks, dropped = [], 0
    for bead in lm.beads:
        pts = [(x, y, to_section.get(v)) for v, x, y in bead.points]
        dropped += sum(p[2] is None for p in pts)
        pts = sorted((p for p in pts if p[2] is not None), key=lambda p: p[2])
        if pts:
            tracks.append(np.array(pts, dtype=np.float64))
    if dropped:
        ex.notes.append(f"{ex.ts.ts_id}: {dropped} fiducial points are on views the stack does not hold; left out")
    ex.fiducials = tracks


def _unfiltered_images(project: Project, ex: SeriesExport) -> None:
    """Point ``ex.ts``'s views at the images before dose filtering and CTF correction.

    IMOD (ctfphaseflip, the .defocus) and RELION 5 (extraction, dose weighting) apply both themselves, so they
    must get the unfiltered images; the alignment, CTF and exclusions stay those of the newest record. The
    images come from the nearest ancestor record (following each job's ``tilt_series`` input) with neither
    flag, matched by acquisition order."""
    rec, job, hops = ex.ts, ex.job, 0
    while rec.dose_filtered or rec.ctf_corrected:
        rows = project.job_inputs(job).get("tilt_series", [])
        row = next((r for r in rows if r.type == "TiltSeries" and r.key == ex.ts.ts_id), None)
        hops += 1
        if row is None or hops > 100:
            ex.notes.append(f"{ex.ts.ts_id}: no record of the images before dose filtering / CTF correction was "
                            "found; the exported images are filtered (do not filter or correct them again)")
            return
        rec, job = _load(project, row, TiltSeries), row.job
    if rec is ex.ts:
        return
    by_order = {im.acquisition_order: im for im in rec.images}
    if any(im.acquisition_order not in by_order for im in ex.ts.images):
        ex.notes.append(f"{ex.ts.ts_id}: the unfiltered record of job {job} lacks some views; the exported images "
                        "are filtered (do not filter or correct them again)")
        return
    images = [im.model_copy(update={k: getattr(by_order[im.acquisition_order], k) for k in ("image", "even", "odd")})
              for im in ex.ts.images]
    ex.ts = ex.ts.model_copy(update={"images": images, "dose_filtered": False, "ctf_corrected": False})
    ex.notes.append(f"{ex.ts.ts_id}: images are those of job {job} (before dose filtering / CTF correction); "
                    f"the alignment, CTF and exclusions are those of job {ex.job}")
