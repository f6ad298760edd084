"""Run a step on a project: plan units, submit them, register what they produce.

A job is identified by its step, its validated params and its input artifacts. Running the same thing again
returns the finished job, or resumes an unfinished one (after a crash or SIGKILL) by running only the units
whose rows are not 'done'.
"""

from __future__ import annotations

import socket
import time
import traceback
from collections.abc import Callable
from concurrent.futures import Future, as_completed
from dataclasses import asdict
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from tomoforge.errors import InputError, ParamError, TomoforgeError
from tomoforge.execution.base import Executor, InlineExecutor
from tomoforge.io.atomic import write_json_atomic
from tomoforge.project.store import ArtifactRow, JobRow, Project, hash_json
from tomoforge.steps.base import InputArtifact, Step, StepParams, Unit, UnitResult, execute_unit

ProgressCallback = Callable[[str, int, int, str], None]


class StepFailed(TomoforgeError):
    """Some units of a job failed for reasons other than bad input (see the job's log)."""


def validate_params(step_cls: type[Step], values: dict[str, Any] | StepParams) -> StepParams:
    """Validate user values into the step's Params; unknown keys and out-of-bounds values are refused."""
    if isinstance(values, StepParams):
        return values
    try:
        return step_cls.Params.model_validate(values)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"]) or "?"
        fields = step_cls.Params.model_fields
        if err["type"] == "extra_forbidden":
            raise ParamError(f"unknown parameter for step '{step_cls.name}'",
                             field=key, expected="one of " + ", ".join(fields)) from None
        hint = fields[key].description if key in fields else None
        raise ParamError(f"{err['msg']} (got {err.get('input')!r})", field=key,
                         expected=hint) from None


Links = dict[str, list[tuple[int, str]]]


def resolve_inputs(project: Project, step_cls: type[Step], specs: list[str]) -> Links:
    """Turn ``PORT=JOB[:OUTPUT]`` or ``JOB`` specs into ``{port: [(job, output port), ...]}``."""
    out: Links = {}
    for spec in specs:
        port, _, ref = spec.rpartition("=")
        job_s, _, output = ref.partition(":")
        if not job_s.strip().isdigit():
            raise InputError(f"bad input '{spec}'", expected="PORT=JOB[:OUTPUT] or JOB, JOB a job number")
        job = project.job(int(job_s))
        if job.status != "done":
            raise InputError(f"job {job.id} ({job.step}) is {job.status}, not done; run or resume it first")
        if port and port not in step_cls.inputs:
            raise InputError(f"step '{step_cls.name}' has no input '{port}'",
                             expected="one of " + ", ".join(step_cls.inputs))
        ports = [port] if port else list(step_cls.inputs)
        chosen_port, source_port = _match(step_cls, ports, project.artifacts(job.id), output, job)
        out.setdefault(chosen_port, []).append((job.id, source_port))
    return out


def _match(step_cls: type[Step], ports: list[str], arts: list[ArtifactRow], output: str,
           job: JobRow) -> tuple[str, str]:
    types = {a.port: a.type for a in arts}
    if output and output not in types:
        raise InputError(f"job {job.id} ({job.step}) has no output '{output}'",
                         expected="one of " + ", ".join(types))
    candidates = [output] if output else list(types)
    matches = [(p, o) for p in ports for o in candidates if types[o] == step_cls.inputs[p].record.__name__]
    same_name = [(p, o) for p, o in matches if p == o]
    if len(matches) > 1 and len(same_name) == 1:
        matches = same_name  # e.g. motion-correct's tilt_series, even, odd: 'tilt_series' feeds 'tilt_series'
    if len(matches) != 1:
        what = "no" if not matches else "more than one"
        raise InputError(f"{what} output of job {job.id} ({job.step}) matches an input of '{step_cls.name}'",
                         expected="PORT=JOB:OUTPUT to say which")
    return matches[0]


def run_step(project: Project, step_cls: type[Step], params: dict[str, Any] | StepParams,
             inputs: Links | None = None, *, executor: Executor | None = None,
             force: bool = False, retries: int = 1, progress: ProgressCallback | None = None) -> JobRow:
    """Run, resume, extend or reuse the job of ``step_cls`` with these params and input links.

    A job is identified by its step, params and the job outputs it reads. Its units come from ``plan()`` on
    the artifacts those outputs hold now: new upstream artifacts add units (streaming), changed ones redo
    their unit, and done units with unchanged inputs are never run again.
    """
    step = step_cls()
    p = validate_params(step_cls, params)
    links = {port: sorted(set(refs)) for port, refs in (inputs or {}).items() if refs}
    in_arts = _input_artifacts(project, step_cls, links)
    units = step.plan(p, in_arts)  # planning errors are the user's: nothing is created yet
    keys = [u.key for u in units]
    if len(set(keys)) != len(keys):
        raise InputError(f"step '{step_cls.name}' planned duplicate unit keys", expected="one unit per key")
    params_json = p.model_dump(mode="json")
    params_hash = hash_json(params_json)
    inputs_hash = hash_json(links)
    job = None if force else project.find_job(step_cls.name, params_hash, inputs_hash)
    signatures = {u.key: _signature(project, u) for u in units}
    if job is not None and job.status == "done" and _unchanged(project, job.id, signatures):
        return job
    if job is None:
        job = project.create_job(step_cls.name, params_json, params_hash, inputs_hash, links)
        write_json_atomic(project.job_dir(job) / "params.json",
                          {"step": step_cls.name, "params": params_json,
                           "inputs": {port: [f"{j}:{o}" for j, o in refs] for port, refs in links.items()}})
    project.claim_job(job.id)
    _remove_partial_files(project.job_dir(job))
    project.record_edges(job.id, [(a.artifact_id, port) for port, arts in in_arts.items() for a in arts])
    project.ensure_units(job.id, signatures)
    return _execute(project, step_cls, p, job, units, executor or InlineExecutor(), retries, progress)


def _signature(project: Project, unit: Unit) -> str:
    arts = {port: [(a.artifact_id, project.artifact(a.artifact_id).checksum) for a in arts]
            for port, arts in unit.inputs.items()}
    return hash_json({"inputs": arts, "data": unit.data})


def _unchanged(project: Project, job_id: int, signatures: dict[str, str]) -> bool:
    rows = {r.key: r for r in project.units(job_id)}
    return all(k in rows and rows[k].status == "done" and rows[k].signature == s for k, s in signatures.items())


def _input_artifacts(project: Project, step_cls: type[Step], links: Links) -> dict[str, list[InputArtifact]]:
    for port in links:
        if port not in step_cls.inputs:
            raise InputError(f"step '{step_cls.name}' has no input '{port}'",
                             expected="one of " + ", ".join(step_cls.inputs))
    out: dict[str, list[InputArtifact]] = {}
    for port, spec in step_cls.inputs.items():
        if not links.get(port) and not spec.optional:
            raise InputError(f"step '{step_cls.name}' needs input '{port}' ({spec.record.__name__})",
                             expected=f"-i {port}=JOB")
        arts = [a for job_id, source_port in links.get(port, []) for a in project.artifacts(job_id, source_port)]
        for a in arts:
            if a.type != spec.record.__name__:
                raise InputError(f"input '{port}' of '{step_cls.name}' must be {spec.record.__name__}, "
                                 f"artifact {a.id} of job {a.job} is {a.type}")
        out[port] = [InputArtifact(artifact_id=a.id, port=port, key=a.key, type=a.type,
                                   path=str(project.resolve(a.uri)), meta=a.meta) for a in arts]
    return out


def _execute(project: Project, step_cls: type[Step], params: StepParams, job: JobRow, units: list[Unit],
             executor: Executor, retries: int, progress: ProgressCallback | None) -> JobRow:
    job_dir = project.job_dir(job)
    status = {u.key: u.status for u in project.units(job.id)}
    todo = [u for u in units if status.get(u.key) != "done"]
    total, done = len(units), len(units) - len(todo)
    log = _JobLog(job_dir / "log.txt")
    log.write(f"{step_cls.name}: {total} units, {done} already done, running {len(todo)} "
              f"on {getattr(executor, 'name', type(executor).__name__)}")
    if progress:
        progress("start", done, total, "")
    params_json = params.model_dump_json()
    attempts = {u.key: 0 for u in todo}
    user_error: TomoforgeError | None = None
    failures: list[str] = []
    pending: dict[Future, Unit] = {}

    def submit(unit: Unit) -> None:
        project.start_unit(job.id, unit.key, socket.gethostname())
        attempts[unit.key] += 1
        pending[executor.submit(execute_unit, step_cls, params_json, unit, str(job_dir),
                                resources=step_cls.resources, pool=step_cls.name)] = unit

    # Keep at most what the executor runs at once in flight, so each finished unit is registered at once
    # (an inline executor runs a unit inside submit(): submitting all first would register nothing until
    # the end, and a kill would lose finished work).
    queue = list(todo)
    capacity = max(1, getattr(executor, "max_in_flight", 1 << 30))
    while queue or pending:
        while queue and len(pending) < capacity:
            submit(queue.pop(0))
        fut = next(as_completed(list(pending)))
        unit = pending.pop(fut)
        try:
            result: UnitResult = fut.result()
            _check_outputs(step_cls, result)
            project.complete_unit(job.id, unit.key, [asdict(a) for a in result.artifacts], result.metrics)
            log.write(*result.log, f"[{unit.key}] done {_fmt_metrics(result.metrics)}")
            done += 1
            if progress:
                progress("unit_done", done, total, unit.key)
        except TomoforgeError as exc:
            project.fail_unit(job.id, unit.key, str(exc))
            log.write(f"[{unit.key}] error: {exc}")
            user_error = user_error or exc
        except Exception as exc:  # noqa: BLE001 - a crashed unit is retried, then reported
            log.write(f"[{unit.key}] failed (attempt {attempts[unit.key]}): {exc!r}", traceback.format_exc())
            if attempts[unit.key] <= retries:
                queue.insert(0, unit)
            else:
                project.fail_unit(job.id, unit.key, repr(exc))
                failures.append(f"{unit.key}: {exc}")
    rows = project.units(job.id)
    if all(r.status == "done" for r in rows):
        metrics = _aggregate([r.metrics for r in rows])
        project.finish_job(job.id, "done", metrics)
        _write_summary(project, job.id)
        log.write(f"{step_cls.name}: done")
    else:
        message = str(user_error) if user_error else "; ".join(failures)
        project.finish_job(job.id, "failed", {}, message)
        log.write(f"{step_cls.name}: failed: {message}")
        if user_error is not None:
            raise user_error
        raise StepFailed(f"job {job.id} ({step_cls.name}) failed: {message}; see {job_dir / 'log.txt'}")
    return project.job(job.id)


def _remove_partial_files(job_dir: Path) -> None:
    """Temporary files left by a killed run (never registered) are removed before resuming."""
    for f in job_dir.rglob(".*.part*"):
        f.unlink(missing_ok=True)


def _check_outputs(step_cls: type[Step], result: UnitResult) -> None:
    for art in result.artifacts:
        spec = step_cls.outputs.get(art.port)
        if spec is None or spec.record.__name__ != art.type:
            raise RuntimeError(f"step '{step_cls.name}' produced undeclared output {art.port}:{art.type}")


def _aggregate(per_unit: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean of each numeric metric over units (the per-unit values stay in the units table)."""
    sums: dict[str, list[float]] = {}
    for m in per_unit:
        for k, v in m.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                sums.setdefault(k, []).append(float(v))
    out: dict[str, Any] = {k: sum(v) / len(v) for k, v in sums.items()}
    out["units"] = len(per_unit)
    return out


def _fmt_metrics(metrics: dict[str, Any]) -> str:
    return " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items())


def _write_summary(project: Project, job_id: int) -> None:
    job = project.job(job_id)
    outputs: dict[str, list[str]] = {}
    for a in project.artifacts(job_id):
        outputs.setdefault(a.port, []).append(a.uri)
    write_json_atomic(project.job_dir(job) / "job.json", {
        "id": job.id, "step": job.step, "status": job.status, "metrics": job.metrics,
        "inputs": {p: [a.uri for a in arts] for p, arts in project.job_inputs(job_id).items()},
        "outputs": outputs})


class _JobLog:
    def __init__(self, path: Path):
        self.path = path

    def write(self, *lines: str) -> None:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        with open(self.path, "a") as f:
            for line in lines:
                f.write(f"{stamp} {line}\n")
