"""The ``tomoforge`` command line (typer + rich). It parses and shows; the work happens in project/ and steps/."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from tomoforge.cli_util import console, parse_sets, progress_bar
from tomoforge.errors import InputError, TomoforgeError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="tomoforge: cryo-ET from movies to tomograms and averages.")

ProjectOpt = Annotated[Path, typer.Option("-p", "--project", help="Project folder")]
SetOpt = Annotated[Optional[list[str]], typer.Option("--set", help="KEY=VALUE parameter (repeatable)")]


def _step_cls(name: str):
    from tomoforge.steps.registry import STEPS

    if name not in STEPS:
        raise InputError(f"unknown step '{name}'", expected="one of " + ", ".join(sorted(STEPS)))
    return STEPS[name]


def _executor(kind: str, workers: int | None):
    from tomoforge.execution import InlineExecutor, LocalExecutor

    executors = {"inline": lambda: InlineExecutor(), "local": lambda: LocalExecutor(workers)}
    if kind not in executors:
        raise InputError(f"unknown executor '{kind}'", expected="inline or local")
    return executors[kind]()


@app.command()
def init(directory: Path) -> None:
    """Create a project folder (SQLite store and jobs/)."""
    from tomoforge.project.store import Project

    project = Project.create(directory)
    console.print(f"project ready at {project.root}")


@app.command()
def run(step: str, project: ProjectOpt,
        inputs: Annotated[Optional[list[str]], typer.Option("-i", "--input", help="PORT=JOB[:OUTPUT] or JOB")] = None,
        sets: SetOpt = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print a JSON summary of the outputs")] = False,
        executor: Annotated[str, typer.Option(help="inline or local")] = "inline",
        workers: Annotated[Optional[int], typer.Option(help="Processes for the local executor")] = None,
        force: Annotated[bool, typer.Option(help="Run again even if an identical job is done")] = False) -> None:
    """Run STEP on the project; re-running an unfinished identical job resumes it."""
    from tomoforge.project.runner import resolve_inputs, run_step
    from tomoforge.project.store import Project

    step_cls = _step_cls(step)
    proj = Project(project)
    in_ids = resolve_inputs(proj, step_cls, inputs or [])
    ex = _executor(executor, workers)
    try:
        with progress_bar(step, enabled=not as_json) as cb:
            job = run_step(proj, step_cls, parse_sets(sets), in_ids, executor=ex, force=force, progress=cb)
    finally:
        ex.shutdown()
    if as_json:
        print(json.dumps(_job_summary(proj, job.id), indent=2))
    else:
        console.print(f"job {job.id} {job.step}: {job.status} ({proj.job_dir(job)})")
        print(job.id)


@app.command()
def jobs(project: ProjectOpt) -> None:
    """List the project's jobs."""
    from tomoforge.project.store import Project

    proj = Project(project)
    table = Table("id", "step", "status", "units", "folder")
    for j in proj.jobs():
        units = proj.units(j.id)
        done = sum(u.status == "done" for u in units)
        table.add_row(str(j.id), j.step, j.status, f"{done}/{len(units)}", j.folder)
    console.print(table)


@app.command()
def show(job: int, project: ProjectOpt,
         as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False) -> None:
    """Show a job's params, inputs, outputs, metrics and status."""
    from tomoforge.project.store import Project

    proj = Project(project)
    summary = _job_summary(proj, job)
    if as_json:
        print(json.dumps(summary, indent=2))
        return
    console.print(f"[bold]job {summary['id']}[/bold] {summary['step']}: {summary['status']}  ({summary['folder']})")
    if summary["message"]:
        console.print(f"message: {summary['message']}")
    for title in ("params", "metrics"):
        table = Table(title=title, show_header=False)
        for k, v in summary[title].items():
            table.add_row(k, f"{v:.4g}" if isinstance(v, float) else str(v))
        console.print(table)
    for title in ("inputs", "outputs"):
        table = Table("port", "key", "type", "uri", title=title)
        for port, arts in summary[title].items():
            for a in arts:
                table.add_row(port, a["key"], a["type"], a["uri"])
        console.print(table)
    table = Table("unit", "status", "attempts", "error", title="units")
    for u in summary["units"]:
        table.add_row(u["key"], u["status"], str(u["attempts"]), u["error"] or "")
    console.print(table)


def _job_summary(proj, job_id: int) -> dict:
    j = proj.job(job_id)

    def art(a):
        return {"id": a.id, "job": a.job, "key": a.key, "type": a.type, "uri": a.uri,
                "path": str(proj.resolve(a.uri)), "meta": a.meta}

    outputs: dict[str, list] = {}
    for a in proj.artifacts(job_id):
        outputs.setdefault(a.port, []).append(art(a))
    return {
        "id": j.id, "step": j.step, "status": j.status, "folder": str(proj.job_dir(j)), "message": j.message,
        "params": proj.job_params(job_id), "metrics": j.metrics,
        "inputs": {p: [art(a) for a in arts] for p, arts in proj.job_inputs(job_id).items()},
        "outputs": outputs,
        "units": [{"key": u.key, "status": u.status, "attempts": u.attempts, "metrics": u.metrics,
                   "error": u.error} for u in proj.units(job_id)],
    }


@app.command()
def steps(name: Annotated[Optional[str], typer.Argument(help="Show one step in detail")] = None) -> None:
    """List the steps with their parameters and help."""
    from tomoforge.steps.registry import STEPS

    chosen = [_step_cls(name)] if name else [STEPS[k] for k in sorted(STEPS)]
    for cls in chosen:
        ins = ", ".join(f"{p}:{s.record.__name__}" for p, s in cls.inputs.items()) or "-"
        outs = ", ".join(f"{p}:{s.record.__name__}" for p, s in cls.outputs.items())
        table = Table("parameter", "type", "default", "help", title=f"{cls.name}  ({ins} -> {outs})",
                      title_justify="left")
        for key, f in cls.Params.model_fields.items():
            bounds = " ".join(str(m) for m in f.metadata)
            table.add_row(key, str(getattr(f.annotation, "__name__", f.annotation)), repr(f.default),
                          (f.description or "") + (f" [{bounds}]" if bounds else ""))
        console.print(table)


@app.command()
def simulate(case: str, outdir: Path,
             seed: Annotated[int, typer.Option(help="Random seed (same seed, same bytes)")] = 0,
             sets: SetOpt = None) -> None:
    """Simulate a tilt-series session with ground truth (see docs/simulator.md)."""
    import time

    from tomoforge.io.sim_session import simulate_case

    t0 = time.perf_counter()
    with progress_bar(f"simulate {case}") as cb:
        truth = simulate_case(case, outdir, seed=seed, overrides=parse_sets(sets),
                              progress=(lambda what, i, n: cb("unit_done", i, n, what)) if cb else None)
    size = sum(f.stat().st_size for f in Path(outdir).rglob("*") if f.is_file())
    console.print(f"simulated {case} in {time.perf_counter() - t0:.1f} s, {size / 1e6:.1f} MB; truth: {truth}")


def main() -> None:
    """Console entry point: user mistakes print one line and exit 2, never a traceback."""
    try:
        app()
    except TomoforgeError as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        console.print("interrupted; run the same command again to resume")
        sys.exit(130)


if __name__ == "__main__":
    main()
