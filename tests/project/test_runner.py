import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tomoforge.errors import InputError, ParamError
from tomoforge.execution import LocalExecutor
from tomoforge.project.runner import resolve_inputs, run_step
from tomoforge.project.store import Project

sys.path.insert(0, str(Path(__file__).parent))
from steps_for_tests import Doubled, SlowCount  # noqa: E402

HERE = Path(__file__).parent


def _runs(job_dir: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for f in (job_dir / "runs").iterdir():
        key = f.name.split(".")[0]
        counts[key] = counts.get(key, 0) + 1
    return counts


def test_run_registers_outputs_and_reuses_done_job(tmp_path):
    proj = Project.create(tmp_path)
    job = run_step(proj, SlowCount, {"n_units": 3})
    assert job.status == "done"
    arts = proj.artifacts(job.id, "numbers")
    assert [a.key for a in arts] == ["u00", "u01", "u02"]
    assert json.loads(proj.resolve(arts[2].uri).read_text())["value"] == 4.0
    assert (proj.job_dir(job) / "params.json").is_file()
    assert job.metrics["units"] == 3 and job.metrics["value"] == pytest.approx(5 / 3)
    again = run_step(proj, SlowCount, {"n_units": 3})
    assert again.id == job.id
    assert sum(_runs(proj.job_dir(job)).values()) == 3
    assert run_step(proj, SlowCount, {"n_units": 3}, force=True).id != job.id


def test_downstream_step_gets_provenance_edges(tmp_path):
    proj = Project.create(tmp_path)
    first = run_step(proj, SlowCount, {"n_units": 2})
    inputs = resolve_inputs(proj, Doubled, [str(first.id)])
    second = run_step(proj, Doubled, {}, inputs)
    vals = [json.loads(proj.resolve(a.uri).read_text())["value"] for a in proj.artifacts(second.id)]
    assert vals == [0.0, 2.0]
    assert [a.job for a in proj.job_inputs(second.id)["numbers"]] == [first.id, first.id]


def test_bad_params_and_inputs(tmp_path):
    proj = Project.create(tmp_path)
    with pytest.raises(ParamError, match="n_unitz.*unknown parameter"):
        run_step(proj, SlowCount, {"n_unitz": 3})
    with pytest.raises(ParamError, match="n_units"):
        run_step(proj, SlowCount, {"n_units": 0})
    with pytest.raises(InputError, match="needs input 'numbers'"):
        run_step(proj, Doubled, {})
    assert proj.jobs() == []


def test_local_process_pool(tmp_path):
    proj = Project.create(tmp_path)
    ex = LocalExecutor(workers=2)
    try:
        job = run_step(proj, SlowCount, {"n_units": 4}, executor=ex)
    finally:
        ex.shutdown()
    assert job.status == "done" and len(proj.artifacts(job.id)) == 4
    assert len({f.name.split(".")[1] for f in (proj.job_dir(job) / "runs").iterdir()}) >= 1


SCRIPT = """
import sys
sys.path.insert(0, {here!r})
from steps_for_tests import SlowCount
from tomoforge.project.store import Project
from tomoforge.project.runner import run_step
run_step(Project({root!r}), SlowCount, {params!r})
"""


def _spawn(root: Path, params: dict) -> subprocess.Popen:
    code = SCRIPT.format(here=str(HERE), root=str(root), params=params)
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_resume_after_sigkill_skips_finished_units(tmp_path):
    proj = Project.create(tmp_path)
    params = {"n_units": 10, "sleep_s": 0.5}  # seconds of margin after the kill point, even on a loaded machine
    proc = _spawn(tmp_path, params)
    t0, polls = time.time(), []
    while time.time() < t0 + 60:
        jobs = proj.jobs()
        done = sum(u.status == "done" for u in proj.units(jobs[0].id)) if jobs else -1
        polls.append((round(time.time() - t0, 2), done))
        if done >= 2:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    job = proj.jobs()[0]
    units = {u.key: u.status for u in proj.units(job.id)}
    assert job.status == "running", (job.status, units, polls[-5:], len(polls))
    done_before = {k for k, s in units.items() if s == "done"}
    assert 2 <= len(done_before) < 10, units
    assert len(proj.artifacts(job.id)) == len(done_before), (units, proj.artifacts(job.id))

    resumed = run_step(proj, SlowCount, params)
    assert resumed.id == job.id and resumed.status == "done"
    runs = _runs(proj.job_dir(job))
    assert all(runs[k] == 1 for k in done_before), runs
    assert len(proj.artifacts(job.id)) == 10
    assert not list(proj.job_dir(job).rglob("*.part*"))


def test_two_writers_at_once(tmp_path):
    proj = Project.create(tmp_path)
    procs = [_spawn(tmp_path, {"n_units": 8, "label": label}) for label in ("a", "b", "c")]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()
    jobs = proj.jobs()
    assert len(jobs) == 3 and all(j.status == "done" for j in jobs)
    assert len({j.folder for j in jobs}) == 3
    assert all(len(proj.artifacts(j.id)) == 8 for j in jobs)
    con = sqlite3.connect(tmp_path / "project.db")
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
