import json
import sys
from pathlib import Path

import pytest

from tomoforge.errors import InputError, ParamError
from tomoforge.project.store import Project
from tomoforge.project.workflow import Workflow, apply_sets, load_workflow, preset_names, run_workflow

sys.path.insert(0, str(Path(__file__).parent))
from steps_for_tests import registered_test_steps  # noqa: E402, F401


def chain(folder: Path) -> Workflow:
    return Workflow.model_validate({
        "name": "t", "variables": {"n": 3},
        "nodes": [
            {"id": "count", "step": "slow-count", "params": {"n_units": "${n}"}},
            {"id": "double", "step": "doubled", "inputs": {"numbers": "count"}},
            {"id": "scan", "step": "scan-files", "params": {"folder": str(folder)}},
            {"id": "double2", "step": "doubled", "inputs": {"numbers": "scan.numbers"}},
        ]})


def values(proj, job):
    return {a.key: json.loads(proj.resolve(a.uri).read_text())["value"] for a in proj.artifacts(job.id)}


def test_workflow_runs_and_reruns_only_what_changed(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text("1.5")
    proj = Project.create(tmp_path / "p")
    wf = chain(tmp_path / "in")
    jobs = run_workflow(proj, wf)
    assert values(proj, jobs["double"]) == {"u00": 0.0, "u01": 2.0, "u02": 8.0}
    assert values(proj, jobs["double2"]) == {"a": 3.0}
    again = run_workflow(proj, wf)
    assert {k: j.id for k, j in again.items()} == {k: j.id for k, j in jobs.items()}
    changed = run_workflow(proj, apply_sets(wf, {"n": 2}))
    assert changed["count"].id != jobs["count"].id and changed["double"].id != jobs["double"].id
    assert changed["scan"].id == jobs["scan"].id and changed["double2"].id == jobs["double2"].id
    assert len(proj.jobs()) == 6


def test_new_files_are_picked_up_once(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    proj = Project.create(tmp_path / "p")
    wf = chain(folder)
    for i, name in enumerate("abc"):
        (folder / f"{name}.txt").write_text(str(i))
        jobs = run_workflow(proj, wf)
    assert values(proj, jobs["double2"]) == {"a": 0.0, "b": 2.0, "c": 4.0}
    runs = [f.name.split(".")[0] for f in (proj.job_dir(jobs["scan"]) / "runs").iterdir()]
    assert sorted(runs) == ["a", "b", "c"]
    (folder / "b.txt").write_text("10")
    jobs = run_workflow(proj, wf)
    assert values(proj, jobs["double2"])["b"] == 20.0


def test_until_and_bad_sets(tmp_path):
    proj = Project.create(tmp_path / "p")
    wf = chain(tmp_path)
    jobs = run_workflow(proj, wf, until="double")
    assert list(jobs) == ["count", "double"]
    with pytest.raises(ParamError, match="no step 'nope'"):
        apply_sets(wf, {"nope.x": 1})
    with pytest.raises(ParamError, match="no variable"):
        apply_sets(wf, {"zz": 1})
    with pytest.raises(ParamError, match="until"):
        run_workflow(proj, wf, until="nowhere")


def test_bad_workflow_file(tmp_path):
    bad = tmp_path / "wf.json"
    bad.write_text(json.dumps({"name": "x", "nodes": [{"id": "b", "step": "doubled", "inputs": {"numbers": "a"}}]}))
    with pytest.raises(InputError, match="before it is defined"):
        load_workflow(bad)
    with pytest.raises(InputError, match="no workflow file or preset"):
        load_workflow("no-such-preset")


def test_presets_load():
    for name in preset_names():
        assert load_workflow(name).nodes


def test_schema_in_docs_is_current():
    doc = Path(__file__).resolve().parents[2] / "docs" / "workflow.schema.json"
    assert json.loads(doc.read_text()) == Workflow.model_json_schema()
