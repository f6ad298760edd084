"""A tiny step used to test the engine itself (not registered in the product)."""

from __future__ import annotations

import os
import time

import pytest
from pydantic import BaseModel, Field

from tomoforge.model import TiltSeries
from tomoforge.steps.base import Port, Step, StepParams, Unit, UnitContext, UnitResult


class Number(BaseModel):
    key: str
    value: float


class CountParams(StepParams):
    n_units: int = Field(4, ge=1, le=100)
    sleep_s: float = Field(0.0, ge=0, le=10)
    label: str = "a"


class SlowCount(Step):
    """Each unit sleeps, records that it ran (one marker file per execution), and writes a record."""

    name = "slow-count"
    Params = CountParams
    outputs = {"numbers": Port(Number)}

    def plan(self, params, inputs):
        return [Unit(key=f"u{i:02d}", data={"i": i}) for i in range(params.n_units)]

    def run_unit(self, params, unit: Unit, ctx: UnitContext) -> UnitResult:
        runs = ctx.job_dir / "runs"
        runs.mkdir(exist_ok=True)
        (runs / f"{unit.key}.{os.getpid()}.{time.monotonic_ns()}").touch()
        time.sleep(params.sleep_s)
        art = ctx.write_record("numbers", unit.key, Number(key=unit.key, value=unit.data["i"] ** 2))
        return UnitResult(artifacts=[art], metrics={"value": float(unit.data["i"] ** 2)})


class Doubled(Step):
    """Consumes SlowCount's numbers, one unit per key."""

    name = "doubled"
    outputs = {"numbers": Port(Number)}
    inputs = {"numbers": Port(Number)}

    def run_unit(self, params, unit: Unit, ctx: UnitContext) -> UnitResult:
        n = unit.one("numbers").load(Number)
        return UnitResult(artifacts=[ctx.write_record("numbers", unit.key, Number(key=n.key, value=2 * n.value))])


class ScanParams(StepParams):
    folder: str
    pattern: str = "*.txt"


class ScanFiles(Step):
    """One unit per file in a folder (an import-like step, for streaming tests)."""

    name = "scan-files"
    Params = ScanParams
    outputs = {"numbers": Port(Number)}

    def plan(self, params, inputs):
        from pathlib import Path

        # The file's size and mtime are part of the unit, so a rewritten file is processed again.
        return [Unit(key=p.stem, data={"path": str(p), "stat": [p.stat().st_size, p.stat().st_mtime_ns]})
                for p in sorted(Path(params.folder).glob(params.pattern))]

    def run_unit(self, params, unit: Unit, ctx: UnitContext) -> UnitResult:
        from pathlib import Path

        runs = ctx.job_dir / "runs"
        runs.mkdir(exist_ok=True)
        (runs / f"{unit.key}.{os.getpid()}.{time.monotonic_ns()}").touch()
        value = float(Path(unit.data["path"]).read_text())
        return UnitResult(artifacts=[ctx.write_record("numbers", unit.key, Number(key=unit.key, value=value))])


class CountViews(Step):
    """Consumes TiltSeries records (what import steps make), one unit per tilt series."""

    name = "count-views"
    inputs = {"tilt_series": Port(TiltSeries)}
    outputs = {"numbers": Port(Number)}

    def run_unit(self, params, unit: Unit, ctx: UnitContext) -> UnitResult:
        ts = unit.one("tilt_series").load(TiltSeries)
        runs = ctx.job_dir / "runs"
        runs.mkdir(exist_ok=True)
        (runs / f"{unit.key}.{os.getpid()}.{time.monotonic_ns()}").touch()
        return UnitResult(artifacts=[ctx.write_record("numbers", unit.key, Number(key=unit.key, value=ts.n_views))])


TEST_STEPS = [SlowCount, Doubled, ScanFiles, CountViews]


@pytest.fixture(autouse=True)
def registered_test_steps(monkeypatch):
    """Put the test steps in the step table for one test (import this fixture into a test module)."""
    from tomoforge.steps import registry

    for cls in TEST_STEPS:
        monkeypatch.setitem(registry.STEPS, cls.name, cls)


def workflow_outputs(proj, jobs) -> dict:
    """Each node's artifacts as ``{key: (checksum, record)}``, to compare two runs of a workflow."""
    import json

    return {k: {a.key: (a.checksum, json.loads(proj.resolve(a.uri).read_text())) for a in proj.artifacts(j.id)}
            for k, j in jobs.items()}
