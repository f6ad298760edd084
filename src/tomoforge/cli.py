"""The ``tomoforge`` command line (typer + rich). It parses and shows; the work happens in project/ and steps/."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from tomoforge.cli_interop import export_app, import_app, workflow_import_scipion
from tomoforge.cli_util import console, parse_sets, progress_bar
from tomoforge.errors import InputError, TomoforgeError
from tomoforge.project.summary import job_summary

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="tomoforge: cryo-ET from movies to tomograms and averages.")

ProjectOpt = Annotated[Path, typer.Option("-p", "--project", help="Project folder")]
SetOpt = Annotated[list[str] | None, typer.Option("--set", help="KEY=VALUE parameter (repeatable)")]


def _step_cls(name: str):
    from tomoforge.steps.registry import STEPS

    if name not in STEPS:
        raise InputError(f"unknown step '{name}'", expected="one of " + ", ".join(sorted(STEPS)))
    return STEPS[name]


def _executor(kind: str, workers: int | None, scheduler: str | None = None, profile: Path | None = None,
              gpus: str | None = None):
    from tomoforge.execution import InlineExecutor, LocalExecutor

    def dask():
        from tomoforge.execution.dask import DaskExecutor

        return DaskExecutor(address=scheduler, n_workers=workers or 2)

    def slurm():
        from tomoforge.execution.dask import SlurmExecutor, load_site_profile

        if profile is None:
            raise InputError("the slurm executor needs a site profile", field="--profile",
                             expected="a TOML/JSON file (see README, 'Running on SLURM')")
        return SlurmExecutor(load_site_profile(profile), workers)

    def local():
        return LocalExecutor(workers, gpus=gpus.split(",") if gpus else None)

    executors = {"inline": InlineExecutor, "local": local, "dask": dask, "slurm": slurm}
    if kind not in executors:
        raise InputError(f"unknown executor '{kind}'", expected="one of " + ", ".join(executors))
    return executors[kind]()


@app.command()
def init(directory: Path) -> None:
    """Create a project folder (SQLite store and jobs/)."""
    from tomoforge.project.store import Project

    project = Project.create(directory)
    console.print(f"project ready at {project.root}")


@app.command()
def run(step: str, project: ProjectOpt,
        inputs: Annotated[list[str] | None, typer.Option("-i", "--input", help="PORT=JOB[:OUTPUT] or JOB")] = None,
        sets: SetOpt = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print a JSON summary of the outputs")] = False,
        executor: Annotated[str, typer.Option(help="inline or local")] = "inline",
        workers: Annotated[int | None, typer.Option(help="Processes for the local executor")] = None,
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
        print(json.dumps(job_summary(proj, job.id), indent=2))
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
    summary = job_summary(proj, job)
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


@app.command()
def steps(name: Annotated[str | None, typer.Argument(help="Show one step in detail")] = None) -> None:
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


workflow_app = typer.Typer(no_args_is_help=True, help="Run workflows (presets or files).")
app.add_typer(workflow_app, name="workflow")
app.add_typer(export_app, name="export")
app.add_typer(import_app, name="import")
workflow_app.command("import-scipion")(workflow_import_scipion)


@workflow_app.command("run")
def workflow_run(source: Annotated[str, typer.Argument(help="Workflow file (JSON/TOML) or preset name")],
                 project: ProjectOpt, sets: SetOpt = None,
                 until: Annotated[str | None, typer.Option(help="Stop after this node")] = None,
                 executor: Annotated[str, typer.Option(help="inline, local, dask or slurm")] = "inline",
                 workers: Annotated[int | None, typer.Option(help="Workers (local, dask, slurm)")] = None,
                 scheduler: Annotated[str | None, typer.Option(help="Dask scheduler address")] = None,
                 profile: Annotated[Path | None, typer.Option(help="SLURM site profile")] = None,
                 gpus: Annotated[str | None, typer.Option(help="local: GPUs dealt one per worker, e.g. 0,1")] = None,
                 watch: Annotated[bool, typer.Option(help="Stream: keep processing tilt series as they arrive")] = False,
                 settle: Annotated[float, typer.Option(help="--watch: seconds a tilt series must be unchanged")] = 10.0,
                 idle_timeout: Annotated[float, typer.Option(help="--watch: stop after this many idle seconds")] = 1800.0,
                 poll: Annotated[float, typer.Option(help="--watch: seconds between passes")] = 5.0) -> None:
    """Run a workflow; jobs whose params and inputs did not change are reused."""
    from tomoforge.project.store import Project
    from tomoforge.project.workflow import apply_sets, load_workflow, run_workflow, watch_workflow

    proj = Project.create(project) if not (Path(project) / "project.db").exists() else Project(project)
    wf = apply_sets(load_workflow(source), parse_sets(sets))
    ex = _executor(executor, workers, scheduler, profile, gpus)
    bars: list = []

    def progress_for(node_id: str):
        bar = progress_bar(node_id)
        bars.append(bar)
        return bar.__enter__()

    def on_node(node_id: str, event: str, job) -> None:
        if event == "done":
            bars.pop().__exit__(None, None, None)
            console.print(f"  {node_id}: job {job.id} {job.step} {job.status}")

    try:
        if watch:
            console.print(f"watching; 'tomoforge workflow stop -p {project}' or {idle_timeout:.0f} s idle ends it")
            jobs = watch_workflow(proj, wf, executor=ex, poll_s=poll, idle_timeout_s=idle_timeout, settle_s=settle,
                                  on_pass=lambda i, n: n and console.print(f"pass {i}: {n} units done"),
                                  on_error=lambda msg: console.print(f"[red]error:[/red] {msg}"))
        else:
            jobs = run_workflow(proj, wf, executor=ex, until=until, progress_for=progress_for, on_node=on_node)
    finally:
        for bar in bars:
            bar.__exit__(None, None, None)
        ex.shutdown()
    console.print(f"workflow {wf.name}: {len(jobs)} steps done in {proj.root}")


@workflow_app.command("stop")
def workflow_stop(project: ProjectOpt) -> None:
    """Tell a watching workflow (--watch) to finish after its current pass."""
    (Path(project) / "STOP").touch()
    console.print("asked the watching workflow to stop")


@workflow_app.command("presets")
def workflow_presets() -> None:
    """List the presets shipped with tomoforge."""
    from tomoforge.project.workflow import load_workflow, preset_names

    for name in preset_names():
        wf = load_workflow(name)
        console.print(f"[bold]{name}[/bold]: {wf.description}  ({' -> '.join(n.id for n in wf.nodes)})")


@app.command()
def status(project: ProjectOpt) -> None:
    """Progress of the project's jobs, for a running workflow."""
    from tomoforge.project.store import Project

    proj = Project(project)
    table = Table("job", "step", "status", "units done", "running", "failed", "last event")
    events = proj.events()
    last = {e["job"]: e for e in events}
    for j in proj.jobs():
        units = proj.units(j.id)
        count = {s: sum(u.status == s for u in units) for s in ("done", "running", "failed")}
        ev = last.get(j.id)
        table.add_row(str(j.id), j.step, j.status, f"{count['done']}/{len(units)}", str(count["running"]),
                      str(count["failed"]), f"{ev['kind']} {ev['payload'].get('key', '')}" if ev else "")
    console.print(table)


@app.command()
def web(project: ProjectOpt, host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
        port: Annotated[int, typer.Option(help="Port")] = 8000) -> None:
    """Serve the web UI for a project (project graph, step forms, viewers, live status)."""
    import uvicorn

    from tomoforge.project.store import Project
    from tomoforge.web.app import create_app

    app_ = create_app(Project(project).root)
    console.print(f"tomoforge web UI on http://{host}:{port}/")
    uvicorn.run(app_, host=host, port=port, log_level="warning")


@app.command()
def report(project: ProjectOpt,
           out: Annotated[Path | None, typer.Option("-o", "--out", help="HTML file (default PROJECT/report.html)")] = None,
           truth: Annotated[Path | None, typer.Option(help="Simulator truth.json (found automatically)")] = None) -> None:
    """Write the run report: one self-contained HTML page."""
    from tomoforge.project.store import Project
    from tomoforge.report.html import build_report

    path = build_report(Project(project), out, truth)
    console.print(f"report: {path}")


@app.command()
def demo(directory: Annotated[Path, typer.Argument(help="Where to put the session and the project")] = Path("demo_out"),
         case: Annotated[str, typer.Option(help="Simulator case")] = "hiv-small",
         seed: Annotated[int, typer.Option(help="Simulator seed")] = 1,
         preset: Annotated[str, typer.Option(help="Workflow preset")] = "default",
         workers: Annotated[int, typer.Option(help="Local worker processes (1 = inline)")] = 1) -> None:
    """Simulate a dataset, run the default workflow on it, and write the report."""
    import time

    from tomoforge.io.sim_session import simulate_case
    from tomoforge.project.store import Project
    from tomoforge.project.workflow import apply_sets, load_workflow, run_workflow
    from tomoforge.report.html import build_report

    t0 = time.perf_counter()
    session = directory / "session"
    if not (session / "truth" / "truth.json").is_file():
        with progress_bar(f"simulate {case}") as cb:
            simulate_case(case, session, seed=seed, progress=(lambda w, i, n: cb("unit_done", i, n, w)) if cb else None)
    console.print(f"simulated {case} in {session} ({time.perf_counter() - t0:.0f} s)")
    proj = Project.create(directory / "project")
    wf = apply_sets(load_workflow(preset), {"import.mdoc": str(session.resolve() / "*.mdoc")})
    ex = _executor("inline" if workers <= 1 else "local", workers)
    try:
        for node in wf.nodes:
            with progress_bar(node.id) as cb:
                jobs = run_workflow(proj, wf, executor=ex, until=node.id,
                                    progress_for=lambda _n, cb=cb: cb)
            job = jobs[node.id]
            console.print(f"  {node.id}: job {job.id} {job.step} {job.status} {_short_metrics(job.metrics)}")
    finally:
        ex.shutdown()
    path = build_report(proj)
    console.print(f"done in {time.perf_counter() - t0:.0f} s")
    console.print(f"report: {path}")


def _short_metrics(metrics: dict) -> str:
    keys = [k for k in metrics if k != "units"][:4]
    return " ".join(f"{k}={metrics[k]:.3g}" if isinstance(metrics[k], float) else f"{k}={metrics[k]}" for k in keys)


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
