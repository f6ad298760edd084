"""A project holding the simulator's ``tiny`` case, imported, shared by the preprocessing step tests."""

from __future__ import annotations

import json
from pathlib import Path

from tomoforge.io.sim_session import load_truth, simulate_case
from tomoforge.model import TiltSeries
from tomoforge.project.runner import resolve_inputs, run_step
from tomoforge.project.store import Project
from tomoforge.steps.import_steps import ImportMovies


class SimProject:
    def __init__(self, root: Path, seed: int = 0, overrides=None):
        self.session = root / "session"
        self.truth_path = simulate_case("tiny", self.session, seed=seed, overrides=overrides)
        self.truth = load_truth(self.truth_path)
        self.project = Project.create(root / "project")
        self.imported = run_step(self.project, ImportMovies,
                                 {"mdoc": str(self.session / "*.mdoc"), "gain": str(self.session / "gain_ref.mrc")})

    def run(self, step_cls, params: dict, *sources: int, specs: list[str] | None = None):
        inputs = resolve_inputs(self.project, step_cls, specs or [str(j) for j in sources])
        return run_step(self.project, step_cls, params, inputs)

    def records(self, job_id: int, port: str = "tilt_series") -> dict[str, TiltSeries]:
        return {a.key: TiltSeries.model_validate(json.loads(self.project.resolve(a.uri).read_text()))
                for a in self.project.artifacts(job_id, port)}

    def raw(self, job_id: int, port: str) -> list[dict]:
        return [json.loads(self.project.resolve(a.uri).read_text()) for a in self.project.artifacts(job_id, port)]
