"""``tomoforge export imod|relion``, ``tomoforge import imod|relion|aretomo|warp`` and
``tomoforge workflow import-scipion``. Parsing and printing only; the work is in interop/ and steps/."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tomoforge.cli_util import console, parse_sets
from tomoforge.errors import InputError

ProjectOpt = Annotated[Path, typer.Option("-p", "--project", help="Project folder")]
OutOpt = Annotated[Path, typer.Option("-o", "--out", help="Output folder")]
JobOpt = Annotated[int | None, typer.Option("--job", help="Export this job's tilt series (default: the newest "
                                                          "of each tilt series in the project)")]
InputOpt = Annotated[list[str] | None, typer.Option("-i", "--input", help="Tilt series: JOB or "
                                                    "tilt_series=JOB[:OUTPUT] (default: the newest done job with "
                                                    "tilt series)")]
SetOpt = Annotated[list[str] | None, typer.Option("--set", help="KEY=VALUE parameter, e.g. dir=IMOD_FOLDER")]

export_app = typer.Typer(no_args_is_help=True, help="Write the project in another tool's layout.")
import_app = typer.Typer(no_args_is_help=True, help="Register another tool's alignment / CTF as a project job.")


@export_app.command("imod")
def export_imod_cmd(project: ProjectOpt, out: OutOpt, job: JobOpt = None) -> None:
    """Per tilt series DIR/<TS>/: .st, .rawtlt, .tlt, .xf, .defocus, _ctffind.txt, _rec.mrc, newst.com, tilt.com."""
    from tomoforge.interop.export_imod import export_imod
    from tomoforge.project.store import Project

    folders = export_imod(Project(project), out, job)
    for f in folders:
        console.print(f"wrote {f}")


@export_app.command("relion")
def export_relion_cmd(project: ProjectOpt, out: OutOpt, job: JobOpt = None,
                      thickness: Annotated[int | None, typer.Option(help="rlnTomoSizeZ (tilt-series pixels) when "
                                                                          "there is no tomogram")] = None) -> None:
    """RELION 5 fragment: tomograms.star, tilt_series/<TS>.star, frames/, motion STARs, particles.star."""
    from tomoforge.interop.export_relion import export_relion
    from tomoforge.project.store import Project

    files = export_relion(Project(project), out, job, thickness_px=thickness)
    for f in files:
        console.print(f"wrote {f}")
    notes = Path(out) / "EXPORT_NOTES.txt"
    if notes.is_file():
        console.print(notes.read_text().rstrip(), highlight=False)


def _default_input(proj, step_cls) -> list[str]:
    """The newest done job with a tilt_series output of TiltSeries records."""
    for job in reversed(proj.jobs()):
        if job.status == "done" and any(a.type == "TiltSeries" for a in proj.artifacts(job.id, "tilt_series")):
            return [f"tilt_series={job.id}:tilt_series"]
    raise InputError(f"no finished job with tilt series for '{step_cls.name}'", path=proj.root,
                     expected="import tilt series first, or give -i JOB")


def _run_import(step_cls, project: Path, inputs: list[str] | None, sets: list[str] | None, force: bool) -> None:
    from tomoforge.project.runner import resolve_inputs, run_step
    from tomoforge.project.store import Project

    proj = Project(project)
    links = resolve_inputs(proj, step_cls, inputs or _default_input(proj, step_cls))
    job = run_step(proj, step_cls, parse_sets(sets), links, force=force)
    console.print(f"job {job.id} {job.step}: {job.status} ({proj.job_dir(job)})")
    print(job.id)


ForceOpt = Annotated[bool, typer.Option(help="Run again even if an identical job is done")]


@import_app.command("imod")
def import_imod_cmd(project: ProjectOpt, inputs: InputOpt = None, sets: SetOpt = None, force: ForceOpt = False) -> None:
    """IMOD .xf/.tlt/.rawtlt/.defocus/tilt.com: --set dir=FOLDER [--set binning=B]."""
    from tomoforge.steps.import_external import ImportImod

    _run_import(ImportImod, project, inputs, sets, force)


@import_app.command("relion")
def import_relion_cmd(project: ProjectOpt, inputs: InputOpt = None, sets: SetOpt = None,
                      force: ForceOpt = False) -> None:
    """RELION 5 alignment and CTF: --set tomograms=PATH/tomograms.star."""
    from tomoforge.steps.import_external import ImportRelion

    _run_import(ImportRelion, project, inputs, sets, force)


@import_app.command("aretomo")
def import_aretomo_cmd(project: ProjectOpt, inputs: InputOpt = None, sets: SetOpt = None,
                       force: ForceOpt = False) -> None:
    """AreTomo .aln: --set dir=FOLDER [--set binning=B]."""
    from tomoforge.steps.import_external import ImportAretomo

    _run_import(ImportAretomo, project, inputs, sets, force)


@import_app.command("warp")
def import_warp_cmd(project: ProjectOpt, inputs: InputOpt = None, sets: SetOpt = None, force: ForceOpt = False) -> None:
    """Warp/WarpTools tilt-series XML (CTF, dose, UseTilt): --set dir=FOLDER."""
    from tomoforge.steps.import_external import ImportWarp

    _run_import(ImportWarp, project, inputs, sets, force)


def workflow_import_scipion(
        template: Annotated[Path, typer.Argument(help="Scipion workflow template (.json / .json.template)")],
        out: Annotated[Path | None, typer.Option("-o", "--out", help="Workflow file to write "
                                                                     "(default: PROJECT/workflow.json)")] = None,
        project: Annotated[Path | None, typer.Option("-p", "--project", help="Project the workflow is for")] = None,
) -> None:
    """Translate a Scipion workflow template into a tomoforge workflow file and report what did not map."""
    from tomoforge.interop.import_external import write_scipion_workflow

    if out is None:
        if project is None:
            raise InputError("say where to write the workflow", field="-o", expected="-o workflow.json or -p PROJECT")
        out = project / "workflow.json"
    path, report = write_scipion_workflow(template, out)
    print(report)
    console.print(f"wrote {path}; run it with 'tomoforge workflow run {path} -p PROJECT'")
