"""What an export needs from a project: per tilt series, the newest TiltSeries record and its companions.

Only done jobs count. With ``job`` the tilt series are that job's ``tilt_series`` records; tomograms, motion
shift tables and picks are always the newest ones over the project (matched by tilt-series id).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

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
    # Bead tracks for the .fid: (n, 3) arrays of raw (x, y, 0-based view) per bead. TODO: fill from the
    # fiducial-model step's record once it exists (no record type for bead tracks yet).
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
    from tomoforge.steps.motion_correct import MotionShifts

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
    for j in done:
        for art in project.artifacts(j.id):
            ex = series.get(art.key)
            if ex is None:
                continue
            if art.type == "Tomogram":
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
    return [series[k] for k in sorted(series)]
