"""copick pick JSON (with provenance: user, session, run, object) and neuroglancer state JSON.

A copick picks file: ``{"pickable_object_name", "user_id", "session_id", "run_name", "voxel_spacing",
"unit": "angstrom", "points": [{"location": {"x","y","z"} (Å), "transformation_": 4x4, "instance_id",
"score"}], "trust_orientation"}``. Locations are Å from the centre of voxel (0,0,0), like tomoforge's
:class:`Particle`; the rotation part of ``transformation_`` is the ZYZ rotation particle -> tomogram.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from tomoforge.core.geometry import euler_zyz_to_matrix, matrix_to_euler_zyz
from tomoforge.errors import ParseError
from tomoforge.io._text import read_text
from tomoforge.io.atomic import write_json_atomic
from tomoforge.model.coordinates import Coordinates3D, Particle


def picks_to_json(coords: Coordinates3D, object_name: str, *, voxel_spacing_a: float | None = None) -> dict:
    pts = []
    for k, p in enumerate(coords.particles):
        m = euler_zyz_to_matrix(p.rot_deg, p.tilt_deg, p.psi_deg).tolist()
        t = [row + [0.0] for row in m] + [[0.0, 0.0, 0.0, 1.0]]
        pts.append({"location": {"x": p.x_a, "y": p.y_a, "z": p.z_a}, "transformation_": t,
                    "instance_id": k, "score": 1.0 if p.score is None else p.score})
    return {"pickable_object_name": object_name, "user_id": coords.user_id, "session_id": coords.session_id,
            "run_name": coords.ts_id, "voxel_spacing": voxel_spacing_a, "unit": "angstrom", "points": pts,
            "trust_orientation": True}


def write_copick_picks(path: str | Path, coords: Coordinates3D, object_name: str, **kw) -> Path:
    return write_json_atomic(path, picks_to_json(coords, object_name, **kw))


def read_copick_picks(path: str | Path, *, pixel_size_a: float | None = None) -> tuple[str, Coordinates3D]:
    """(object name, picks). ``pixel_size_a`` defaults to the file's voxel_spacing (or 1)."""
    text = read_text(path)
    try:
        d = json.loads(text)
    except json.JSONDecodeError as err:
        raise ParseError(f"bad JSON: {err.msg}", path=path, line=err.lineno) from None
    except RecursionError:
        raise ParseError("JSON nested too deeply", path=path) from None
    if not isinstance(d, dict) or not isinstance(d.get("points", []), list):
        raise ParseError("not a copick picks object", path=path, expected="{'points': [...], ...}")
    unit = d.get("unit", "angstrom")
    if unit not in ("angstrom", None):
        raise ParseError(f"unit '{unit}'", path=path, field="unit", expected="angstrom")
    parts = []
    for k, pt in enumerate(d.get("points") or []):
        try:
            loc = pt["location"]
            xyz = [float(loc[a]) for a in "xyz"]
            t = pt.get("transformation_") or [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]
            r = torch.tensor([[float(v) for v in row[:3]] for row in t[:3]], dtype=torch.float64)
            score = pt.get("score")
            score = None if score is None else float(score)
        except (KeyError, TypeError, ValueError, IndexError, RuntimeError):
            raise ParseError(f"point {k} is malformed", path=path, field="points",
                             expected="location x,y,z and a 4x4 transformation_") from None
        if r.shape != (3, 3) or not all(math.isfinite(v) for v in xyz) or not torch.isfinite(r).all():
            raise ParseError(f"point {k} has a bad location or transformation", path=path, field="points")
        e = matrix_to_euler_zyz(r).tolist()
        parts.append(Particle(x_a=xyz[0], y_a=xyz[1], z_a=xyz[2], rot_deg=e[0], tilt_deg=e[1], psi_deg=e[2],
                              score=score if score is None or math.isfinite(score) else None))
    vs = d.get("voxel_spacing")
    pix = pixel_size_a or (float(vs) if isinstance(vs, int | float) and vs > 0 else 1.0)
    coords = Coordinates3D(ts_id=str(d.get("run_name") or "run"), particles=parts, pixel_size_a=pix,
                           user_id=str(d.get("user_id") or "unknown"), session_id=str(d.get("session_id") or "0"),
                           method="copick-import")
    return str(d.get("pickable_object_name") or "object"), coords


def neuroglancer_state(tomogram_source: str, pixel_size_a: float, picks: dict[str, Coordinates3D] | None = None,
                       *, shape_zyx: tuple[int, int, int] | None = None) -> dict:
    """A neuroglancer viewer state: the tomogram (``zarr://`` or ``precomputed://`` URL) and one point
    annotation layer per object, in voxel coordinates."""
    s = pixel_size_a * 1e-10
    dims = {"x": [s, "m"], "y": [s, "m"], "z": [s, "m"]}
    layers = [{"type": "image", "name": "tomogram", "source": tomogram_source}]
    for name, c in (picks or {}).items():
        anns = [{"type": "point", "id": f"{name}-{k}",
                 "point": [p.x_a / pixel_size_a, p.y_a / pixel_size_a, p.z_a / pixel_size_a]}
                for k, p in enumerate(c.particles)]
        layers.append({"type": "annotation", "name": name, "source": {"url": "local://annotations"},
                       "tool": "annotatePoint", "annotations": anns})
    state = {"dimensions": dims, "layers": layers, "layout": "xy"}
    if shape_zyx is not None:
        state["position"] = [shape_zyx[2] / 2, shape_zyx[1] / 2, shape_zyx[0] / 2]
    return state


def write_neuroglancer_state(path: str | Path, tomogram_source: str, pixel_size_a: float,
                             picks: dict[str, Coordinates3D] | None = None, **kw) -> Path:
    return write_json_atomic(path, neuroglancer_state(tomogram_source, pixel_size_a, picks, **kw))
