"""The executor interface: submit a function on file references, get a Future back."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Protocol

from tomoforge.steps.base import Resources


class Executor(Protocol):
    """Runs units. Implementations: inline, local process pool, Dask (LocalCluster or SLURM).

    ``pool`` names the step a unit belongs to, so a backend can give steps their own resources (SLURM).
    """

    name: str
    max_in_flight: int  # units worth submitting at once (the runner registers each as it finishes)

    def submit(self, fn: Callable[..., Any], *args: Any, resources: Resources | None = None,
               pool: str | None = None) -> Future: ...

    def shutdown(self) -> None: ...


class InlineExecutor:
    """Runs each unit at once in this process (debugging, tests, notebooks)."""

    name = "inline"
    max_in_flight = 1

    def submit(self, fn: Callable[..., Any], *args: Any, resources: Resources | None = None,
               pool: str | None = None) -> Future:
        fut: Future = Future()
        try:
            fut.set_result(fn(*args))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller through the future
            fut.set_exception(exc)
        return fut

    def shutdown(self) -> None:
        pass
