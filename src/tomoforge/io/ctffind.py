"""CTFFIND 4/5 text outputs: the diagnostic ``.txt`` (one row per micrograph) and ``_avrot.txt``.

Main output columns (CTFFIND 4): ``#1 micrograph number; #2 defocus 1 [Å]; #3 defocus 2; #4 azimuth of
astigmatism [deg]; #5 additional phase shift [radians]; #6 cross correlation; #7 spacing up to which CTF
rings were fit [Å]``. CTFFIND 5 adds ``#8 estimated tilt axis angle; #9 estimated tilt angle; #10
estimated sample thickness [Å]``. The number of columns is read from the ``# Columns:`` header.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict

from tomoforge.errors import ParseError
from tomoforge.io._ctfutil import ordered_ctf
from tomoforge.io._text import floats, read_lines
from tomoforge.io.atomic import write_text_atomic
from tomoforge.model.ctf import CtfEstimate


class CtffindRow(BaseModel):
    model_config = ConfigDict(extra="forbid")
    micrograph: int
    ctf: CtfEstimate
    tilt_axis_deg: float | None = None
    tilt_deg: float | None = None
    thickness_a: float | None = None


class CtffindOutput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: str | None = None
    pixel_size_a: float | None = None
    voltage_kv: float | None = None
    cs_mm: float | None = None
    amplitude_contrast: float | None = None
    rows: list[CtffindRow]


_HEADER_NUM = {
    "pixel_size_a": r"Pixel size:\s*([-\d.eE+]+)",
    "voltage_kv": r"acceleration voltage:\s*([-\d.eE+]+)",
    "cs_mm": r"spherical aberration:\s*([-\d.eE+]+)",
    "amplitude_contrast": r"amplitude contrast:\s*([-\d.eE+]+)",
}


def _header_values(lines: list[str]) -> dict:
    out: dict = {}
    text = "\n".join(ln for ln in lines if ln.startswith("#"))
    m = re.search(r"CTF[Ff]ind version\s+(\S+?)(?:,|\s|$)", text)
    if m:
        out["version"] = m.group(1)
    for key, pat in _HEADER_NUM.items():
        m = re.search(pat, text)
        if m:
            try:
                v = float(m.group(1))
            except ValueError:
                continue
            if math.isfinite(v):
                out[key] = v
    return out


def read_ctffind(path: str | Path) -> CtffindOutput:
    """Read a CTFFIND 4 or 5 main output text file."""
    lines = read_lines(path)
    ncol = None
    for i, ln in enumerate(lines, start=1):
        if ln.startswith("# Columns:"):
            ncol = len(re.findall(r"#\d+", ln[1:]))
            if ncol not in (7, 10):
                raise ParseError(f"{ncol} columns announced", path=path, line=i,
                                 expected="7 (CTFFIND 4) or 10 (CTFFIND 5)")
    if ncol is None:
        raise ParseError("no '# Columns:' header", path=path, expected="CTFFIND output text")
    rows = []
    for i, ln in enumerate(lines, start=1):
        if not ln.strip() or ln.startswith("#"):
            continue
        v = floats(ln.split(), path, i)
        if len(v) != ncol:
            raise ParseError(f"{len(v)} values", path=path, line=i, expected=f"{ncol} columns")
        if v[0] != int(v[0]):
            raise ParseError("micrograph number is not an integer", path=path, line=i)
        ctf = ordered_ctf(v[1], v[2], v[3], phase_shift_deg=math.degrees(v[4]), fit_score=v[5],
                          fit_resolution_a=v[6])
        extra = {}
        if ncol == 10:
            extra = {"tilt_axis_deg": v[7], "tilt_deg": v[8], "thickness_a": v[9]}
        rows.append(CtffindRow(micrograph=int(v[0]), ctf=ctf, **extra))
    if not rows:
        raise ParseError("no result rows", path=path)
    return CtffindOutput(rows=rows, **_header_values(lines))


def format_ctffind(estimates: list[CtfEstimate], *, pixel_size_a: float, voltage_kv: float = 300.0,
                   cs_mm: float = 2.7, amplitude_contrast: float = 0.07, input_name: str = "stack.mrc",
                   ctffind5: bool = False, tilt_axis_deg=None, tilt_deg=None, thickness_a=None) -> str:
    """CTFFIND-style text (one row per image), as written by tomoforge; readable by :func:`read_ctffind`."""
    cols = ("# Columns: #1 - micrograph number; #2 - defocus 1 [Angstroms]; #3 - defocus 2; "
            "#4 - azimuth of astigmatism; #5 - additional phase shift [radians]; #6 - cross correlation; "
            "#7 - spacing (in Angstroms) up to which CTF rings were fit successfully")
    if ctffind5:
        cols += "; #8 - Estimated tilt axis angle; #9 - Estimated tilt angle ; #10 Estimated sample thickness (in Angstroms)"
    out = [
        f"# Output from CTFFind version {'5.0.0' if ctffind5 else '4.1.14'} (written by tomoforge)",
        f"# Input file: {input_name} ; Number of micrographs: {len(estimates)}",
        f"# Pixel size: {pixel_size_a:.3f} Angstroms ; acceleration voltage: {voltage_kv:.1f} keV ; "
        f"spherical aberration: {cs_mm:.2f} mm ; amplitude contrast: {amplitude_contrast:.2f}",
        cols,
    ]
    for k, c in enumerate(estimates):
        vals = [k + 1, c.defocus_u_a, c.defocus_v_a, c.astigmatism_angle_deg, math.radians(c.phase_shift_deg),
                c.fit_score if c.fit_score is not None else 0.0,
                c.fit_resolution_a if c.fit_resolution_a is not None else 0.0]
        if ctffind5:
            vals += [_at(tilt_axis_deg, k), _at(tilt_deg, k), _at(thickness_a, k)]
        out.append(" ".join(f"{v:.6f}" for v in vals))
    return "\n".join(out) + "\n"


def _at(seq, k) -> float:
    return 0.0 if seq is None else float(seq[k])


def write_ctffind(path: str | Path, estimates: list[CtfEstimate], **kw) -> Path:
    return write_text_atomic(path, format_ctffind(estimates, **kw))


@dataclass
class Avrot:
    """``_avrot.txt``: per micrograph, 6 curves over spatial frequency (1/Å)."""

    header: list[str]
    frequency_per_a: list[np.ndarray] = field(default_factory=list)
    rotavg_no_astig: list[np.ndarray] = field(default_factory=list)
    rotavg: list[np.ndarray] = field(default_factory=list)
    ctf_fit: list[np.ndarray] = field(default_factory=list)
    cross_correlation: list[np.ndarray] = field(default_factory=list)
    noise_2sigma: list[np.ndarray] = field(default_factory=list)

    @property
    def n_micrographs(self) -> int:
        return len(self.frequency_per_a)


def read_avrot(path: str | Path) -> Avrot:
    """Read CTFFIND's 1D rotational-average file (6 lines per micrograph, equal lengths)."""
    lines = read_lines(path)
    header = [ln for ln in lines if ln.startswith("#")]
    data = [(i, ln) for i, ln in enumerate(lines, start=1) if ln.strip() and not ln.startswith("#")]
    if not data or len(data) % 6:
        raise ParseError(f"{len(data)} data lines", path=path, line=data[-1][0] if data else 1,
                         expected="a multiple of 6 (6 lines per micrograph)")
    out = Avrot(header=header)
    keys = (out.frequency_per_a, out.rotavg_no_astig, out.rotavg, out.ctf_fit, out.cross_correlation,
            out.noise_2sigma)
    for m in range(0, len(data), 6):
        n = None
        for j in range(6):
            i, ln = data[m + j]
            arr = np.array(floats(ln.split(), path, i), dtype=np.float64)
            if n is None:
                n = arr.size
            elif arr.size != n:
                raise ParseError(f"{arr.size} values", path=path, line=i,
                                 expected=f"{n} like the frequency line")
            keys[j].append(arr)
    return out
