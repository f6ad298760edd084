"""Warp / WarpTools tilt-series XML (read alignment, CTF and dose).

``<TiltSeries>`` holds newline-separated per-tilt lists (``Angles``, ``Dose`` = accumulated dose before
the tilt in e/Å², ``UseTilt``, ``AxisAngle`` in degrees, ``AxisOffsetX/Y`` in Å, ``MoviePath``), a global
``<CTF>`` of ``<Param Name Value>`` and grids ``GridCTF`` (per-tilt defocus, µm), ``GridCTFDefocusDelta``
and ``GridCTFDefocusAngle``. Warp's defocus is positive for underfocus; astigmatism is written here as
``U = D + Δ/2``, ``V = D - Δ/2`` with the angle of U, as Warp exports to RELION.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tomoforge.errors import ParseError
from tomoforge.io._ctfutil import ordered_ctf
from tomoforge.io._text import read_text, to_float, to_int
from tomoforge.model.ctf import CtfEstimate


@dataclass
class WarpTiltSeries:
    angles_deg: np.ndarray
    dose_e_per_a2: np.ndarray               # accumulated dose before each tilt
    use_tilt: np.ndarray                    # bool
    axis_angle_deg: np.ndarray
    axis_offset_xy_a: np.ndarray            # (t, 2)
    movie_paths: list[str]
    attributes: dict[str, str]
    ctf_params: dict[str, str] = field(default_factory=dict)
    ctf: list[CtfEstimate] | None = None
    pixel_size_a: float | None = None

    @property
    def n_tilts(self) -> int:
        return len(self.angles_deg)

    @property
    def angles_inverted(self) -> bool:
        return self.attributes.get("AreAnglesInverted", "False").lower() == "true"


def _parse_xml(path):
    text = read_text(path)
    if "<!ENTITY" in text or "<!DOCTYPE" in text:
        raise ParseError("XML with DOCTYPE/ENTITY declarations is refused", path=path)
    try:
        return ET.fromstring(text)
    except ET.ParseError as err:
        raise ParseError(f"bad XML: {err.msg if hasattr(err, 'msg') else err}", path=path,
                         line=err.position[0] if getattr(err, "position", None) else None) from None


def _list(root, tag: str, path, required: bool = True) -> list[str] | None:
    el = root.find(tag)
    if el is None:
        if required:
            raise ParseError(f"no <{tag}> element", path=path, field=tag, expected="a WarpTools tilt-series XML")
        return None
    return [s.strip() for s in (el.text or "").splitlines() if s.strip()]


def _grid(root, tag: str, n: int, path) -> np.ndarray | None:
    el = root.find(tag)
    if el is None:
        return None
    depth = to_int(el.get("Depth", "1"), path, None, tag)
    w, h = to_int(el.get("Width", "1"), path, None, tag), to_int(el.get("Height", "1"), path, None, tag)
    nodes = el.findall("Node")
    if not nodes:
        return None
    if depth not in (n, 1):
        raise ParseError(f"<{tag}> Depth {depth} but {n} tilts", path=path, field=tag)
    if min(depth, h, w) < 1 or depth * h * w > 10_000_000:
        raise ParseError(f"<{tag}> grid size {w}x{h}x{depth}", path=path, field=tag)
    vals = np.zeros((depth, h, w))
    for nd in nodes:
        x, y, z = (to_int(nd.get(a, "x"), path, None, tag) for a in "XYZ")
        if not (0 <= x < w and 0 <= y < h and 0 <= z < depth):
            raise ParseError(f"<{tag}> node ({x},{y},{z}) outside the grid", path=path, field=tag)
        vals[z, y, x] = to_float(nd.get("Value", "x"), path, None, tag)
    per = vals.reshape(depth, -1).mean(-1)
    return np.repeat(per, n) if depth == 1 else per  # a depth-1 grid is one value for all tilts


def read_warp_xml(path: str | Path) -> WarpTiltSeries:
    """Read a WarpTools tilt-series XML; missing per-tilt lists or mismatched lengths are ParseErrors."""
    root = _parse_xml(path)
    if root.tag != "TiltSeries":
        raise ParseError(f"root element <{root.tag}>", path=path, expected="<TiltSeries>")
    angles = [to_float(v, path, None, "Angles") for v in _list(root, "Angles", path)]
    n = len(angles)
    if n == 0:
        raise ParseError("no tilt angles", path=path, field="Angles")

    def per_tilt(tag, conv, default):
        vals = _list(root, tag, path, required=False)
        if vals is None:
            return [default] * n
        if len(vals) != n:
            raise ParseError(f"<{tag}> has {len(vals)} values for {n} tilts", path=path, field=tag)
        return [conv(v) for v in vals]

    dose = per_tilt("Dose", lambda v: to_float(v, path, None, "Dose"), 0.0)
    use = per_tilt("UseTilt", lambda v: v.lower() == "true", True)
    axis = per_tilt("AxisAngle", lambda v: to_float(v, path, None, "AxisAngle"), 0.0)
    ox = per_tilt("AxisOffsetX", lambda v: to_float(v, path, None, "AxisOffsetX"), 0.0)
    oy = per_tilt("AxisOffsetY", lambda v: to_float(v, path, None, "AxisOffsetY"), 0.0)
    movies = per_tilt("MoviePath", str, "")
    params: dict[str, str] = {}
    ctf_el = root.find("CTF")
    if ctf_el is not None:
        for p in ctf_el.findall("Param"):
            if p.get("Name"):
                params[p.get("Name")] = p.get("Value", "")
    pix = to_float(params["PixelSize"], path, None, "PixelSize") if params.get("PixelSize") else None
    ctfs = None
    defocus = _grid(root, "GridCTF", n, path)
    if defocus is not None:
        delta = _grid(root, "GridCTFDefocusDelta", n, path)
        ang = _grid(root, "GridCTFDefocusAngle", n, path)
        phase = _grid(root, "GridCTFPhase", n, path)
        if delta is None:
            delta = np.full(n, to_float(params.get("DefocusDelta", "0") or "0", path, None, "DefocusDelta"))
        if ang is None:
            ang = np.full(n, to_float(params.get("DefocusAngle", "0") or "0", path, None, "DefocusAngle"))
        ctfs = []
        for k in range(n):
            d, dd = defocus[k] * 1e4, delta[k] * 1e4
            ps = (phase[k] if phase is not None else 0.0) * 180.0   # Warp stores phase in units of pi
            if not all(math.isfinite(v) for v in (d, dd, ang[k], ps)):
                raise ParseError("non-finite CTF value", path=path, field="GridCTF")
            ctfs.append(ordered_ctf(d + dd / 2, d - dd / 2, float(ang[k]), phase_shift_deg=float(ps)))
    return WarpTiltSeries(np.array(angles), np.array(dose), np.array(use, dtype=bool), np.array(axis),
                          np.stack([np.array(ox), np.array(oy)], -1), movies, dict(root.attrib), params, ctfs, pix)
