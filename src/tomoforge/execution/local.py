"""A local process pool (spawned processes: safe with torch threads)."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

from tomoforge.steps.base import Resources


def _init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


class LocalExecutor:
    """Runs units in ``workers`` processes on this machine."""

    name = "local"

    def __init__(self, workers: int | None = None, threads_per_worker: int | None = None):
        self.workers = workers or max(1, (os.cpu_count() or 1))
        self.max_in_flight = 2 * self.workers
        threads = threads_per_worker or max(1, (os.cpu_count() or 1) // self.workers)
        self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"),
                                         initializer=_init_worker, initargs=(threads,))

    def submit(self, fn: Callable[..., Any], *args: Any, resources: Resources | None = None,
               pool: str | None = None) -> Future:
        return self._pool.submit(fn, *args)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
