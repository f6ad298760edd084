"""AreTomo ``.aln`` alignment files (read all known layouts; write the current one).

Layouts seen in the wild:

- ``v1.0``/``v1.2``: title, ``# N 0`` count line, column header, rows.
- ``v1.3``: ``# RawSize = nx ny nz`` and ``# NumPatches = n`` header lines.
- ``v2``: additionally ``# DarkFrame = i sec tilt`` lines, ``# AlphaOffset``, ``# BetaOffset``,
  ``# Thickness`` and, when NumPatches > 0, a ``# Local Alignment`` block of
  ``tilt patch x y dx dy good`` rows.

Rows are ``SEC ROT GMAG TX TY SMEAN SFIT SCALE BASE TILT``. SEC is the section in the raw stack, 0-based
as AreTomo writes it; some files number from 1 (detected when SEC reaches the raw section count).
ROT is the tilt axis angle in tomoforge's convention (CCW from +Y). TX/TY is the shift of the raw image
(pixels); the matching IMOD transform is ``[R(-ROT) | -R(-ROT) @ (TX, TY)]`` (see :func:`aln_to_xf`),
which reproduces AreTomo's own ``-OutImod`` .xf.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from tomoforge.core.geometry import rotation_matrix_2d
from tomoforge.errors import ParseError
from tomoforge.io._text import floats, read_lines, to_float, to_int
from tomoforge.io.atomic import write_text_atomic

COLUMNS = ("SEC", "ROT", "GMAG", "TX", "TY", "SMEAN", "SFIT", "SCALE", "BASE", "TILT")
_KEY = re.compile(r"^#\s*([A-Za-z]+)\s*=\s*(.*)$")
_KNOWN_KEYS = {"RawSize", "NumPatches", "DarkFrame", "AlphaOffset", "BetaOffset", "Thickness"}


@dataclass
class AlnFile:
    """Contents of an .aln file; arrays are per kept tilt, in file order."""

    layout: str                          # "v1.0", "v1.3" or "v2"
    section: np.ndarray                  # (t,) 0-based raw section index
    rot_deg: np.ndarray                  # (t,) tilt axis angle
    gmag: np.ndarray
    shift_xy_px: np.ndarray              # (t, 2) TX, TY
    smean: np.ndarray
    sfit: np.ndarray
    scale: np.ndarray
    base: np.ndarray
    tilt_deg: np.ndarray
    raw_size: tuple[int, int, int] | None = None
    num_patches: int = 0
    dark_frames: list[tuple[int, int, float]] = field(default_factory=list)  # (index, raw section, tilt)
    alpha_offset_deg: float | None = None
    beta_offset_deg: float | None = None
    thickness_px: int | None = None
    sec_base: int = 0                    # 0 or 1, as found in the file
    local: np.ndarray | None = None      # (n, 7): tilt, patch, x, y, dx, dy, good

    @property
    def n_tilts(self) -> int:
        return len(self.section)


def read_aln(path: str | Path) -> AlnFile:
    """Read any known .aln layout; an unknown header line is a ParseError naming the line."""
    lines = read_lines(path)
    if not lines or not lines[0].startswith("# AreTomo Alignment"):
        raise ParseError("not an AreTomo .aln file", path=path, line=1,
                         expected="'# AreTomo Alignment / Priims bprmMn' title")
    header: dict[str, str] = {}
    dark: list[tuple[int, int, float]] = []
    count = None
    rows: list[list[float]] = []
    row_lines: list[int] = []
    local_rows: list[list[float]] = []
    in_local = False
    saw_columns = False
    for i, raw in enumerate(lines[1:], start=2):
        s = raw.strip()
        if not s:
            continue
        if s.startswith("#"):
            body = s[1:].strip()
            m = _KEY.match(s)
            if body.startswith("SEC") and body.split()[:10] == list(COLUMNS):
                if saw_columns or rows:
                    raise ParseError("second column header", path=path, line=i)
                saw_columns = True
            elif body == "Local Alignment":
                if not saw_columns:
                    raise ParseError("local alignment before the global table", path=path, line=i)
                in_local = True
            elif m and m.group(1) in _KNOWN_KEYS:
                key, val = m.group(1), m.group(2)
                if key == "DarkFrame":
                    t = val.split()
                    if len(t) != 3:
                        raise ParseError("DarkFrame needs 3 values", path=path, line=i,
                                         expected="index section tilt")
                    dark.append((to_int(t[0], path, i, key), to_int(t[1], path, i, key),
                                 to_float(t[2], path, i, key)))
                elif key in header:
                    raise ParseError(f"duplicate '{key}'", path=path, line=i)
                else:
                    header[key] = val
            elif re.fullmatch(r"\d+\s+\d+", body) and count is None and not header and not saw_columns:
                count = to_int(body.split()[0], path, i, "tilt count")
            else:
                raise ParseError(f"unknown .aln header line '{s[:50]}'", path=path, line=i,
                                 expected="a known AreTomo layout (v1.0, v1.2, v1.3, v2)")
            continue
        toks = s.split()
        if in_local:
            if len(toks) != 7:
                raise ParseError(f"{len(toks)} values in a local-alignment row", path=path, line=i,
                                 expected="tilt patch x y dx dy good")
            local_rows.append(floats(toks, path, i))
            continue
        if not saw_columns:
            raise ParseError("data before the column header", path=path, line=i,
                             expected="'# SEC ROT GMAG TX TY SMEAN SFIT SCALE BASE TILT'")
        if len(toks) != 10:
            raise ParseError(f"{len(toks)} values in an alignment row", path=path, line=i,
                             expected="10 columns SEC..TILT")
        rows.append(floats(toks, path, i))
        row_lines.append(i)
    if not rows:
        raise ParseError("no alignment rows", path=path, expected="rows after the column header")
    a = np.array(rows, dtype=np.float64)
    if np.any(a[:, 0] != np.round(a[:, 0])) or np.any(a[:, 0] < 0):
        bad = int(np.nonzero((a[:, 0] != np.round(a[:, 0])) | (a[:, 0] < 0))[0][0])
        raise ParseError("SEC must be a non-negative integer", path=path, line=row_lines[bad])
    raw_size = None
    if "RawSize" in header:
        t = header["RawSize"].split()
        if len(t) != 3:
            raise ParseError("RawSize needs 3 values", path=path, expected="nx ny nz")
        raw_size = tuple(to_int(x, path, None, "RawSize") for x in t)
    if count is not None and count != len(rows):
        raise ParseError(f"header says {count} tilts but {len(rows)} rows follow", path=path)
    layout = "v1.0" if count is not None else ("v2" if {"AlphaOffset", "DarkFrame"} & set(header) or dark
                                               else "v1.3")
    if count is None and "RawSize" not in header:
        raise ParseError("no tilt count or RawSize header", path=path, line=2,
                         expected="'# N 0' or '# RawSize = nx ny nz'")
    sec = a[:, 0].astype(np.int64)
    base = 0
    if raw_size is not None and sec.max() >= raw_size[2]:
        base = 1
    elif raw_size is None and sec.min() == 1 and sec.max() == len(sec):
        base = 1
    sec = sec - base
    if raw_size is not None and sec.max() >= raw_size[2]:
        raise ParseError(f"section {int(sec.max())} beyond RawSize z = {raw_size[2]}", path=path)
    num_patches = to_int(header.get("NumPatches", "0"), path, None, "NumPatches")
    local = np.array(local_rows, dtype=np.float64).reshape(-1, 7) if local_rows else None
    if local is not None and num_patches <= 0:
        raise ParseError("local alignment rows but NumPatches = 0", path=path)
    return AlnFile(
        layout=layout, section=sec, rot_deg=a[:, 1], gmag=a[:, 2], shift_xy_px=a[:, 3:5].copy(),
        smean=a[:, 5], sfit=a[:, 6], scale=a[:, 7], base=a[:, 8], tilt_deg=a[:, 9], raw_size=raw_size,
        num_patches=num_patches, dark_frames=dark,
        alpha_offset_deg=_opt_float(header, "AlphaOffset", path),
        beta_offset_deg=_opt_float(header, "BetaOffset", path),
        thickness_px=to_int(header["Thickness"], path, None, "Thickness") if "Thickness" in header else None,
        sec_base=base, local=local)


def _opt_float(header: dict, key: str, path) -> float | None:
    return to_float(header[key], path, None, key) if key in header else None


def format_aln(aln: AlnFile) -> str:
    """Current (AreTomo2) layout; SEC is written 0-based."""
    out = ["# AreTomo Alignment / Priims bprmMn "]
    if aln.raw_size is not None:
        out.append("# RawSize = {} {} {}".format(*aln.raw_size))
    else:
        out.append(f"# RawSize = 0 0 {int(aln.section.max()) + 1 + len(aln.dark_frames)}")
    out.append(f"# NumPatches = {aln.num_patches}")
    out += [f"# DarkFrame = {i:5d}{s:5d}{t:9.2f}" for i, s, t in aln.dark_frames]
    if aln.alpha_offset_deg is not None:
        out.append(f"# AlphaOffset = {aln.alpha_offset_deg:8.2f}")
    if aln.beta_offset_deg is not None:
        out.append(f"# BetaOffset = {aln.beta_offset_deg:8.2f}")
    if aln.thickness_px is not None:
        out.append(f"# Thickness = {aln.thickness_px}")
    out.append("# SEC     ROT         GMAG       TX          TY      SMEAN     SFIT    SCALE     BASE     TILT")
    for k in range(aln.n_tilts):
        out.append(f"{int(aln.section[k]):5d}{aln.rot_deg[k]:11.4f}{aln.gmag[k]:11.5f}"
                   f"{aln.shift_xy_px[k, 0]:11.3f}{aln.shift_xy_px[k, 1]:11.3f}{aln.smean[k]:9.2f}"
                   f"{aln.sfit[k]:9.2f}{aln.scale[k]:9.2f}{aln.base[k]:9.2f}{aln.tilt_deg[k]:10.2f}")
    if aln.local is not None and len(aln.local):
        out.append("# Local Alignment")
        for t, p, x, y, dx, dy, g in aln.local:
            out.append(f"{int(t):4d}{int(p):4d}{x:9.2f}{y:10.2f}{dx:10.2f}{dy:10.2f}{g:6.1f}")
    return "\n".join(out) + "\n"


def write_aln(path: str | Path, aln: AlnFile) -> Path:
    return write_text_atomic(path, format_aln(aln))


def aln_to_xf(aln: AlnFile) -> torch.Tensor:
    """IMOD raw-to-aligned transforms ``(t, 2, 3)`` equivalent to the .aln (as AreTomo's -OutImod)."""
    a = rotation_matrix_2d(-torch.as_tensor(aln.rot_deg, dtype=torch.float64))
    t = torch.as_tensor(aln.shift_xy_px, dtype=torch.float64)
    d = -(a @ t[..., None])
    return torch.cat([a, d], -1)


def xf_to_aln_columns(xf: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`aln_to_xf` for rotation-only transforms: (ROT degrees, (TX, TY))."""
    from tomoforge.core.geometry import xf_rotation_deg

    xf = torch.as_tensor(xf, dtype=torch.float64)
    rot = xf_rotation_deg(xf)
    a = rotation_matrix_2d(-rot)
    t = -(torch.linalg.inv(a) @ xf[..., :2, 2:3])[..., 0]
    return rot.numpy(), t.numpy()


def aln_from_alignment(xf, tilt_deg, *, raw_size_xyz: tuple[int, int, int], sections=None,
                       dark_frames: list[tuple[int, int, float]] | None = None, alpha_offset_deg: float | None = None,
                       thickness_px: int | None = None) -> AlnFile:
    """An :class:`AlnFile` (current layout) for rotation+shift transforms ``(t, 2, 3)`` of the kept views.

    ``sections`` are the kept views' 0-based indices in the raw stack (default 0..t-1)."""
    rot, shift = xf_to_aln_columns(xf)
    t = len(rot)
    one = np.ones(t)
    sec = np.arange(t) if sections is None else np.asarray(sections, dtype=np.int64)
    return AlnFile(layout="v2", section=sec, rot_deg=np.asarray(rot), gmag=one.copy(), shift_xy_px=np.asarray(shift),
                   smean=one.copy(), sfit=one.copy(), scale=one.copy(), base=np.zeros(t),
                   tilt_deg=np.asarray(tilt_deg, dtype=np.float64), raw_size=tuple(int(v) for v in raw_size_xyz),
                   dark_frames=list(dark_frames or []), alpha_offset_deg=alpha_offset_deg,
                   beta_offset_deg=0.0 if alpha_offset_deg is not None else None, thickness_px=thickness_px)
