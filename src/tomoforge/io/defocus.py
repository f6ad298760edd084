"""IMOD ctfplotter ``.defocus`` files, versions 1-3.

Version 2 (and 1): one line per fitted range ``startView endView startAngle endAngle defocus_nm``; the
first line ends with the version number (absent in version 1, whose view numbers are 0-based).
Version 3: a header ``flags 0 0.0 0.0 0.0 3``; rows are ``start end angle1 angle2 defocus1_nm
[defocus2_nm astigAngle_deg] [phase_deg] [cutOn_per_nm]`` where flag bit 1 adds the astigmatism columns,
bit 4 the phase shift and bit 32 the cut-on frequency. View numbers are 1-based and inclusive.
Defocus is nm (underfocus positive) in the file and Å in :class:`CtfEstimate`.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from tomoforge.errors import ParseError
from tomoforge.io._ctfutil import ordered_ctf
from tomoforge.io._text import read_lines, to_float, to_int
from tomoforge.io.atomic import write_text_atomic
from tomoforge.model.ctf import CtfEstimate

FLAG_ASTIGMATISM = 1
FLAG_PHASE = 4
FLAG_CUT_ON = 32


class DefocusEntry(BaseModel):
    """One fitted range of views (1-based, inclusive)."""

    model_config = ConfigDict(extra="forbid")
    start_view: int = Field(ge=1)
    end_view: int = Field(ge=1)
    start_angle_deg: float
    end_angle_deg: float
    ctf: CtfEstimate
    cut_on_per_nm: float | None = None


class DefocusFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int
    flags: int = 0
    entries: list[DefocusEntry]

    def per_view(self, n_views: int) -> list[CtfEstimate | None]:
        """The estimate applying to each view 0..n-1 (None where no range covers it)."""
        out: list[CtfEstimate | None] = [None] * n_views
        for e in self.entries:
            for v in range(e.start_view, min(e.end_view, n_views) + 1):
                out[v - 1] = e.ctf
        return out


def _columns(flags: int) -> int:
    return 5 + (2 if flags & FLAG_ASTIGMATISM else 0) + (1 if flags & FLAG_PHASE else 0) + \
        (1 if flags & FLAG_CUT_ON else 0)


def read_defocus(path: str | Path, n_views: int | None = None) -> DefocusFile:
    """Read a ctfplotter defocus file. With ``n_views`` (the stack's view count) the file must cover
    exactly views 1..n_views; anything else is a ParseError naming the line."""
    lines = read_lines(path)
    body = [(i, ln.split()) for i, ln in enumerate(lines, start=1) if ln.strip()]
    if not body:
        raise ParseError("empty defocus file", path=path, expected="ctfplotter output")
    i0, first = body[0]
    flags = 0
    if len(first) == 6 and first[5] == "3" or (len(first) == 6 and _is_v3_header(first)):
        version = 3
        flags = to_int(first[0], path, i0, "flags")
        if flags < 0 or flags > 1023:
            raise ParseError(f"flags {flags} out of range", path=path, line=i0)
        rows = body[1:]
    elif len(first) == 6:
        version = to_int(first[5], path, i0, "version")
        if version not in (1, 2):
            raise ParseError(f"unknown defocus file version {version}", path=path, line=i0,
                             expected="1, 2 or 3")
        rows = [(i0, first[:5])] + body[1:]
    elif len(first) == 5:
        version = 1
        rows = body
    else:
        raise ParseError(f"{len(first)} values on the first line", path=path, line=i0,
                         expected="'start end angle angle defocus version' or a version-3 header")
    ncol = _columns(flags) if version == 3 else 5
    entries = []
    for i, toks in rows:
        if len(toks) != ncol:
            raise ParseError(f"{len(toks)} columns", path=path, line=i,
                             expected=f"{ncol} columns for version {version}, flags {flags}")
        start, end = to_int(toks[0], path, i, "start view"), to_int(toks[1], path, i, "end view")
        if version == 1:
            start, end = start + 1, end + 1
        if start < 1 or end < start:
            raise ParseError(f"view range {toks[0]}-{toks[1]}", path=path, line=i,
                             expected="1-based start <= end")
        a1, a2, d1 = (to_float(t, path, i) for t in toks[2:5])
        k = 5
        d2, ang, phase, cut = d1, 0.0, 0.0, None
        if version == 3 and flags & FLAG_ASTIGMATISM:
            d2, ang = to_float(toks[5], path, i, "defocus2"), to_float(toks[6], path, i, "astig angle")
            k = 7
        if version == 3 and flags & FLAG_PHASE:
            phase = to_float(toks[k], path, i, "phase shift")
            k += 1
        if version == 3 and flags & FLAG_CUT_ON:
            cut = to_float(toks[k], path, i, "cut-on")
        ctf = ordered_ctf(d1 * 10.0, d2 * 10.0, ang, phase_shift_deg=phase)
        entries.append(DefocusEntry(start_view=start, end_view=end, start_angle_deg=a1, end_angle_deg=a2,
                                    ctf=ctf, cut_on_per_nm=cut))
    if not entries:
        raise ParseError("no defocus values", path=path, line=i0)
    out = DefocusFile(version=version, flags=flags, entries=entries)
    if n_views is not None:
        _check_views(path, out, n_views, [i for i, _ in rows])
    return out


def _is_v3_header(tokens: list[str]) -> bool:
    try:
        return int(tokens[1]) == 0 and float(tokens[2]) == 0 and float(tokens[5]) == 3
    except ValueError:
        return False


def _check_views(path, df: DefocusFile, n_views: int, lines: list[int]) -> None:
    covered = set()
    for e, ln in zip(df.entries, lines, strict=False):
        if e.end_view > n_views:
            raise ParseError(f"view {e.end_view} but the stack has {n_views} views", path=path, line=ln,
                             expected=f"views 1..{n_views}")
        covered.update(range(e.start_view, e.end_view + 1))
    missing = sorted(set(range(1, n_views + 1)) - covered)
    if missing:
        raise ParseError(f"{len(missing)} of the stack's {n_views} views have no defocus "
                         f"(first missing: view {missing[0]})", path=path,
                         expected=f"a defocus for each of {n_views} views")


def format_defocus_v3(entries: list[DefocusEntry]) -> str:
    """Version-3 text with astigmatism (flag 1), plus phase (4) and cut-on (32) when any entry has them."""
    flags = FLAG_ASTIGMATISM
    if any(e.ctf.phase_shift_deg != 0 for e in entries):
        flags |= FLAG_PHASE
    if any(e.cut_on_per_nm is not None for e in entries):
        flags |= FLAG_CUT_ON
    out = [f"{flags}\t0\t0.0\t0.0\t0.0\t3"]
    for e in entries:
        c = e.ctf
        row = (f"{e.start_view}\t{e.end_view}\t{e.start_angle_deg:.2f}\t{e.end_angle_deg:.2f}\t"
               f"{c.defocus_u_a / 10:7.1f}\t{c.defocus_v_a / 10:7.1f}\t{c.astigmatism_angle_deg:7.2f}")
        if flags & FLAG_PHASE:
            row += f"\t{c.phase_shift_deg:9.2f}"
        if flags & FLAG_CUT_ON:
            row += f"\t{(e.cut_on_per_nm or 0.0):9.4f}"
        out.append(row)
    return "\n".join(out) + "\n"


def write_defocus(path: str | Path, entries: list[DefocusEntry]) -> Path:
    """Write a version-3 defocus file (defocus rounded to 0.1 nm, angles to 0.01 degree)."""
    return write_text_atomic(path, format_defocus_v3(entries))


def entries_from_views(tilt_deg, ctfs: list[CtfEstimate]) -> list[DefocusEntry]:
    """One entry per view (1-based) from per-view tilt angles and estimates."""
    return [DefocusEntry(start_view=k + 1, end_view=k + 1, start_angle_deg=float(a), end_angle_deg=float(a),
                         ctf=c) for k, (a, c) in enumerate(zip(tilt_deg, ctfs, strict=False))]
