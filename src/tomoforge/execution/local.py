"""A local process pool (spawned processes: safe with torch threads), with a GPU per worker if asked."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

from tomoforge.steps.base import Resources


def _init_worker(threads: int, counter, gpus: list[str]) -> None:
    if gpus:  # before torch touches CUDA in this process: each worker sees one device
        with counter.get_lock():
            index = counter.value
            counter.value += 1
        os.environ["CUDA_VISIBLE_DEVICES"] = gpus[index % len(gpus)]
    import torch

    torch.set_num_threads(threads)


def worker_gpu() -> str | None:
    """The GPU this worker process was given (for logs and tests)."""
    return os.environ.get("CUDA_VISIBLE_DEVICES")


class LocalExecutor:
    """Runs units in ``workers`` processes on this machine; ``gpus`` (e.g. ['0', '1']) are dealt out one per
    worker through CUDA_VISIBLE_DEVICES."""

    name = "local"

    def __init__(self, workers: int | None = None, threads_per_worker: int | None = None,
                 gpus: list[str] | None = None):
        self.workers = workers or max(1, (os.cpu_count() or 1))
        self.max_in_flight = 2 * self.workers
        threads = threads_per_worker or max(1, (os.cpu_count() or 1) // self.workers)
        ctx = multiprocessing.get_context("spawn")
        self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=ctx, initializer=_init_worker,
                                         initargs=(threads, ctx.Value("i", 0), list(gpus or [])))

    def submit(self, fn: Callable[..., Any], *args: Any, resources: Resources | None = None,
               pool: str | None = None) -> Future:
        return self._pool.submit(fn, *args)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
