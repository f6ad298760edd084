"""Scipion: set sqlite files (``SetOfCoordinates3D`` read, generic sets) and workflow JSON templates.

A Scipion set file has tables ``Properties`` (set attributes: ``self`` = set class, ``_samplingRate``,
``_boxSize``...), ``Classes`` (attribute label -> column ``cNN``) and ``Objects`` (one row per item).
Coordinates3D ``_x/_y/_z`` are pixels (at the set's sampling rate) relative to the tomogram centre;
``_eulerMatrix._matrix`` is a 4x4 transform written as a Python list literal.

Workflow templates are free-text description lines followed by a JSON array of protocol dicts with
``object.className``, ``object.id``, ``object.label`` and parameters; pointers read ``"ID.outputName"``.
"""

from __future__ import annotations

import ast
import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict

from tomoforge.errors import ParseError
from tomoforge.io._text import read_text
from tomoforge.model.coordinates import Coordinates3D, Particle

_SQLITE_MAGIC = b"SQLite format 3\x00"


@dataclass
class ScipionSet:
    set_class: str
    properties: dict[str, str]
    columns: dict[str, str]                  # attribute label -> column name
    rows: list[dict[str, object]]            # attribute label -> value (plus id/enabled)


def _connect(path: Path) -> sqlite3.Connection:
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
    except OSError as err:
        raise ParseError(f"cannot read file: {err.strerror or err}", path=path) from None
    if head != _SQLITE_MAGIC:
        raise ParseError("not an SQLite database", path=path, expected="a Scipion .sqlite file")
    try:
        con = sqlite3.connect(f"file:{path.resolve()}?mode=ro&immutable=1", uri=True)
        con.execute("PRAGMA query_only = 1")
    except sqlite3.Error as err:
        raise ParseError(f"cannot open SQLite: {err}", path=path) from None
    return con


def read_set_sqlite(path: str | Path, max_rows: int = 5_000_000) -> ScipionSet:
    """Any Scipion set file: properties, the attribute->column map and the objects by attribute label."""
    path = Path(path)
    con = _connect(path)
    try:
        props = {str(k): ("" if v is None else str(v)) for k, v in con.execute(
            "SELECT key, value FROM Properties")}
        classes = {str(lab): str(col) for lab, col in con.execute(
            "SELECT label_property, column_name FROM Classes")}
        cols = [c for c in classes.items() if c[0] != "self" and c[1].isidentifier()]
        sel = ", ".join(["id", "enabled"] + [c for _, c in cols])
        rows = []
        for rec in con.execute(f"SELECT {sel} FROM Objects ORDER BY id LIMIT {int(max_rows)}"):
            d: dict[str, object] = {"id": rec[0], "enabled": rec[1]}
            for (lab, _c), v in zip(cols, rec[2:], strict=False):
                d[lab] = v
            rows.append(d)
    except sqlite3.Error as err:
        raise ParseError(f"not a readable Scipion set ({err})", path=path,
                         expected="tables Properties, Classes, Objects") from None
    finally:
        con.close()
    if "self" not in props:
        raise ParseError("no 'self' property (set class)", path=path, field="self")
    return ScipionSet(props["self"], props, classes, rows)


@dataclass
class ScipionRun:
    """One protocol run of a Scipion project.sqlite."""

    object_id: int
    class_name: str
    label: str
    status: str | None
    params: dict[str, str | None]


def read_project_sqlite(path: str | Path) -> tuple[list[ScipionRun], int]:
    """Protocol runs (top-level objects with attributes) and the number of relations of a project.sqlite."""
    path = Path(path)
    con = _connect(path)
    try:
        top = list(con.execute("SELECT id, classname, label FROM Objects WHERE parent_id IS NULL ORDER BY id"))
        runs = []
        for oid, cls, label in top:
            params: dict[str, str | None] = {}
            for name, value in con.execute("SELECT name, value FROM Objects WHERE parent_id = ?", (oid,)):
                key = str(name or "")
                prefix = f"{oid}."
                params[key[len(prefix):] if key.startswith(prefix) else key] = None if value is None else str(value)
            if params:
                runs.append(ScipionRun(int(oid), str(cls), str(label or ""), params.get("status"), params))
        n_rel = con.execute("SELECT count(*) FROM Relations").fetchone()[0]
    except sqlite3.Error as err:
        raise ParseError(f"not a readable Scipion project ({err})", path=path,
                         expected="tables Objects, Relations") from None
    finally:
        con.close()
    return runs, int(n_rel)


@dataclass
class ScipionCoordinate:
    x_px: float
    y_px: float
    z_px: float
    tomo_id: str
    matrix: np.ndarray                      # (4, 4)
    score: float | None = None
    class_number: int | None = None
    group_id: int | None = None
    random_subset: int | None = None
    enabled: bool = True


@dataclass
class ScipionCoordinates3D:
    sampling_rate_a: float
    box_size_px: int | None
    coordinates: list[ScipionCoordinate] = field(default_factory=list)
    properties: dict[str, str] = field(default_factory=dict)


def _matrix(text, path, obj_id) -> np.ndarray:
    if text is None:
        return np.eye(4)
    try:
        m = np.array(ast.literal_eval(str(text)), dtype=np.float64)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        raise ParseError(f"object {obj_id}: bad _eulerMatrix '{str(text)[:30]}'", path=path) from None
    if m.shape != (4, 4) or not np.all(np.isfinite(m)):
        raise ParseError(f"object {obj_id}: _eulerMatrix shape {m.shape}", path=path, expected="4x4")
    return m


def _num(v, typ, path, obj_id, label):
    if v is None:
        return None
    try:
        out = typ(v)
    except (TypeError, ValueError):
        raise ParseError(f"object {obj_id}: {label} = {str(v)[:30]!r}", path=path, field=label) from None
    if isinstance(out, float) and not np.isfinite(out):
        raise ParseError(f"object {obj_id}: {label} is not finite", path=path, field=label)
    return out


def read_coordinates3d_sqlite(path: str | Path) -> ScipionCoordinates3D:
    s = read_set_sqlite(path)
    if s.set_class != "SetOfCoordinates3D":
        raise ParseError(f"set class {s.set_class}", path=path, expected="SetOfCoordinates3D")
    for lab in ("_x", "_y", "_z", "_tomoId"):
        if lab not in s.columns:
            raise ParseError(f"no {lab} attribute", path=path, field=lab)
    sr = _num(s.properties.get("_samplingRate"), float, path, "set", "_samplingRate")
    box = _num(s.properties.get("_boxSize"), int, path, "set", "_boxSize")
    out = ScipionCoordinates3D(sampling_rate_a=sr if sr else 1.0, box_size_px=box, properties=s.properties)
    for r in s.rows:
        oid = r["id"]
        xyz = [_num(r.get(a), float, path, oid, a) for a in ("_x", "_y", "_z")]
        if any(v is None for v in xyz):
            raise ParseError(f"object {oid}: missing coordinate", path=path)
        out.coordinates.append(ScipionCoordinate(
            *xyz, tomo_id=str(r.get("_tomoId")), matrix=_matrix(r.get("_eulerMatrix._matrix"), path, oid),
            score=_num(r.get("_score"), float, path, oid, "_score"),
            class_number=_num(r.get("_classNumber"), int, path, oid, "_classNumber"),
            group_id=_num(r.get("_groupId"), int, path, oid, "_groupId"),
            random_subset=_num(r.get("_randomSubset"), int, path, oid, "_randomSubset"),
            enabled=bool(r.get("enabled", 1))))
    return out


def coordinates_to_model(sc: ScipionCoordinates3D, tomogram_sizes_xyz: dict[str, tuple[int, int, int]]
                         ) -> list[Coordinates3D]:
    """tomoforge picks (Å from the (0,0,0) voxel centre): centred pixels + (N-1)/2, times the pixel size.

    Orientation: the rotation part of the Scipion matrix is taken as the particle-to-tomogram rotation."""
    import torch

    from tomoforge.core.geometry import matrix_to_euler_zyz

    by: dict[str, list[Particle]] = {}
    for c in sc.coordinates:
        if not c.enabled:
            continue
        size = tomogram_sizes_xyz[c.tomo_id]
        pos = [(v + (n - 1) / 2) * sc.sampling_rate_a for v, n in zip((c.x_px, c.y_px, c.z_px), size,
                                                                       strict=True)]
        e = matrix_to_euler_zyz(torch.as_tensor(c.matrix[:3, :3])).tolist()
        half = c.random_subset if c.random_subset in (1, 2) else None
        by.setdefault(c.tomo_id, []).append(Particle(x_a=pos[0], y_a=pos[1], z_a=pos[2], rot_deg=e[0],
                                                     tilt_deg=e[1], psi_deg=e[2], score=c.score, half_set=half))
    return [Coordinates3D(ts_id=k, particles=v, box_size_px=sc.box_size_px, pixel_size_a=sc.sampling_rate_a,
                          method="scipion-import") for k, v in by.items()]


# --------------------------------------------------------------------------------------- workflows


class ScipionProtocol(BaseModel):
    model_config = ConfigDict(extra="forbid")
    class_name: str
    object_id: str
    label: str = ""
    params: dict[str, object]


def read_workflow_template(path: str | Path) -> tuple[str, list[ScipionProtocol]]:
    """(description, protocols) from a ``.json.template`` (or plain ``.json``) workflow."""
    text = read_text(path)
    lines = text.splitlines()
    start = next((i for i, ln in enumerate(lines) if ln.lstrip().startswith("[")), None)
    if start is None:
        raise ParseError("no JSON array", path=path, expected="description lines then a JSON list of protocols")
    try:
        data = json.loads("\n".join(lines[start:]))
    except json.JSONDecodeError as err:
        raise ParseError(f"bad JSON: {err.msg}", path=path, line=start + err.lineno) from None
    except RecursionError:
        raise ParseError("JSON nested too deeply", path=path) from None
    if not isinstance(data, list):
        raise ParseError("top level is not a list", path=path, line=start + 1)
    out = []
    for k, d in enumerate(data):
        if not isinstance(d, dict) or not isinstance(d.get("object.className"), str):
            raise ParseError(f"protocol {k} has no object.className", path=path, line=start + 1,
                             field="object.className")
        out.append(ScipionProtocol(
            class_name=d["object.className"], object_id=str(d.get("object.id", k)),
            label=str(d.get("object.label") or ""),
            params={key: v for key, v in d.items() if not key.startswith("object.")}))
    return "\n".join(lines[:start]).strip(), out
