"""Scipion workflow templates as tomoforge workflow files (``tomoforge workflow import-scipion``).

``io.scipion_workflow`` maps each protocol to a step and translates its parameters; this module turns the
result into a file ``project/workflow.py`` loads: node ids, nodes ordered so every input is defined before it
is read (Scipion templates may list protocols after their consumers), and Scipion input names turned into
tomoforge port names (the registered step's ports where it exists).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from tomoforge.errors import InputError
from tomoforge.io.atomic import write_text_atomic
from tomoforge.io.scipion_workflow import WorkflowImport, import_workflow

# Scipion input attribute -> tomoforge port
PORTS: dict[str, str] = {
    "inputSetOfTiltSeries": "tilt_series", "inputTiltSeries": "tilt_series", "inputTiltSeriesM": "tilt_series",
    "inputTSMovies": "tilt_series", "inputMovies": "tilt_series", "inputMicrographs": "tilt_series",
    "inTsSet": "tilt_series", "setTMSetOfTiltSeries": "tilt_series", "inputTS": "tilt_series",
    "getTMSetOfTiltSeries": "alignment", "inputSetOfLandmarkModels": "landmarks",
    "inputSetOfCtfTomoSeries": "ctf", "inputCtfTs": "ctf",
    "inputSetTomograms": "tomograms", "inputTomograms": "tomograms", "inTomos": "tomograms",
    "inputCoordinates": "coordinates", "inReParticles": "particles", "inputSubtomos": "particles",
    "referenceVolume": "reference", "solventMask": "mask", "inputVolume": "volume", "inVolume": "volume",
}


def _to_import_imod(params: dict, notes: list[str], node_id: str) -> tuple[str, dict]:
    """Scipion's IMOD transform / CTF imports become ``import-imod`` reading the files' folder."""
    path = Path(str(params.get("path") or "."))
    out = {"dir": str(path.parent)}
    if params.get("binning") not in (None, "", 1, 1.0):
        out["binning"] = params["binning"]
    notes.append(f"{node_id}: import-imod looks for <TS>.xf/.tlt/.defocus in {out['dir']} (Scipion pattern "
                 f"'{path.name}')")
    return "import-imod", out


# steps io.scipion_workflow names that tomoforge implements under another name
RETARGET = {"import-alignment": _to_import_imod, "import-ctf": _to_import_imod}


def _snake(name: str) -> str:
    name = re.sub(r"^(input|in)(SetOf)?", "", name) or name
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _port(step: str, key: str, notes: list[str], node_id: str) -> str | None:
    """The tomoforge port for Scipion input ``key`` of ``step`` (None: the step takes no input)."""
    from tomoforge.steps.registry import STEPS

    port = PORTS.get(key, _snake(key))
    cls = STEPS.get(step)
    if cls is None:
        return port
    if port in cls.inputs:
        return port
    if not cls.inputs:
        notes.append(f"{node_id}: step '{step}' takes no input; Scipion's '{key}' link is dropped")
        return None
    if len(cls.inputs) == 1 and key not in PORTS:   # a generic name: the step's only port
        return next(iter(cls.inputs))
    # e.g. a CTF set: in tomoforge the CTF travels with the tilt series, so the link is not needed
    notes.append(f"{node_id}: Scipion input '{key}' has no matching port of '{step}' "
                 f"({', '.join(cls.inputs)}); link dropped (the data travel with the tilt series)")
    return None


def _ordered(nodes: list[dict], notes: list[str]) -> list[dict]:
    """Nodes in an order where every input comes first; a link closing a cycle is dropped with a note."""
    by_id = {n["id"]: n for n in nodes}
    out: list[dict] = []
    state: dict[str, int] = {}

    def visit(nid: str) -> None:
        state[nid] = 1
        node = by_id[nid]
        for port, refs in list(node["inputs"].items()):
            kept = []
            for ref in refs if isinstance(refs, list) else [refs]:
                src = ref.split(".")[0]
                if src in by_id and state.get(src) == 1:
                    notes.append(f"{nid}: input '{port}' from '{src}' closes a cycle; dropped")
                    continue
                if src in by_id and src not in state:
                    visit(src)
                kept.append(ref)
            if not kept:
                del node["inputs"][port]
            elif isinstance(refs, list):
                node["inputs"][port] = kept
        state[nid] = 2
        out.append(node)

    for n in nodes:
        if n["id"] not in state:
            visit(n["id"])
    return out


def scipion_to_workflow(template: str | Path, name: str | None = None) -> tuple[dict, WorkflowImport, list[str]]:
    """(workflow dict, the translation with its report, extra notes) for a Scipion template."""
    template = Path(template)
    if not template.is_file():
        raise InputError("no such Scipion template", path=template, expected="a Scipion workflow .json(.template)")
    wi = import_workflow(template)
    notes: list[str] = []
    nodes = []
    for n in wi.nodes:
        inputs: dict[str, str | list[str]] = {}
        for key, src in n.inputs.items():
            port = _port(n.step, key, notes, n.id)
            if port is None:
                continue
            if port in inputs:
                prev = inputs[port]
                inputs[port] = [*(prev if isinstance(prev, list) else [prev]), src]
            else:
                inputs[port] = src
        step, params = n.step, dict(n.params)
        if step in RETARGET:
            step, params = RETARGET[step](params, notes, n.id)
        nodes.append({"id": n.id, "step": step, "params": params, "inputs": inputs})
    nodes = _ordered(nodes, notes)
    stem = template.name.split(".json")[0]
    desc = (wi.description or stem).strip().splitlines()[0] if (wi.description or stem).strip() else stem
    wf = {"name": name or re.sub(r"[^A-Za-z0-9_-]+", "-", stem).strip("-").lower() or "scipion",
          "description": f"Imported from Scipion template {template.name}: {desc}",
          "variables": {}, "nodes": nodes}
    return wf, wi, notes


def write_scipion_workflow(template: str | Path, out: str | Path) -> tuple[Path, str]:
    """Write the workflow JSON; returns (its path, the report text)."""
    from tomoforge.project.workflow import load_workflow

    wf, wi, notes = scipion_to_workflow(template)
    out = Path(out)
    write_text_atomic(out, json.dumps(wf, indent=2, default=str) + "\n")
    load_workflow(out)  # the file must load as a tomoforge workflow
    report = wi.report()
    if notes:
        report += "\n" + "\n".join(f"  note: {n}" for n in notes)
    for n in wi.nodes:
        if n.dropped_params:
            report += f"\n  {n.id}: Scipion parameters not translated: {', '.join(n.dropped_params)}"
    return out, report
