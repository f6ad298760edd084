"""A small workflow through real SLURM (dask-jobqueue) gives the same outputs as an inline run.

Needs a running SLURM cluster: `sudo scripts/slurm-single-node.sh` starts a single-node one on loopback.
Skipped, with the reason, when `sbatch` is missing or `sinfo` shows no usable node.
"""

import shutil
import subprocess
import sys
from pathlib import Path
from shlex import quote

import pytest

from tomoforge.project.store import Project
from tomoforge.project.workflow import Workflow, run_workflow

STEPS_DIR = Path(__file__).resolve().parents[1] / "project"
sys.path.insert(0, str(STEPS_DIR))
from steps_for_tests import registered_test_steps, workflow_outputs  # noqa: E402, F401


def _slurm_unavailable() -> str | None:
    """Why SLURM cannot run the test here, or None when a node is ready."""
    if shutil.which("sbatch") is None or shutil.which("sinfo") is None:
        return "SLURM not installed (no sbatch/sinfo); run scripts/slurm-single-node.sh as root to set one up"
    try:
        res = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, timeout=5)
    except subprocess.TimeoutExpired:
        return "sinfo did not answer within 5 s (slurmctld not running?); run scripts/slurm-single-node.sh"
    states = res.stdout.split()
    if res.returncode != 0 or not any(s in ("idle", "mix") for s in states):
        why = res.stderr.strip().splitlines()[:1] or [f"node states {states}"]
        return f"no idle SLURM node ({why[0]}); run scripts/slurm-single-node.sh"
    return None


_WHY_NOT = _slurm_unavailable()
pytestmark = pytest.mark.skipif(_WHY_NOT is not None, reason=str(_WHY_NOT))


WF = Workflow.model_validate({"name": "t", "nodes": [
    {"id": "count", "step": "slow-count", "params": {"n_units": 4}},
    {"id": "double", "step": "doubled", "inputs": {"numbers": "count"}}]})


RUN_TIMEOUT_S = 60


def _run_with_deadline(proj: Project, executor, logs: Path, timeout_s: float):
    """run_workflow, failing (not hanging) when the SLURM workers die: dask-jobqueue does not resubmit
    jobs that ended, so the units would wait for a worker forever."""
    import threading

    box: dict = {}

    def target() -> None:
        try:
            box["jobs"] = run_workflow(proj, WF, executor=executor)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test thread
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        tails = "\n".join(f"--- {p.name}\n" + "\n".join(p.read_text().splitlines()[-5:])
                          for p in sorted(logs.glob("*.err")))
        pytest.fail(f"workflow on SLURM did not finish in {timeout_s} s; worker logs:\n{tails}")
    if "error" in box:
        raise box["error"]
    return box["jobs"]


def test_workflow_through_slurm_matches_inline(tmp_path):
    import os

    import dask
    import dask_jobqueue  # noqa: F401 - its defaults must be in dask.config before we override them

    from tomoforge.execution.dask import SiteProfile, SlurmExecutor

    inline = Project.create(tmp_path / "inline")
    ref = workflow_outputs(inline, run_workflow(inline, WF))

    # The workers are fresh processes started by slurmd: they get the test steps through PYTHONPATH,
    # and this interpreter (the venv's) as their python. 'doubled' gets a pool of its own.
    site = SiteProfile.model_validate({
        "max_jobs": 2, "python": sys.executable, "worker_start_timeout_s": 45,
        "job_script_prologue": [f"export PYTHONPATH={quote(str(STEPS_DIR))}${{PYTHONPATH:+:$PYTHONPATH}}"],
        "default": {"cores": 1, "memory_gb": 1, "walltime": "00:05:00"},
        "steps": {"doubled": {"cores": 1, "memory_gb": 1, "walltime": "00:04:00"}}})
    logs = tmp_path / "slurm-logs"
    # Loopback only; job logs in tmp_path rather than slurm-<id>.out in the working directory. Jobs read
    # this config when they are created, so it stays set for the whole run.
    with dask.config.set({"jobqueue.slurm.interface": "lo", "jobqueue.slurm.log-directory": str(logs)}):
        ex = SlurmExecutor(site)
        try:
            proj = Project.create(tmp_path / "slurm")
            jobs = _run_with_deadline(proj, ex, logs, RUN_TIMEOUT_S)
            assert workflow_outputs(proj, jobs) == ref
            values = {k: v["value"] for k, (_, v) in workflow_outputs(proj, jobs)["double"].items()}
            assert values == {f"u{i:02d}": 2.0 * i * i for i in range(4)}
            assert sorted(ex._pools) == ["default", "doubled"]
            for _, client in ex._pools.values():
                job_ids = set(client.run(lambda: os.environ.get("SLURM_JOB_ID")).values())
                assert None not in job_ids, "a Dask worker is not running inside a SLURM job"
        finally:
            ex.shutdown()
