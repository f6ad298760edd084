"""Small helpers the CLI shares: parsing KEY=VALUE, printing rows, a rich progress callback."""

from __future__ import annotations

import json
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from tomoforge.errors import ParamError

console = Console(stderr=True)


def parse_sets(pairs: list[str] | None) -> dict[str, Any]:
    """``['a=1', 'b=[1,2]']`` -> ``{'a': '1', 'b': [1, 2]}``; JSON lists/objects are decoded, scalars stay text
    (the step's pydantic Params coerce them, with bounds and a clear message)."""
    out: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ParamError(f"bad --set '{pair}'", expected="KEY=VALUE")
        value = value.strip()
        if value[:1] in "[{":
            try:
                out[key.strip()] = json.loads(value)
                continue
            except json.JSONDecodeError:
                pass
        out[key.strip()] = value
    return out


@contextmanager
def progress_bar(title: str, enabled: bool = True):
    """Yield a ``(event, done, total, key)`` callback drawing a rich progress bar.

    The bar appears on the first call, so errors raised before any work starts stay one clean line.
    """
    if not enabled:
        yield None
        return
    state: dict = {}

    def callback(event: str, done: int, total: int, key: str) -> None:
        if "prog" not in state:
            prog = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[key]}"), TimeElapsedColumn(), console=console,
                            transient=True)
            prog.start()
            state["prog"], state["task"] = prog, prog.add_task(title, total=total, key="")
        state["prog"].update(state["task"], completed=done, total=total, key=key)

    try:
        yield callback
    finally:
        if "prog" in state:
            state["prog"].stop()
