"""kill -9 of a running workflow process: the rerun completes, with the same outputs and nothing duplicated."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tomoforge.project.store import Project
from tomoforge.project.workflow import Workflow, run_workflow

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from steps_for_tests import registered_test_steps  # noqa: E402, F401

WF = {"name": "k", "nodes": [
    {"id": "count", "step": "slow-count", "params": {"n_units": 4}},
    {"id": "slow", "step": "slow-count", "params": {"n_units": 10, "sleep_s": 0.4, "label": "b"}},
    {"id": "double", "step": "doubled", "inputs": {"numbers": "slow"}}]}

SCRIPT = """
import sys
sys.path.insert(0, {here!r})
from steps_for_tests import TEST_STEPS
from tomoforge.steps import registry
for cls in TEST_STEPS:
    registry.STEPS[cls.name] = cls
from tomoforge.project.store import Project
from tomoforge.project.workflow import Workflow, run_workflow
run_workflow(Project({root!r}), Workflow.model_validate({wf!r}))
"""


def _outputs(proj: Project) -> dict:
    return {(j.step, json.dumps(proj.job_params(j.id), sort_keys=True), a.port, a.key): a.checksum
            for j in proj.jobs() for a in proj.artifacts(j.id)}


def test_kill_9_mid_workflow_then_rerun(tmp_path):
    ref = Project.create(tmp_path / "ref")
    run_workflow(ref, Workflow.model_validate(WF))
    proj = Project.create(tmp_path / "p")
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT.format(here=str(HERE), root=str(proj.root), wf=WF)])
    t0 = time.time()
    while time.time() < t0 + 60:  # kill once the second node is part way through
        jobs = proj.jobs()
        if len(jobs) >= 2 and sum(u.status == "done" for u in proj.units(jobs[1].id)) >= 3:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert [j.status for j in proj.jobs()] == ["done", "running"]

    run_workflow(proj, Workflow.model_validate(WF))
    assert [j.status for j in proj.jobs()] == ["done", "done", "done"]  # no duplicate jobs
    assert _outputs(proj) == _outputs(ref)  # identical outputs, one artifact per (job, port, key)
    runs = [f.name.split(".")[0] for f in (proj.job_dir(proj.jobs()[0]) / "runs").iterdir()]
    assert sorted(runs) == [f"u{i:02d}" for i in range(4)]  # the finished node was not redone
