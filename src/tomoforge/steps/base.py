"""The Step interface: typed Params, typed ports, plan() into units, run_unit().

A step never touches the database or an executor. ``plan`` turns input artifacts into units (one per tilt
series as a rule); ``run_unit`` reads files, calls ``core``, and writes outputs atomically into the job
folder. Units and results hold file references and JSON-able values only, so they travel to any worker.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from tomoforge.io.atomic import write_text_atomic


class StepParams(BaseModel):
    """Base of every step's parameters: unknown keys are refused, values are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


@dataclass(frozen=True)
class Port:
    """A typed input or output. ``record`` is the pydantic class of the JSON artifact."""

    record: type[BaseModel]
    description: str = ""
    optional: bool = False


@dataclass(frozen=True)
class Resources:
    """What one unit needs, for schedulers (Dask, SLURM)."""

    cores: int = 1
    gpus: int = 0
    mem_gb: float = 2.0
    walltime_min: int = 60


@dataclass(frozen=True)
class InputArtifact:
    """An artifact as a unit sees it: where the record file is, and what it is."""

    artifact_id: int
    port: str
    key: str
    type: str
    path: str
    meta: dict[str, Any] = field(default_factory=dict)

    def load(self, record: type[BaseModel]) -> BaseModel:
        return load_record(self.path, record)


@dataclass
class Unit:
    """One independent piece of work: a key (the tilt-series id as a rule) and its input artifacts."""

    key: str
    inputs: dict[str, list[InputArtifact]] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)

    def one(self, port: str) -> InputArtifact:
        (art,) = self.inputs[port]
        return art


@dataclass
class OutputArtifact:
    """A record file a unit wrote (already under its final name)."""

    port: str
    key: str
    path: str
    type: str
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class UnitResult:
    artifacts: list[OutputArtifact] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)


@dataclass
class UnitContext:
    """What ``run_unit`` may use: its job folder and a place to write records."""

    job_dir: Path
    unit_key: str
    log_lines: list[str] = field(default_factory=list)

    @property
    def out_dir(self) -> Path:
        d = self.job_dir / "outputs"
        d.mkdir(parents=True, exist_ok=True)
        return d

    def log(self, message: str) -> None:
        self.log_lines.append(f"[{self.unit_key}] {message}")

    def write_record(self, port: str, key: str, record: BaseModel, name: str | None = None,
                     meta: dict[str, Any] | None = None) -> OutputArtifact:
        path = self.out_dir / (name or f"{key}.{port}.json")
        write_text_atomic(path, record.model_dump_json(indent=2) + "\n")
        return OutputArtifact(port=port, key=key, path=str(path), type=type(record).__name__, meta=meta or {})


def load_record(path: str | Path, record: type[BaseModel]) -> BaseModel:
    return record.model_validate(json.loads(Path(path).read_text()))


class Step:
    """Base class of all steps. Subclasses set the class attributes and implement plan/run_unit."""

    name: ClassVar[str]
    title: ClassVar[str] = ""
    Params: ClassVar[type[StepParams]] = StepParams
    inputs: ClassVar[dict[str, Port]] = {}
    outputs: ClassVar[dict[str, Port]] = {}
    resources: ClassVar[Resources] = Resources()

    def plan(self, params: StepParams, inputs: dict[str, list[InputArtifact]]) -> list[Unit]:
        """Default: one unit per artifact key of the first required input port."""
        required = [p for p, port in self.inputs.items() if not port.optional]
        if not required:
            return [Unit(key="all", inputs=inputs)]
        first = required[0]
        units = []
        for art in inputs.get(first, []):
            unit_inputs = {first: [art]}
            for other in self.inputs:
                if other != first:
                    same = [a for a in inputs.get(other, []) if a.key == art.key]
                    unit_inputs[other] = same or [a for a in inputs.get(other, []) if a.key == "all"]
            units.append(Unit(key=art.key, inputs=unit_inputs))
        return units

    def run_unit(self, params: StepParams, unit: Unit, ctx: UnitContext) -> UnitResult:
        raise NotImplementedError


def execute_unit(step_cls: type[Step], params_json: str, unit: Unit, job_dir: str) -> UnitResult:
    """Top-level function that executors call (picklable: takes the class, never a name)."""
    step = step_cls()
    params = step_cls.Params.model_validate_json(params_json)
    ctx = UnitContext(job_dir=Path(job_dir), unit_key=unit.key)
    result = step.run_unit(params, unit, ctx)
    result.log = ctx.log_lines + result.log
    return result
