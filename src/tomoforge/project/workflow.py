"""Workflows: named steps, their params and their links, run in order on a project.

A workflow is JSON or TOML (schema: ``docs/workflow.schema.json``). Each node runs one step; its inputs name
upstream nodes as ``"node"`` (the one compatible output) or ``"node.output"``. ``${name}`` in a param value is
replaced by a workflow variable, so presets expose a few top-level knobs (``--set symmetry=C6``).
Re-running reuses every job whose params and inputs did not change, so only what a change affects is redone.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tomoforge.errors import InputError, ParamError, TomoforgeError
from tomoforge.execution.base import Executor
from tomoforge.project.runner import Links, run_step
from tomoforge.project.store import JobRow, Project

_VAR = re.compile(r"\$\{(\w+)\}")


class Node(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=r"^[a-z][a-z0-9_-]*$", description="Name used in links and --set NODE.KEY=VALUE")
    step: str = Field(description="Step name (tomoforge steps)")
    params: dict[str, Any] = Field(default_factory=dict)
    inputs: dict[str, str | list[str]] = Field(default_factory=dict,
                                               description="port -> 'node' or 'node.output' (or a list)")


class Workflow(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    description: str = ""
    variables: dict[str, Any] = Field(default_factory=dict, description="Values substituted for ${name}")
    nodes: list[Node]


def preset_names() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files("tomoforge.presets").iterdir() if p.name.endswith(".json"))


def load_workflow(source: str | Path) -> Workflow:
    """Load a workflow file, or a preset shipped with the package by name."""
    path = Path(source)
    if not path.is_file():
        if str(source) not in preset_names():
            raise InputError(f"no workflow file or preset '{source}'",
                             expected="a .json/.toml file or one of " + ", ".join(preset_names()))
        path = Path(str(resources.files("tomoforge.presets") / f"{source}.json"))
    try:
        text = path.read_text()
        data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
        wf = Workflow.model_validate(data)
    except (ValueError, ValidationError) as exc:
        raise InputError(f"not a valid workflow: {str(exc).splitlines()[0]}", path=path,
                         expected="see docs/workflow.schema.json") from None
    _check_links(wf, path)
    return wf


def _check_links(wf: Workflow, path: Path) -> None:
    seen: set[str] = set()
    for node in wf.nodes:
        if node.id in seen:
            raise InputError(f"node '{node.id}' appears twice", path=path)
        for refs in node.inputs.values():
            for ref in [refs] if isinstance(refs, str) else refs:
                if ref.split(".")[0] not in seen:
                    raise InputError(f"node '{node.id}' reads '{ref}' before it is defined", path=path,
                                     expected="nodes in run order")
        seen.add(node.id)


def apply_sets(wf: Workflow, sets: dict[str, Any]) -> Workflow:
    """``NODE.KEY=VALUE`` sets a node param; ``NAME=VALUE`` sets a workflow variable."""
    wf = wf.model_copy(deep=True)
    nodes = {n.id: n for n in wf.nodes}
    for key, value in sets.items():
        node_id, dot, param = key.partition(".")
        if not dot:
            if key not in wf.variables:
                raise ParamError(f"workflow '{wf.name}' has no variable '{key}'",
                                 expected="NODE.KEY=VALUE or one of " + ", ".join(wf.variables or {"(none)": 0}))
            wf.variables[key] = value
        elif node_id not in nodes:
            raise ParamError(f"workflow '{wf.name}' has no step '{node_id}'", field=key,
                             expected="one of " + ", ".join(nodes))
        else:
            nodes[node_id].params[param] = value
    return wf


def _substitute(value: Any, variables: dict[str, Any]) -> Any:
    if isinstance(value, str):
        whole = _VAR.fullmatch(value)
        if whole:
            return variables[whole.group(1)]
        return _VAR.sub(lambda m: str(variables[m.group(1)]), value)
    if isinstance(value, list):
        return [_substitute(v, variables) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, variables) for k, v in value.items()}
    return value


NodeCallback = Callable[[str, str, JobRow | None], None]


def run_workflow(project: Project, wf: Workflow, *, executor: Executor | None = None, until: str | None = None,
                 progress_for: Callable[[str], Any] | None = None, on_node: NodeCallback | None = None,
                 retries: int = 1) -> dict[str, JobRow]:
    """Run the nodes in order (up to and including ``until``); returns the job of each node run."""
    from tomoforge.steps.registry import STEPS

    if until is not None and until not in {n.id for n in wf.nodes}:
        raise ParamError(f"workflow '{wf.name}' has no step '{until}'", field="until",
                         expected="one of " + ", ".join(n.id for n in wf.nodes))
    jobs: dict[str, JobRow] = {}
    for node in wf.nodes:
        if node.step not in STEPS:
            raise InputError(f"workflow '{wf.name}' node '{node.id}' uses unknown step '{node.step}'")
        step_cls = STEPS[node.step]
        links: Links = {}
        for port, refs in node.inputs.items():
            for ref in [refs] if isinstance(refs, str) else refs:
                links.setdefault(port, []).extend(_link(project, jobs, ref, step_cls, port))
        params = _substitute(node.params, wf.variables)
        if on_node:
            on_node(node.id, "start", None)
        cb = progress_for(node.id) if progress_for else None
        jobs[node.id] = run_step(project, step_cls, params, links, executor=executor, progress=cb, retries=retries)
        if on_node:
            on_node(node.id, "done", jobs[node.id])
        if node.id == until:
            break
    return jobs


def watch_workflow(project: Project, wf: Workflow, *, poll_s: float = 5.0, idle_timeout_s: float = 600.0,
                   settle_s: float = 10.0, executor: Executor | None = None,
                   on_pass: Callable[[int, int], None] | None = None, on_error: Callable[[str], None] | None = None,
                   retries: int = 1) -> dict[str, JobRow]:
    """Streaming: run the workflow again and again as data arrive, as Scipion's streaming does.

    Import nodes only take a tilt series once its mdoc and frames have not changed for ``settle_s``; every
    pass processes only new units. The watch ends when ``STOP`` appears in the project folder
    (``tomoforge workflow stop``) or after ``idle_timeout_s`` without new work.
    """
    import time

    wf = wf.model_copy(deep=True)
    for node in wf.nodes:
        if node.step in IMPORT_STEPS:
            node.params.setdefault("settle_s", settle_s)
    stop_file = project.root / "STOP"
    stop_file.unlink(missing_ok=True)
    last_work, passes, jobs = time.monotonic(), 0, {}
    while True:
        before = _done_units(project)
        try:
            jobs = run_workflow(project, wf, executor=executor, retries=retries)
        except TomoforgeError as exc:  # one bad tilt series must not end a session's streaming
            if on_error:
                on_error(str(exc))
        passes += 1
        new = _done_units(project) - before
        if new:
            last_work = time.monotonic()
        if on_pass:
            on_pass(passes, new)
        if stop_file.exists() or time.monotonic() - last_work > idle_timeout_s:
            stop_file.unlink(missing_ok=True)
            return jobs
        time.sleep(poll_s)


IMPORT_STEPS = ("import", "import-movies", "import-tilt-series")


def _done_units(project: Project) -> int:
    with project.reading() as con:
        return con.execute("SELECT COUNT(*) FROM units WHERE status='done'").fetchone()[0]


def _link(project: Project, jobs: dict[str, JobRow], ref: str, step_cls, port: str) -> list[tuple[int, str]]:
    node_id, _, output = ref.partition(".")
    job = jobs[node_id]
    if output:
        return [(job.id, output)]
    wanted = step_cls.inputs[port].record.__name__
    from tomoforge.steps.registry import STEPS

    outputs = [o for o, spec in STEPS[job.step].outputs.items() if spec.record.__name__ == wanted]
    if len(outputs) > 1 and port in outputs:
        outputs = [port]  # the output named like the input port (motion-correct's tilt_series, not even/odd)
    if len(outputs) != 1:
        raise InputError(f"input '{port}' of '{step_cls.name}' from node '{node_id}' is ambiguous or missing",
                         expected=f"'{node_id}.OUTPUT' with OUTPUT one of " + ", ".join(STEPS[job.step].outputs))
    return [(job.id, outputs[0])]
