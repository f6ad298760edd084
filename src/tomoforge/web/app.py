"""The web UI: a FastAPI app over one project. It shows and starts; the work happens in project/ and steps/."""

from __future__ import annotations

import threading
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel

from tomoforge.errors import TomoforgeError
from tomoforge.model import TiltSeries, Tomogram
from tomoforge.project.store import Project
from tomoforge.project.summary import job_summary
from tomoforge.web.images import to_png, volume_slice


class RunRequest(BaseModel):
    step: str
    params: dict[str, Any] = {}
    inputs: list[str] = []


def create_app(project_dir: str | Path) -> FastAPI:
    project = Project(project_dir)
    app = FastAPI(title="tomoforge", version="0.1")
    runs: dict[str, dict[str, Any]] = {}

    @app.get("/", response_class=HTMLResponse)
    def index() -> str:
        return (resources.files("tomoforge.web") / "static" / "index.html").read_text()

    @app.get("/api/steps")
    def steps() -> list[dict[str, Any]]:
        from tomoforge.steps.registry import STEPS

        return [{"name": c.name, "title": c.title, "params": c.Params.model_json_schema(),
                 "inputs": {p: s.record.__name__ for p, s in c.inputs.items()},
                 "outputs": {p: s.record.__name__ for p, s in c.outputs.items()}} for c in STEPS.values()]

    @app.get("/api/jobs")
    def jobs() -> list[dict[str, Any]]:
        out = []
        for j in project.jobs():
            units = project.units(j.id)
            out.append({"id": j.id, "step": j.step, "status": j.status, "folder": j.folder,
                        "units_done": sum(u.status == "done" for u in units), "units": len(units),
                        "sources": sorted({sj for refs in project.links(j.id).values() for sj, _ in refs})})
        return out

    @app.get("/api/jobs/{job_id}")
    def job(job_id: int) -> dict[str, Any]:
        try:
            return job_summary(project, job_id)
        except TomoforgeError as exc:
            raise HTTPException(404, str(exc)) from None

    @app.get("/api/events")
    def events(since: int = 0) -> list[dict[str, Any]]:
        return project.events(since_id=since)

    @app.get("/api/graph.svg")
    def graph() -> Response:
        from tomoforge.report.provenance import provenance_svg

        return Response(provenance_svg(project), media_type="image/svg+xml")

    def _record(artifact_id: int, record):
        try:
            a = project.artifact(artifact_id)
        except TomoforgeError:
            raise HTTPException(404, f"no artifact {artifact_id}") from None
        if a.type != record.__name__:
            raise HTTPException(404, f"artifact {artifact_id} is not a {record.__name__}")
        return record.model_validate_json(project.resolve(a.uri).read_text())

    @app.get("/api/tilt-series/{artifact_id}")
    def tilt_series(artifact_id: int) -> dict[str, Any]:
        return _record(artifact_id, TiltSeries).model_dump(mode="json")

    @app.get("/api/tilt-series/{artifact_id}/view/{index}.png")
    def view_png(artifact_id: int, index: int) -> Response:
        from tomoforge.io.mrc import read_section

        ts = _record(artifact_id, TiltSeries)
        if not 0 <= index < ts.n_views or ts.images[index].image is None:
            raise HTTPException(404, "no image for this view")
        ref = ts.images[index].image
        return Response(to_png(read_section(ref.path, ref.index)), media_type="image/png")

    @app.get("/api/tomogram/{artifact_id}/slice.png")
    def tomogram_slice(artifact_id: int, axis: str = "z", index: int | None = None) -> Response:
        if axis not in ("x", "y", "z"):
            raise HTTPException(400, "axis must be x, y or z")
        tomo = _record(artifact_id, Tomogram)
        return Response(to_png(volume_slice(tomo.path, axis, index)), media_type="image/png")

    @app.post("/api/run")
    def run(req: RunRequest) -> dict[str, Any]:
        """Start a step in the background; poll /api/events or /api/runs/{id} for its progress."""
        from tomoforge.project.runner import resolve_inputs, run_step, validate_params
        from tomoforge.steps.registry import STEPS

        if req.step not in STEPS:
            raise HTTPException(400, f"unknown step '{req.step}'")
        step_cls = STEPS[req.step]
        try:
            params = validate_params(step_cls, req.params)
            links = resolve_inputs(project, step_cls, req.inputs)
        except TomoforgeError as exc:
            raise HTTPException(400, str(exc)) from None
        run_id = str(len(runs) + 1)
        runs[run_id] = {"status": "running", "job": None, "error": None}

        def work() -> None:
            try:
                runs[run_id]["job"] = run_step(project, step_cls, params, links).id
                runs[run_id]["status"] = "done"
            except Exception as exc:  # noqa: BLE001 - shown in the UI
                runs[run_id].update(status="failed", error=str(exc))

        threading.Thread(target=work, daemon=True).start()
        return {"run": run_id}

    @app.get("/api/runs/{run_id}")
    def run_status(run_id: str) -> dict[str, Any]:
        if run_id not in runs:
            raise HTTPException(404, "no such run")
        return runs[run_id]

    return app
