"""The interop CLI: export imod|relion, import imod|relion|aretomo|warp, workflow import-scipion."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from tomoforge.cli_interop import export_app, import_app, workflow_import_scipion
from tomoforge.errors import InputError
from tomoforge.project.workflow import load_workflow


@pytest.fixture(scope="module")
def app():
    app = typer.Typer()
    app.add_typer(export_app, name="export")
    app.add_typer(import_app, name="import")
    wf = typer.Typer()
    wf.command("import-scipion")(workflow_import_scipion)
    app.add_typer(wf, name="workflow")
    return app


def test_export_then_import_imod(app, tiny, tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["export", "imod", "-p", str(tiny.project.root), "-o", str(tmp_path),
                              "--job", str(tiny.truth_job)])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "TS_01" / "TS_01.xf").is_file() and (tmp_path / "TS_01" / "tilt.com").is_file()
    res = runner.invoke(app, ["import", "imod", "-p", str(tiny.project.root), "-i", str(tiny.import_job),
                              "--set", f"dir={tmp_path}"])
    assert res.exit_code == 0, res.output
    job = tiny.project.job(int(res.stdout.strip().splitlines()[-1]))
    assert job.step == "import-imod" and job.status == "done"
    assert job.metrics["views_aligned"] == 21 and job.metrics["views_with_ctf"] == 21


def test_export_relion_prints_notes(app, tiny, tmp_path):
    res = CliRunner().invoke(app, ["export", "relion", "-p", str(tiny.project.root), "-o", str(tmp_path),
                                   "--job", str(tiny.truth_job)])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "tomograms.star").is_file() and (tmp_path / "tilt_series" / "TS_01.star").is_file()


def test_user_mistakes_are_input_errors(app, tmp_path, tiny):
    from tomoforge.project.store import Project

    Project.create(tmp_path / "empty")
    res = CliRunner().invoke(app, ["export", "imod", "-p", str(tmp_path / "empty"), "-o", str(tmp_path / "o")])
    assert isinstance(res.exception, InputError) and "no finished tilt series" in str(res.exception)
    res = CliRunner().invoke(app, ["import", "imod", "-p", str(tmp_path / "empty"), "--set", "dir=x"])
    assert isinstance(res.exception, InputError) and "no finished job with tilt series" in str(res.exception)
    res = CliRunner().invoke(app, ["workflow", "import-scipion", str(tmp_path / "none.json"), "-o", "w.json"])
    assert isinstance(res.exception, InputError) and "no such Scipion template" in str(res.exception)


def test_every_scipion_template_imports(app, realdata, tmp_path):
    templates = sorted((realdata / "scipion").glob("*.json.template"))
    assert len(templates) >= 6
    for k, t in enumerate(templates):
        out = tmp_path / f"wf{k}.json"
        res = CliRunner().invoke(app, ["workflow", "import-scipion", str(t), "-o", str(out)])
        assert res.exit_code == 0, (t.name, res.output)
        assert "protocols mapped" in res.stdout
        wf = load_workflow(out)
        data = json.loads(out.read_text())
        n_mapped = int(res.stdout.split()[0])
        assert len(wf.nodes) == n_mapped == len(data["nodes"])
