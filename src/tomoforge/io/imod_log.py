"""tiltalign logs (``align.log``, ``taSolution.log``, ``taAngles.log``): the numbers users look at.

The solution table follows a header ``view rotation tilt deltilt mag dmag skew resid-nm`` (or
``mean resid`` in pixels for older logs); ``At minimum tilt, rotation angle is`` and ``Beam tilt angle is``
lines give the axis; ``Residual error mean and sd`` the fit quality. taAngles has the surface analysis.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tomoforge.errors import ParseError
from tomoforge.io._text import floats, read_lines, to_float

_HEAD = re.compile(r"^\s*view\s+rotation\s+tilt\s+deltilt\s+mag\s+dmag\s+skew\s+(resid-nm|mean resid)\s*$")


@dataclass
class TiltalignSolution:
    view: np.ndarray                 # (v,) 1-based view numbers
    rotation_deg: np.ndarray
    tilt_deg: np.ndarray
    deltilt_deg: np.ndarray
    mag: np.ndarray
    dmag: np.ndarray
    skew_deg: np.ndarray
    resid: np.ndarray
    resid_unit: str                  # "nm" or "px"
    rotation_at_min_tilt_deg: float | None = None
    beam_tilt_deg: float | None = None
    residual_mean_sd: tuple[float, float] | None = None


def read_tiltalign_solution(path: str | Path) -> TiltalignSolution:
    """The first solution table of a tiltalign log (align.log or taSolution.log)."""
    lines = read_lines(path)
    start = next((i for i, ln in enumerate(lines) if _HEAD.match(ln)), None)
    if start is None:
        raise ParseError("no solution table", path=path,
                         expected="' view   rotation    tilt    deltilt     mag ...' header")
    unit = "nm" if "resid-nm" in lines[start] else "px"
    rows = []
    for i in range(start + 1, len(lines)):
        toks = lines[i].split()
        if len(toks) != 8 or not re.fullmatch(r"\d+", toks[0]):
            break
        rows.append(floats(toks, path, i + 1))
    if not rows:
        raise ParseError("empty solution table", path=path, line=start + 2)
    a = np.array(rows)
    out = TiltalignSolution(a[:, 0].astype(np.int64), a[:, 1], a[:, 2], a[:, 3], a[:, 4], a[:, 5], a[:, 6],
                            a[:, 7], unit)
    for i, ln in enumerate(lines, start=1):
        m = re.search(r"At minimum tilt, rotation angle is\s+(\S+)", ln)
        if m and out.rotation_at_min_tilt_deg is None:
            out.rotation_at_min_tilt_deg = to_float(m.group(1), path, i)
        m = re.search(r"Beam tilt angle is\s+(\S+)", ln)
        if m and out.beam_tilt_deg is None:
            out.beam_tilt_deg = to_float(m.group(1), path, i)
        m = re.search(r"Residual error mean and sd:\s+(\S+)\s+(\S+)", ln)
        if m:
            out.residual_mean_sd = (to_float(m.group(1), path, i), to_float(m.group(2), path, i))
    return out


@dataclass
class SurfaceFit:
    title: str
    values: dict[str, float] = field(default_factory=dict)


def read_ta_angles(path: str | Path) -> list[SurfaceFit]:
    """Surface-analysis sections (``Fit of one plane to ...``) with their ``name = value`` lines."""
    fits: list[SurfaceFit] = []
    for i, ln in enumerate(read_lines(path), start=1):
        s = ln.strip()
        if s.startswith("Fit of"):
            fits.append(SurfaceFit(s.rstrip(":")))
        elif s.startswith("The following parameters combine"):
            fits.append(SurfaceFit("Combined two-surface fit"))
        elif fits and "=" in s:
            k, v = s.split("=", 1)
            toks = v.split()
            if toks:
                fits[-1].values[k.strip()] = to_float(toks[0], path, i, k.strip())
    if not fits:
        raise ParseError("no 'Fit of one plane' sections", path=path, expected="a tiltalign taAngles log")
    return fits
