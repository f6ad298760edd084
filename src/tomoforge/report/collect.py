"""Gather what the report shows from the project: records per tilt series, tomograms, timings, truth."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from tomoforge.model import TiltSeries, Tomogram
from tomoforge.project.store import ArtifactRow, JobRow, Project


@dataclass
class SeriesView:
    """Everything known about one tilt series, newest record of each kind."""

    ts_id: str
    records: list[tuple[JobRow, TiltSeries]] = field(default_factory=list)  # in job order
    tomograms: list[tuple[JobRow, Tomogram]] = field(default_factory=list)
    extras: dict[str, list[tuple[JobRow, ArtifactRow]]] = field(default_factory=dict)  # other record types

    def latest(self, predicate=lambda ts: True) -> TiltSeries | None:
        for _, ts in reversed(self.records):
            if predicate(ts):
                return ts
        return None


def load_json_record(project: Project, art: ArtifactRow, record: type[BaseModel]) -> BaseModel:
    return record.model_validate(json.loads(project.resolve(art.uri).read_text()))


def collect_series(project: Project) -> dict[str, SeriesView]:
    jobs = {j.id: j for j in project.jobs() if j.status == "done"}
    out: dict[str, SeriesView] = {}
    for job in jobs.values():
        for art in project.artifacts(job.id):
            if art.type == "TiltSeries":
                ts = load_json_record(project, art, TiltSeries)
                out.setdefault(ts.ts_id, SeriesView(ts.ts_id)).records.append((job, ts))
            elif art.type == "Tomogram":
                tomo = load_json_record(project, art, Tomogram)
                out.setdefault(tomo.ts_id, SeriesView(tomo.ts_id)).tomograms.append((job, tomo))
            else:
                out.setdefault(art.key, SeriesView(art.key)).extras.setdefault(art.type, []).append((job, art))
    return {k: v for k, v in sorted(out.items()) if v.records}


def find_truth(series: dict[str, SeriesView]) -> Path | None:
    """A simulated session keeps ``truth/truth.json`` beside (or above) its mdoc files."""
    for view in series.values():
        first = view.records[0][1]
        if first.mdoc_path:
            for folder in Path(first.mdoc_path).resolve().parents[:3]:
                cand = folder / "truth" / "truth.json"
                if cand.is_file():
                    return cand
    return None


def job_timings(project: Project) -> list[tuple[str, float]]:
    out = []
    for j in project.jobs():
        if j.started and j.finished:
            out.append((f"{j.id:03d} {j.step}", j.finished - j.started))
    return out


def metric_rows(project: Project) -> list[dict[str, Any]]:
    return [{"id": j.id, "step": j.step, "status": j.status, "metrics": j.metrics} for j in project.jobs()]
