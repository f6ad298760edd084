"""IMOD alignment text files: .rawtlt/.tlt/.xtilt, .xf/.prexf/.prexg/.tltxf, .zfac, .resid, fid.xyz, local.xf.

Conventions (see core/geometry.py): an ``.xf`` row ``A11 A12 A21 A22 DX DY`` maps raw to aligned pixel
coordinates about the image centre ``(N-1)/2``; transforms are returned as ``(v, 2, 3)`` float64 tensors
``[[A11, A12, DX], [A21, A22, DY]]``. Angles are degrees, one view per line, in stack order.
IMOD writes ``.xf`` as ``%12.7f`` x4 then ``%12.3f`` x2; AreTomo's ``-OutImod`` writes ``%9.3f`` x4
``%9.2f`` x2. Both are read (any whitespace-separated six numbers).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict

from tomoforge.errors import ParseError
from tomoforge.io._text import floats, numeric_rows, read_lines, to_float, to_int
from tomoforge.io.atomic import write_text_atomic

# ---------------------------------------------------------------------------------------- tilt angles


def read_tilt_angles(path: str | Path, n_views: int | None = None) -> np.ndarray:
    """Angles (degrees) from a .rawtlt, .tlt or .xtilt file: one number per non-empty line."""
    lines = read_lines(path)
    rows, _ = numeric_rows(path, lines, 1, what="tilt angles")
    angles = np.array([r[0] for r in rows], dtype=np.float64)
    if angles.size == 0:
        raise ParseError("no tilt angles", path=path, expected="one angle per line")
    _check_views(path, len(angles), n_views)
    return angles


def write_tilt_angles(path: str | Path, angles, *, decimals: int = 2) -> Path:
    """Write angles one per line as IMOD does (``%7.2f``; more decimals on request)."""
    width = max(7, decimals + 5)
    return write_text_atomic(path, "".join(f"{float(a):{width}.{decimals}f}\n" for a in np.asarray(angles)))


read_rawtlt = read_tlt = read_xtilt = read_tilt_angles
write_rawtlt = write_tlt = write_xtilt = write_tilt_angles


def _check_views(path, n: int, n_views: int | None) -> None:
    if n_views is not None and n != n_views:
        raise ParseError(f"{n} views in the file but the stack has {n_views}", path=path,
                         expected=f"{n_views} lines")


# ----------------------------------------------------------------------------------------- transforms


def read_xf(path: str | Path, n_views: int | None = None) -> torch.Tensor:
    """Transforms ``(v, 2, 3)`` from an .xf/.prexf/.prexg/.tltxf file (six numbers per line)."""
    lines = read_lines(path)
    rows, _ = numeric_rows(path, lines, 6, what="transform values")
    if not rows:
        raise ParseError("no transforms", path=path, expected="lines of A11 A12 A21 A22 DX DY")
    _check_views(path, len(rows), n_views)
    a = torch.tensor(rows, dtype=torch.float64)
    return torch.stack([torch.stack([a[:, 0], a[:, 1], a[:, 4]], -1),
                        torch.stack([a[:, 2], a[:, 3], a[:, 5]], -1)], -2)


def format_xf(xf, style: str = "imod") -> str:
    """Text of an .xf: ``imod`` (%12.7f x4, %12.3f x2) or ``aretomo`` (%9.3f x4, %9.2f x2)."""
    x = torch.as_tensor(xf, dtype=torch.float64).reshape(-1, 2, 3).tolist()
    fa, fd = {"imod": ("12.7f", "12.3f"), "aretomo": ("9.3f", "9.2f")}[style]
    out = []
    for (a11, a12, dx), (a21, a22, dy) in x:
        out.append("".join(f"{v:{fa}}" for v in (a11, a12, a21, a22)) + "".join(f"{v:{fd}}" for v in (dx, dy)))
    return "\n".join(out) + "\n"


def write_xf(path: str | Path, xf, style: str = "imod") -> Path:
    return write_text_atomic(path, format_xf(xf, style))


read_prexf = read_prexg = read_tltxf = read_xf
write_prexf = write_prexg = write_xf


def round_xf(xf, style: str = "imod") -> torch.Tensor:
    """The values as they will read back after writing in ``style`` (for exact round-trip checks)."""
    d = {"imod": (7, 3), "aretomo": (3, 2)}[style]
    x = torch.as_tensor(xf, dtype=torch.float64).clone()
    x[..., :2] = torch.round(x[..., :2] * 10 ** d[0]) / 10 ** d[0]
    x[..., 2] = torch.round(x[..., 2] * 10 ** d[1]) / 10 ** d[1]
    return x


# --------------------------------------------------------------------------------------------- zfac


def read_zfac(path: str | Path, n_views: int | None = None) -> np.ndarray:
    """Z-factors ``(v, 2)`` written by tiltalign (stretch terms applied to Z in each view)."""
    rows, _ = numeric_rows(path, read_lines(path), 2, what="z-factors")
    if not rows:
        raise ParseError("no z-factors", path=path, expected="two numbers per line")
    _check_views(path, len(rows), n_views)
    return np.array(rows, dtype=np.float64)


# -------------------------------------------------------------------------------------------- resid


@dataclass
class Residuals:
    """Fiducial residuals from tiltalign: model position and residual vector per point (pixels)."""

    x_px: np.ndarray        # (n,) fitted X position in the raw view
    y_px: np.ndarray
    view: np.ndarray        # (n,) 0-based view index
    dx_px: np.ndarray       # (n,) residual (observed - projected)
    dy_px: np.ndarray

    def __len__(self) -> int:
        return len(self.view)


def read_resid(path: str | Path) -> Residuals:
    """Read a .resid file: a ``N residuals`` header then ``x y view dx dy`` lines."""
    lines = read_lines(path)
    first = next((i for i, ln in enumerate(lines) if ln.strip()), None)
    if first is None:
        raise ParseError("empty file", path=path, expected="'N residuals' header")
    head = lines[first].split()
    if len(head) < 2 or head[1].lower() != "residuals":
        raise ParseError(f"header '{lines[first].strip()[:40]}'", path=path, line=first + 1,
                         expected="'N residuals'")
    n = to_int(head[0], path, first + 1, "count")
    rows, _ = numeric_rows(path, lines, 5, skip=first + 1, what="residual values")
    if len(rows) != n:
        raise ParseError(f"header says {n} residuals but {len(rows)} lines follow", path=path,
                         line=first + 1)
    a = np.array(rows, dtype=np.float64).reshape(-1, 5)
    if np.any(a[:, 2] != np.round(a[:, 2])):
        raise ParseError("view numbers must be integers", path=path)
    return Residuals(a[:, 0], a[:, 1], a[:, 2].astype(np.int64), a[:, 3], a[:, 4])


def write_resid(path: str | Path, res: Residuals) -> Path:
    out = [f"{len(res):6d} residuals"]
    for x, y, v, dx, dy in zip(res.x_px, res.y_px, res.view, res.dx_px, res.dy_px, strict=False):
        out.append(f"{x:10.2f}{y:10.2f}{int(v):5d}{dx:8.2f}{dy:8.2f}")
    return write_text_atomic(path, "\n".join(out) + "\n")


# ----------------------------------------------------------------------------------------- fid.xyz


class FiducialPoint3D(BaseModel):
    """One fiducial's 3D position from tiltalign (unbinned pixels, X,Y,Z with Z the thickness)."""

    model_config = ConfigDict(extra="forbid")
    point: int
    x_px: float
    y_px: float
    z_px: float
    object: int
    contour: int


class FiducialXYZ(BaseModel):
    model_config = ConfigDict(extra="forbid")
    points: list[FiducialPoint3D]
    pixel_size_nm: float | None = None
    image_size_xy: tuple[int, int] | None = None


def read_fid_xyz(path: str | Path) -> FiducialXYZ:
    """Read tiltalign's fid.xyz: ``point x y z object contour`` with ``Pix: size Dim: nx ny`` on line 1."""
    lines = read_lines(path)
    pts, pix, dim = [], None, None
    for i, raw in enumerate(lines, start=1):
        toks = raw.split()
        if not toks:
            continue
        if "Pix:" in toks:
            k = toks.index("Pix:")
            if k + 1 >= len(toks):
                raise ParseError("'Pix:' without a value", path=path, line=i)
            pix = to_float(toks[k + 1], path, i, "Pix")
            if "Dim:" in toks:
                m = toks.index("Dim:")
                if m + 2 >= len(toks):
                    raise ParseError("'Dim:' needs two sizes", path=path, line=i)
                dim = (to_int(toks[m + 1], path, i, "Dim"), to_int(toks[m + 2], path, i, "Dim"))
            toks = toks[:k]
        if len(toks) != 6:
            raise ParseError(f"{len(toks)} values", path=path, line=i, expected="point x y z object contour")
        v = floats(toks, path, i)
        pts.append(FiducialPoint3D(point=to_int(toks[0], path, i), x_px=v[1], y_px=v[2], z_px=v[3],
                                   object=to_int(toks[4], path, i), contour=to_int(toks[5], path, i)))
    if not pts:
        raise ParseError("no fiducial points", path=path)
    return FiducialXYZ(points=pts, pixel_size_nm=pix, image_size_xy=dim)


def write_fid_xyz(path: str | Path, fid: FiducialXYZ) -> Path:
    out = []
    for k, p in enumerate(fid.points):
        line = f"{p.point:4d}{p.x_px:10.2f}{p.y_px:10.2f}{p.z_px:10.2f}{p.object:7d}{p.contour:5d}"
        if k == 0 and fid.pixel_size_nm is not None:
            line += f" Pix:{fid.pixel_size_nm:12.5f}"
            if fid.image_size_xy is not None:
                line += f" Dim:{fid.image_size_xy[0]:6d}{fid.image_size_xy[1]:6d}"
        out.append(line)
    return write_text_atomic(path, "\n".join(out) + "\n")


# ----------------------------------------------------------------------------------------- local.xf


@dataclass
class LocalAlignment:
    """tiltalign local alignments: a grid of areas, each with per-view corrections."""

    n_areas_xy: tuple[int, int]
    start_xy: tuple[int, int]          # centre of the first area (pixels)
    spacing_xy: tuple[int, int]
    pixel_size_nm: float
    delta_tilt_deg: np.ndarray          # (areas, v)
    delta_xtilt_deg: np.ndarray | None  # (areas, v) when present
    zfac: np.ndarray | None             # (areas, v, 2) when present
    xf: torch.Tensor                    # (areas, v, 2, 3)

    @property
    def n_views(self) -> int:
        return int(self.delta_tilt_deg.shape[1])


def read_local_xf(path: str | Path, n_views: int | None = None) -> LocalAlignment:
    """Read a local.xf. Header: ``nx ny xstart ystart dx dy ifDelXtilt pixel ifZfac``; then for each area
    the delta tilts (v), the delta X-tilts (v, if flagged), z-factor pairs (2v, if flagged) and v
    transforms. The view count is taken from ``n_views`` or inferred from the token count."""
    lines = read_lines(path)
    first = next((i for i, ln in enumerate(lines) if ln.strip()), None)
    if first is None:
        raise ParseError("empty file", path=path, expected="a local-alignment header")
    h = lines[first].split()
    hl = first + 1
    if not 6 <= len(h) <= 9:
        raise ParseError(f"header has {len(h)} values", path=path, line=hl,
                         expected="nx ny xstart ystart xspacing yspacing [ifDelAlpha pixel ifZfac]")
    nx, ny, xs, ys, dx, dy = (to_int(t, path, hl, "header") for t in h[:6])
    if_dx = to_int(h[6], path, hl, "ifDelAlpha") if len(h) > 6 else 0
    pix = to_float(h[7], path, hl, "pixel size") if len(h) > 7 else 0.0
    if_z = to_int(h[8], path, hl, "ifZfac") if len(h) > 8 else 0
    if nx < 1 or ny < 1 or nx * ny > 100000 or if_dx not in (0, 1) or if_z not in (0, 1):
        raise ParseError("implausible local-alignment header", path=path, line=hl)
    body = [(t, i) for i, ln in enumerate(lines[first + 1:], start=first + 2) for t in ln.split()]
    per_view = 1 + if_dx + 2 * if_z + 6
    n_areas = nx * ny
    if n_views is None:
        if len(body) % (n_areas * per_view):
            raise ParseError(f"{len(body)} values do not divide into {n_areas} areas", path=path,
                             line=body[-1][1] if body else 1)
        n_views = len(body) // (n_areas * per_view)
    if n_views < 1 or len(body) != n_areas * per_view * n_views:
        raise ParseError(f"{len(body)} values after the header", path=path, line=body[-1][1] if body else 1,
                         expected=f"{n_areas * per_view * n_views} for {n_areas} areas x {n_views} views")
    vals = np.array([to_float(t, path, ln) for t, ln in body], dtype=np.float64).reshape(n_areas, -1)
    o = 0
    dtilt = vals[:, o:o + n_views]
    o += n_views
    dxt = None
    if if_dx:
        dxt = vals[:, o:o + n_views]
        o += n_views
    zf = None
    if if_z:
        zf = vals[:, o:o + 2 * n_views].reshape(n_areas, n_views, 2)
        o += 2 * n_views
    r = torch.as_tensor(vals[:, o:o + 6 * n_views].reshape(n_areas, n_views, 6))
    xf = torch.stack([torch.stack([r[..., 0], r[..., 1], r[..., 4]], -1),
                      torch.stack([r[..., 2], r[..., 3], r[..., 5]], -1)], -2)
    return LocalAlignment((nx, ny), (xs, ys), (dx, dy), pix, dtilt, dxt, zf, xf)
