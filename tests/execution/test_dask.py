"""The Dask backend gives the same outputs as an inline run; SLURM job scripts come from the site profile."""

import json
import sys
from pathlib import Path

import pytest

from tomoforge.errors import InputError
from tomoforge.project.store import Project
from tomoforge.project.workflow import Workflow, run_workflow

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "project"))
from steps_for_tests import registered_test_steps, workflow_outputs  # noqa: E402, F401

WF = Workflow.model_validate({"name": "t", "nodes": [
    {"id": "count", "step": "slow-count", "params": {"n_units": 6}},
    {"id": "double", "step": "doubled", "inputs": {"numbers": "count"}}]})


def test_local_cluster_matches_inline(tmp_path):
    from tomoforge.execution.dask import DaskExecutor

    inline = Project.create(tmp_path / "inline")
    ref = workflow_outputs(inline, run_workflow(inline, WF))
    proj = Project.create(tmp_path / "dask")
    ex = DaskExecutor(n_workers=2)
    try:
        jobs = run_workflow(proj, WF, executor=ex)
    finally:
        ex.shutdown()
    assert workflow_outputs(proj, jobs) == ref
    hosts = {u.host for u in proj.units(jobs["count"].id)}
    assert hosts and None not in hosts


def test_slurm_job_script_from_site_profile(tmp_path):
    from tomoforge.execution.dask import load_site_profile, slurm_cluster

    prof = tmp_path / "site.toml"
    prof.write_text("""
queue = "gpu"
account = "lab42"
job_script_prologue = ["module load cuda"]
[default]
cores = 4
memory_gb = 16
walltime = "02:00:00"
[steps.reconstruct]
cores = 8
memory_gb = 64
gpus = 1
walltime = "04:00:00"
""")
    site = load_site_profile(prof)
    script = slurm_cluster(site, "reconstruct").job_script()
    assert "#SBATCH -p gpu" in script and "#SBATCH -A lab42" in script
    assert "#SBATCH --gres=gpu:1" in script and "#SBATCH -t 04:00:00" in script
    assert "#SBATCH --cpus-per-task=8" in script and "module load cuda" in script
    assert "--resources GPU=1" in script
    default = slurm_cluster(site, "motion-correct").job_script()
    assert "#SBATCH -t 02:00:00" in default and "gres" not in default


def test_bad_site_profile(tmp_path):
    from tomoforge.execution.dask import load_site_profile

    prof = tmp_path / "site.toml"
    prof.write_text("[default]\nwalltime = 'two hours'\n")
    with pytest.raises(InputError, match="site.toml"):
        load_site_profile(prof)


def test_killed_worker_unit_reruns(tmp_path):
    """kill -9 of a Dask worker mid-unit: the unit runs again elsewhere; nothing is duplicated."""
    import os
    import signal
    import threading
    import time

    from tomoforge.execution.dask import DaskExecutor

    wf = Workflow.model_validate({"name": "t", "nodes": [
        {"id": "count", "step": "slow-count", "params": {"n_units": 6, "sleep_s": 1.0}}]})
    proj = Project.create(tmp_path / "p")
    ex = DaskExecutor(n_workers=2)
    pids = list(ex.client.run(os.getpid).values())

    def kill_one():
        time.sleep(1.5)
        os.kill(pids[0], signal.SIGKILL)

    killer = threading.Thread(target=kill_one)
    killer.start()
    try:
        jobs = run_workflow(proj, wf, executor=ex)
    finally:
        killer.join()
        ex.shutdown()
    job = jobs["count"]
    assert job.status == "done"
    arts = proj.artifacts(job.id)
    assert sorted(a.key for a in arts) == [f"u{i:02d}" for i in range(6)]
    values = {a.key: json.loads(proj.resolve(a.uri).read_text())["value"] for a in arts}
    assert values == {f"u{i:02d}": float(i * i) for i in range(6)}
