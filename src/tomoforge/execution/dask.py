"""Dask executors: a scheduler address, a LocalCluster, or SLURM through dask-jobqueue.

Units carry file references only, so workers need nothing but the shared filesystem. Dask futures are
wrapped into ``concurrent.futures.Future`` so the runner treats every backend alike.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tomoforge.errors import InputError
from tomoforge.steps.base import Resources


def _wrap(dask_future) -> Future:
    fut: Future = Future()

    def done(df) -> None:
        try:
            fut.set_result(df.result())
        except BaseException as exc:  # noqa: BLE001 - handed to the runner
            fut.set_exception(exc)

    dask_future.add_done_callback(done)
    return fut


class DaskExecutor:
    """Submit units to a Dask cluster. GPUs are Dask worker resources named ``GPU``."""

    name = "dask"
    max_in_flight = 100_000  # the scheduler queues; results are registered as they arrive

    def __init__(self, client=None, *, address: str | None = None, n_workers: int = 2,
                 threads_per_worker: int = 1):
        from dask.distributed import Client, LocalCluster

        self._cluster = None
        if client is None:
            if address:
                client = Client(address)
            else:
                self._cluster = LocalCluster(n_workers=n_workers, threads_per_worker=threads_per_worker,
                                             processes=True, dashboard_address=None)
                client = Client(self._cluster)
        self.client = client

    def submit(self, fn: Callable[..., Any], *args: Any, resources: Resources | None = None,
               pool: str | None = None) -> Future:
        worker_resources = {"GPU": resources.gpus} if resources and resources.gpus else None
        return _wrap(self.client.submit(fn, *args, pure=False, resources=worker_resources))

    def shutdown(self) -> None:
        self.client.close()
        if self._cluster is not None:
            self._cluster.close()


class SlurmExecutor:
    """One dask-jobqueue SLURMCluster per resource profile, created on first use and scaled adaptively.

    Steps with a ``[steps.<name>]`` table in the site profile get their own pool of SLURM jobs; the others share
    the ``[default]`` pool. Adaptive scaling resubmits jobs whose workers died (walltime, node failure), and a
    pool that gets no worker within ``worker_start_timeout_s`` fails its units with a message instead of
    waiting for ever.
    """

    name = "slurm"
    max_in_flight = 100_000

    def __init__(self, profile: SiteProfile, max_jobs: int | None = None):
        self.profile = profile
        self.max_jobs = max_jobs or profile.max_jobs
        self._pools: dict[str, Any] = {}

    def _client(self, pool: str):
        key = pool if pool in self.profile.steps else "default"
        if key not in self._pools:
            from dask.distributed import Client

            cluster = slurm_cluster(self.profile, key)
            cluster.adapt(minimum_jobs=1, maximum_jobs=self.max_jobs)
            client = Client(cluster)
            try:
                client.wait_for_workers(1, timeout=self.profile.worker_start_timeout_s)
            except TimeoutError:
                client.close()
                cluster.close()
                raise InputError(f"no SLURM worker started within {self.profile.worker_start_timeout_s:.0f} s "
                                 f"for '{key}'; check the workers' .err logs (python, modules, shared paths)",
                                 field="worker_start_timeout_s") from None
            self._pools[key] = (cluster, client)
        return self._pools[key][1]

    def submit(self, fn: Callable[..., Any], *args: Any, resources: Resources | None = None,
               pool: str | None = None) -> Future:
        client = self._client(pool or "default")
        worker_resources = {"GPU": resources.gpus} if resources and resources.gpus else None
        return _wrap(client.submit(fn, *args, pure=False, resources=worker_resources))

    def shutdown(self) -> None:
        for cluster, client in self._pools.values():
            client.close()
            cluster.close()
        self._pools.clear()


class StepResources(BaseModel):
    """Per-step SLURM resources in a site profile."""

    model_config = ConfigDict(extra="forbid")
    cores: int = Field(1, ge=1)
    memory_gb: float = Field(4, gt=0)
    gpus: int = Field(0, ge=0)
    walltime: str = Field("01:00:00", pattern=r"^\d+:\d\d:\d\d$")


class SiteProfile(BaseModel):
    """A site profile file (TOML or JSON) describing the SLURM cluster."""

    model_config = ConfigDict(extra="forbid")
    queue: str | None = None
    account: str | None = None
    max_jobs: int = Field(4, ge=1, description="SLURM jobs (Dask workers) per pool at most")
    worker_start_timeout_s: float = Field(1800, gt=0, description="Fail if no worker of a pool starts in time")
    python: str | None = Field(None, description="Python on the nodes (default: this interpreter)")
    local_directory: str | None = None
    job_extra_directives: list[str] = Field(default_factory=list)
    job_script_prologue: list[str] = Field(default_factory=list)
    default: StepResources = Field(default_factory=StepResources)
    steps: dict[str, StepResources] = Field(default_factory=dict)

    def for_step(self, step: str) -> StepResources:
        return self.steps.get(step, self.default)


def load_site_profile(path: str | Path) -> SiteProfile:
    path = Path(path)
    try:
        text = path.read_text()
        data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
        return SiteProfile.model_validate(data)
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read site profile: {exc}".splitlines()[0], path=path,
                         expected="TOML or JSON with queue, account, default and steps.<name> resources") from None


def slurm_cluster(profile: SiteProfile, step: str):
    """A ``dask_jobqueue.SLURMCluster`` sized for ``step`` from the site profile (not started)."""
    from dask_jobqueue import SLURMCluster

    res = profile.for_step(step)
    directives = list(profile.job_extra_directives)
    if res.gpus:
        directives.append(f"--gres=gpu:{res.gpus}")
    kwargs: dict[str, Any] = dict(
        queue=profile.queue, account=profile.account, cores=res.cores, processes=1,
        memory=f"{res.memory_gb}GB", walltime=res.walltime, job_extra_directives=directives,
        job_script_prologue=profile.job_script_prologue, local_directory=profile.local_directory,
        worker_extra_args=["--resources", f"GPU={res.gpus}"] if res.gpus else [],
        scheduler_options={"dashboard_address": None})
    if profile.python:
        kwargs["python"] = profile.python
    return SLURMCluster(**{k: v for k, v in kwargs.items() if v is not None})
