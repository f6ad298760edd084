"""RELION 5 tomography STAR files, and the exact IMOD <-> RELION 5 geometry conversion.

Files: ``tomograms.star`` (``data_global``) with per-tilt-series STARs (``data_<TS>``), per-movie motion
STARs (``data_general``/``data_global_shift``/``data_hot_pixels``), ``particles.star`` (2D-stack and 3D
variants), optimisation sets, ``postprocess.star``, ``default_pipeline.star`` and WarpTools' RELION-4
style projection-matrix ``tomograms.star`` (``rlnTomoProjX..W``).

Geometry (docs/formats.md has the derivation). RELION 5 builds, for each tilt image, the projection
``P = S(c_img + s) Rz(zrot) Ry(ytilt) Rx(xtilt) S(-c_vol)`` acting on 0-based voxel coordinates of the
unbinned tomogram, with ``c_vol = (int(w/2), int(h/2), int(d/2))``, ``c_img = (int(W/2), int(H/2))`` and
``s = (rlnTomoXShiftAngst, rlnTomoYShiftAngst) / pixel``. tomoforge/IMOD project a point ``p`` (relative to
the volume centre ``(N-1)/2``) to raw pixels ``A^-1 ((Ry(θ) Rx(α) p)_xy - d) + (N-1)/2``. Equating the two:
``zrot = ψ`` (the .xf rotation), ``ytilt = θ``, ``xtilt = α`` and
``s = -A^-1 d + δ_img - (Rz Ry Rx δ_vol)_xy`` with ``δ = (N-1)/2 - int(N/2)`` per axis
(-0.5 for even sizes, 0 for odd). Dropping the δ terms is the classic half-pixel error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from tomoforge.core.geometry import (
    euler_zyz_to_matrix,
    invert_xf,
    matrix_to_euler_zyz,
    rotation_matrix_2d,
    rotation_x,
    rotation_y,
    rotation_z,
    xf_magnification,
    xf_rotation_deg,
)
from tomoforge.errors import ParseError
from tomoforge.io._ctfutil import ordered_ctf
from tomoforge.io._text import to_float, to_int
from tomoforge.io.star import StarBlock, StarFile, read_star, write_star
from tomoforge.model.coordinates import Coordinates3D, Particle
from tomoforge.model.ctf import CtfEstimate

# ------------------------------------------------------------------------------------------ geometry


def center_offset(n: int) -> float:
    """``(N-1)/2 - int(N/2)``: IMOD/tomoforge centre minus RELION centre (-0.5 for even N, 0 for odd)."""
    return (n - 1) / 2 - (n // 2)


@dataclass
class Relion5Alignment:
    """Per-view RELION 5 alignment columns."""

    x_tilt_deg: np.ndarray
    y_tilt_deg: np.ndarray
    z_rot_deg: np.ndarray
    x_shift_a: np.ndarray
    y_shift_a: np.ndarray


def imod_to_relion5(xf, tilt_deg, *, image_size_xy: tuple[int, int], volume_size_xyz: tuple[int, int, int],
                    pixel_size_a: float, x_tilt_deg=0.0) -> Relion5Alignment:
    """Convert .xf ``(v, 2, 3)`` + tilt angles (+ X-axis tilt) to RELION 5 columns, exactly.

    Sizes are in pixels of the tilt series the .xf refers to. The .xf must be a rotation (+shift); a
    magnification other than 1 cannot be expressed in RELION 5 and raises ValueError."""
    xf = torch.as_tensor(xf, dtype=torch.float64)
    mag = xf_magnification(xf)
    if torch.any((mag - 1).abs() > 1e-3):
        raise ValueError("RELION 5 alignment cannot express a magnification other than 1")
    v = xf.shape[0]
    psi = xf_rotation_deg(xf)
    theta = torch.as_tensor(tilt_deg, dtype=torch.float64).expand(v)
    alpha = torch.as_tensor(x_tilt_deg, dtype=torch.float64).expand(v)
    inv = invert_xf(xf)
    s = inv[:, :, 2]                                                   # -A^-1 d
    d_img = torch.tensor([center_offset(image_size_xy[0]), center_offset(image_size_xy[1])],
                         dtype=torch.float64)
    d_vol = torch.tensor([center_offset(n) for n in volume_size_xyz], dtype=torch.float64)
    r = rotation_z(psi) @ rotation_y(theta) @ rotation_x(alpha)       # (v, 3, 3)
    s = s + d_img - (r @ d_vol)[:, :2]
    s_a = (s * pixel_size_a).numpy()
    return Relion5Alignment(alpha.numpy().copy(), theta.numpy().copy(), psi.numpy().copy(),
                            s_a[:, 0].copy(), s_a[:, 1].copy())


def relion5_to_imod(ali: Relion5Alignment, *, image_size_xy: tuple[int, int],
                    volume_size_xyz: tuple[int, int, int], pixel_size_a: float):
    """Inverse of :func:`imod_to_relion5`: returns ``(xf (v,2,3), tilt_deg (v,), x_tilt_deg (v,))``."""
    psi = torch.as_tensor(ali.z_rot_deg, dtype=torch.float64)
    theta = torch.as_tensor(ali.y_tilt_deg, dtype=torch.float64)
    alpha = torch.as_tensor(ali.x_tilt_deg, dtype=torch.float64)
    s = torch.stack([torch.as_tensor(ali.x_shift_a, dtype=torch.float64),
                     torch.as_tensor(ali.y_shift_a, dtype=torch.float64)], -1) / pixel_size_a
    d_img = torch.tensor([center_offset(image_size_xy[0]), center_offset(image_size_xy[1])],
                         dtype=torch.float64)
    d_vol = torch.tensor([center_offset(n) for n in volume_size_xyz], dtype=torch.float64)
    r = rotation_z(psi) @ rotation_y(theta) @ rotation_x(alpha)
    s_imod = s - d_img + (r @ d_vol)[:, :2]                           # = -A^-1 d
    a = rotation_matrix_2d(-psi)
    d = -(a @ s_imod[..., None])
    return torch.cat([a, d], -1), theta.numpy(), alpha.numpy()


def relion5_projection_matrices(ali: Relion5Alignment, *, image_size_xy: tuple[int, int],
                                volume_size_xyz: tuple[int, int, int], pixel_size_a: float) -> torch.Tensor:
    """The ``(v, 4, 4)`` matrices RELION 5 builds (voxel (x,y,z,1) -> image (x,y,·,1), 0-based pixels)."""
    v = len(ali.y_tilt_deg)
    r = (rotation_z(torch.as_tensor(ali.z_rot_deg, dtype=torch.float64))
         @ rotation_y(torch.as_tensor(ali.y_tilt_deg, dtype=torch.float64))
         @ rotation_x(torch.as_tensor(ali.x_tilt_deg, dtype=torch.float64)))
    c_vol = torch.tensor([float(n // 2) for n in volume_size_xyz], dtype=torch.float64)
    c_img = torch.tensor([float(image_size_xy[0] // 2), float(image_size_xy[1] // 2), 0.0],
                         dtype=torch.float64)
    s = torch.zeros(v, 3, dtype=torch.float64)
    s[:, 0] = torch.as_tensor(ali.x_shift_a, dtype=torch.float64) / pixel_size_a
    s[:, 1] = torch.as_tensor(ali.y_shift_a, dtype=torch.float64) / pixel_size_a
    t = c_img + s - (r @ c_vol)
    m = torch.zeros(v, 4, 4, dtype=torch.float64)
    m[:, :3, :3] = r
    m[:, :3, 3] = t
    m[:, 3, 3] = 1.0
    return m


def projection_matrices_to_relion5(matrices, *, image_size_xy: tuple[int, int],
                                   volume_size_xyz: tuple[int, int, int], pixel_size_a: float
                                   ) -> Relion5Alignment:
    """Decompose RELION-4 style matrices ``(v, 4, 4)`` (rotation part ``Rz Ry Rx``) into RELION 5 columns."""
    m = torch.as_tensor(matrices, dtype=torch.float64)
    r = m[:, :3, :3]
    beta = torch.asin((-r[:, 2, 0]).clamp(-1, 1))
    alpha = torch.atan2(r[:, 2, 1], r[:, 2, 2])
    gamma = torch.atan2(r[:, 1, 0], r[:, 0, 0])
    c_vol = torch.tensor([float(n // 2) for n in volume_size_xyz], dtype=torch.float64)
    c_img = torch.tensor([float(image_size_xy[0] // 2), float(image_size_xy[1] // 2)], dtype=torch.float64)
    s = m[:, :2, 3] - c_img + (r @ c_vol)[:, :2]
    s_a = (s * pixel_size_a).numpy()
    return Relion5Alignment(torch.rad2deg(alpha).numpy(), torch.rad2deg(beta).numpy(),
                            torch.rad2deg(gamma).numpy(), s_a[:, 0].copy(), s_a[:, 1].copy())


# --------------------------------------------------------------------------------------- tomograms.star


class RelionTomogram(BaseModel):
    """One row of a RELION 5 ``tomograms.star`` (``data_global``)."""

    model_config = ConfigDict(extra="forbid")
    tomo_name: str
    tilt_series_star: str | None = None
    voltage_kv: float | None = None
    cs_mm: float | None = None
    amplitude_contrast: float | None = None
    original_pixel_size_a: float | None = None
    tilt_series_pixel_size_a: float | None = None
    hand: float | None = None
    optics_group_name: str | None = None
    binning: float | None = None
    size_xyz: tuple[int, int, int] | None = None
    tomogram: str | None = None
    half1: str | None = None
    half2: str | None = None
    denoised: str | None = None
    etomo_directive: str | None = None
    extra: dict[str, str] = Field(default_factory=dict)


_TOMO_COLS = {
    "rlnTomoName": "tomo_name", "rlnTomoTiltSeriesStarFile": "tilt_series_star", "rlnVoltage": "voltage_kv",
    "rlnSphericalAberration": "cs_mm", "rlnAmplitudeContrast": "amplitude_contrast",
    "rlnMicrographOriginalPixelSize": "original_pixel_size_a",
    "rlnTomoTiltSeriesPixelSize": "tilt_series_pixel_size_a", "rlnTomoHand": "hand",
    "rlnOpticsGroupName": "optics_group_name", "rlnTomoTomogramBinning": "binning",
    "rlnTomoReconstructedTomogram": "tomogram", "rlnTomoReconstructedTomogramHalf1": "half1",
    "rlnTomoReconstructedTomogramHalf2": "half2", "rlnTomoReconstructedTomogramDenoised": "denoised",
    "rlnEtomoDirectiveFile": "etomo_directive",
}
_FLOAT_FIELDS = {"voltage_kv", "cs_mm", "amplitude_contrast", "original_pixel_size_a",
                 "tilt_series_pixel_size_a", "hand", "binning"}


def read_tomograms_star(path: str | Path) -> list[RelionTomogram]:
    """Rows of ``data_global`` (RELION 5, also the Import/CtfFind/Align global stars)."""
    star = read_star(path)
    b = star.block("global")
    b.require("rlnTomoName")
    out = []
    for row, ln in zip(b.rows, b.row_lines, strict=False):
        kw: dict = {"extra": {}}
        rec = dict(zip(b.labels, row, strict=False))
        for lab, val in rec.items():
            f = _TOMO_COLS.get(lab)
            if f is None:
                if lab not in ("rlnTomoSizeX", "rlnTomoSizeY", "rlnTomoSizeZ"):
                    kw["extra"][lab] = val
            elif f in _FLOAT_FIELDS:
                kw[f] = to_float(val, path, ln, lab)
            else:
                kw[f] = val
        if all(k in rec for k in ("rlnTomoSizeX", "rlnTomoSizeY", "rlnTomoSizeZ")):
            kw["size_xyz"] = tuple(to_int(rec[k], path, ln, k) for k in ("rlnTomoSizeX", "rlnTomoSizeY",
                                                                        "rlnTomoSizeZ"))
        out.append(RelionTomogram(**kw))
    return out


def write_tomograms_star(path: str | Path, tomograms: list[RelionTomogram]) -> Path:
    """Write ``data_global`` with the columns any of the rows has (RELION needs the same set per row)."""
    cols: dict[str, list] = {}
    inv = {v: k for k, v in _TOMO_COLS.items()}
    fields = [f for f in RelionTomogram.model_fields if f not in ("extra", "size_xyz")]
    for f in fields:
        vals = [getattr(t, f) for t in tomograms]
        if any(v is not None for v in vals):
            if any(v is None for v in vals):
                raise ValueError(f"column {inv[f]} is missing for some tomograms")
            cols[inv[f]] = vals
    if any(t.size_xyz is not None for t in tomograms):
        for k, lab in enumerate(("rlnTomoSizeX", "rlnTomoSizeY", "rlnTomoSizeZ")):
            cols[lab] = [t.size_xyz[k] for t in tomograms]
    for lab in sorted({k for t in tomograms for k in t.extra}):
        cols[lab] = [t.extra.get(lab, "") for t in tomograms]
    return write_star(path, {"global": cols})


# ------------------------------------------------------------------------------------ tilt-series STAR


class RelionTilt(BaseModel):
    """One tilt image row of a per-tilt-series STAR."""

    model_config = ConfigDict(extra="forbid")
    movie: str | None = None
    frame_count: int | None = None
    nominal_tilt_deg: float | None = None
    nominal_tilt_axis_deg: float | None = None
    pre_exposure_e_per_a2: float | None = None
    nominal_defocus_um: float | None = None
    micrograph: str | None = None
    even: str | None = None
    odd: str | None = None
    motion_metadata: str | None = None
    ctf: CtfEstimate | None = None
    ctf_scale_factor: float | None = None
    x_tilt_deg: float | None = None
    y_tilt_deg: float | None = None
    z_rot_deg: float | None = None
    x_shift_a: float | None = None
    y_shift_a: float | None = None
    extra: dict[str, str] = Field(default_factory=dict)


_TILT_COLS = {
    "rlnMicrographMovieName": ("movie", str), "rlnTomoTiltMovieFrameCount": ("frame_count", int),
    "rlnTomoNominalStageTiltAngle": ("nominal_tilt_deg", float),
    "rlnTomoNominalTiltAxisAngle": ("nominal_tilt_axis_deg", float),
    "rlnMicrographPreExposure": ("pre_exposure_e_per_a2", float),
    "rlnTomoNominalDefocus": ("nominal_defocus_um", float), "rlnMicrographName": ("micrograph", str),
    "rlnMicrographNameEven": ("even", str), "rlnMicrographNameOdd": ("odd", str),
    "rlnMicrographMetadata": ("motion_metadata", str), "rlnCtfScalefactor": ("ctf_scale_factor", float),
    "rlnTomoXTilt": ("x_tilt_deg", float), "rlnTomoYTilt": ("y_tilt_deg", float),
    "rlnTomoZRot": ("z_rot_deg", float), "rlnTomoXShiftAngst": ("x_shift_a", float),
    "rlnTomoYShiftAngst": ("y_shift_a", float),
}
_CTF_COLS = ("rlnDefocusU", "rlnDefocusV", "rlnDefocusAngle", "rlnPhaseShift", "rlnCtfMaxResolution",
             "rlnCtfFigureOfMerit")


def read_tilt_series_star(path: str | Path, name: str | None = None) -> list[RelionTilt]:
    """Rows of a per-tilt-series STAR (block ``data_<name>``, or the only/first block)."""
    star = read_star(path)
    b = star.block(name) if name is not None else star.first()
    out = []
    for row, ln in zip(b.rows, b.row_lines, strict=False):
        rec = dict(zip(b.labels, row, strict=False))
        kw: dict = {"extra": {}}
        for lab, val in rec.items():
            if lab in _TILT_COLS:
                f, typ = _TILT_COLS[lab]
                kw[f] = to_float(val, path, ln, lab) if typ is float else (
                    to_int(val, path, ln, lab) if typ is int else val)
            elif lab not in _CTF_COLS:
                kw["extra"][lab] = val
        if "rlnDefocusU" in rec:
            du = to_float(rec["rlnDefocusU"], path, ln, "rlnDefocusU")
            kw["ctf"] = ordered_ctf(
                du, to_float(rec.get("rlnDefocusV", rec["rlnDefocusU"]), path, ln, "rlnDefocusV"),
                to_float(rec.get("rlnDefocusAngle", "0"), path, ln, "rlnDefocusAngle"),
                phase_shift_deg=to_float(rec.get("rlnPhaseShift", "0"), path, ln, "rlnPhaseShift"),
                fit_resolution_a=(to_float(rec["rlnCtfMaxResolution"], path, ln, "rlnCtfMaxResolution")
                                  if "rlnCtfMaxResolution" in rec else None),
                fit_score=(to_float(rec["rlnCtfFigureOfMerit"], path, ln, "rlnCtfFigureOfMerit")
                           if "rlnCtfFigureOfMerit" in rec else None))
        out.append(RelionTilt(**kw))
    return out


def alignment_from_tilts(tilts: list[RelionTilt], path="") -> Relion5Alignment:
    """The five alignment columns; ParseError if any is missing."""
    need = ("x_tilt_deg", "y_tilt_deg", "z_rot_deg", "x_shift_a", "y_shift_a")
    for t in tilts:
        for f in need:
            if getattr(t, f) is None:
                lab = next(k for k, (ff, _) in _TILT_COLS.items() if ff == f)
                raise ParseError(f"no '_{lab}' column: the tilt series is not aligned", path=path, field=lab)
    return Relion5Alignment(*(np.array([getattr(t, f) for t in tilts], dtype=np.float64) for f in need))


def write_tilt_series_star(path: str | Path, name: str, tilts: list[RelionTilt]) -> Path:
    """Write ``data_<name>`` with the columns the rows carry."""
    cols: dict[str, list] = {}
    for lab, (f, _typ) in _TILT_COLS.items():
        vals = [getattr(t, f) for t in tilts]
        if any(v is not None for v in vals):
            if any(v is None for v in vals):
                raise ValueError(f"column {lab} is missing for some tilts")
            cols[lab] = vals
    if any(t.ctf is not None for t in tilts):
        if any(t.ctf is None for t in tilts):
            raise ValueError("CTF is missing for some tilts")
        cols["rlnDefocusU"] = [t.ctf.defocus_u_a for t in tilts]
        cols["rlnDefocusV"] = [t.ctf.defocus_v_a for t in tilts]
        cols["rlnCtfAstigmatism"] = [abs(t.ctf.defocus_u_a - t.ctf.defocus_v_a) for t in tilts]
        cols["rlnDefocusAngle"] = [t.ctf.astigmatism_angle_deg for t in tilts]
        cols["rlnPhaseShift"] = [t.ctf.phase_shift_deg for t in tilts]
        if all(t.ctf.fit_score is not None for t in tilts):
            cols["rlnCtfFigureOfMerit"] = [t.ctf.fit_score for t in tilts]
        if all(t.ctf.fit_resolution_a is not None for t in tilts):
            cols["rlnCtfMaxResolution"] = [t.ctf.fit_resolution_a for t in tilts]
    for lab in sorted({k for t in tilts for k in t.extra} - set(cols)):
        cols[lab] = [t.extra.get(lab, "") for t in tilts]
    return write_star(path, {name: cols})


# ------------------------------------------------------------------------------------------ motion STAR


@dataclass
class RelionMotion:
    general: dict[str, str]
    frame_number: np.ndarray                # (f,) 1-based
    shift_xy_px: np.ndarray                 # (f, 2) in unbinned movie pixels
    hot_pixels_xy: np.ndarray | None = None


def read_motion_star(path: str | Path) -> RelionMotion:
    star = read_star(path)
    g = star.block("general")
    s = star.block("global_shift")
    s.require("rlnMicrographFrameNumber", "rlnMicrographShiftX", "rlnMicrographShiftY")
    hot = None
    if "hot_pixels" in star:
        h = star["hot_pixels"]
        h.require("rlnCoordinateX", "rlnCoordinateY")
        hot = np.stack([h.floats("rlnCoordinateX"), h.floats("rlnCoordinateY")], -1)
    return RelionMotion(dict(g.pairs), s.ints("rlnMicrographFrameNumber"),
                        np.stack([s.floats("rlnMicrographShiftX"), s.floats("rlnMicrographShiftY")], -1), hot)


def write_motion_star(path: str | Path, motion: RelionMotion) -> Path:
    blocks: dict = {"general": dict(motion.general),
                    "global_shift": {"rlnMicrographFrameNumber": [int(f) for f in motion.frame_number],
                                     "rlnMicrographShiftX": [float(x) for x in motion.shift_xy_px[:, 0]],
                                     "rlnMicrographShiftY": [float(y) for y in motion.shift_xy_px[:, 1]]}}
    if motion.hot_pixels_xy is not None and len(motion.hot_pixels_xy):
        blocks["hot_pixels"] = {"rlnCoordinateX": [float(x) for x in motion.hot_pixels_xy[:, 0]],
                                "rlnCoordinateY": [float(y) for y in motion.hot_pixels_xy[:, 1]]}
    return write_star(path, blocks)


# ------------------------------------------------------------------------------------------ particles


@dataclass
class RelionParticles:
    """particles.star: general flags, optics rows and the particle table (string records)."""

    are_2d_stacks: bool
    optics: list[dict[str, str]]
    particles: StarBlock
    general: dict[str, str] = field(default_factory=dict)


def read_particles_star(path: str | Path) -> RelionParticles:
    """Read a RELION 5/WarpTools particles.star (2D-stack or 3D) or a picker annotation STAR."""
    star = read_star(path)
    if "particles" in star:
        p = star["particles"]
    elif len(star) == 1:
        p = star.first()
    else:
        raise ParseError("no data_particles block", path=path, expected="a RELION particles STAR")
    p.require("rlnTomoName")
    has_center = all(p.has(f"rlnCenteredCoordinate{a}Angst") for a in "XYZ")
    has_px = all(p.has(f"rlnCoordinate{a}") for a in "XYZ")
    if not (has_center or has_px):
        raise ParseError("no particle coordinates", path=path, line=p.line,
                         field="rlnCenteredCoordinateXAngst",
                         expected="rlnCenteredCoordinateX/Y/ZAngst or rlnCoordinateX/Y/Z columns")
    general = dict(star["general"].pairs) if "general" in star else {}
    flag = general.get("rlnTomoSubTomosAre2DStacks", "0")
    optics = star["optics"].records() if "optics" in star else []
    return RelionParticles(are_2d_stacks=flag.strip() == "1", optics=optics, particles=p, general=general)


def relion_matrix(rot_deg, tilt_deg, psi_deg) -> torch.Tensor:
    """RELION's ``Euler_angles2matrix`` ``(..., 3, 3)``: maps particle coordinates to tomogram coordinates
    (``ParticleSet::getMatrix3x3``). It is the transpose of tomoforge's ``euler_zyz_to_matrix`` of the
    same three numbers, so RELION angles are converted through this matrix, never copied."""
    m = euler_zyz_to_matrix(torch.as_tensor(rot_deg, dtype=torch.float64), torch.as_tensor(tilt_deg, dtype=torch.float64),
                            torch.as_tensor(psi_deg, dtype=torch.float64))
    return m.transpose(-1, -2)


def relion_angles_from_matrix(matrix) -> torch.Tensor:
    """Inverse of :func:`relion_matrix`: (rot, tilt, psi) degrees ``(..., 3)``."""
    return matrix_to_euler_zyz(torch.as_tensor(matrix, dtype=torch.float64).transpose(-1, -2))


def particles_to_coordinates(parts: RelionParticles, tomograms: dict[str, RelionTomogram] | None = None,
                             *, pixel_size_a: float | None = None) -> list[Coordinates3D]:
    """Per-tomogram picks in tomoforge form (Å from the (0,0,0) voxel centre, ZYZ angles).

    Centred coordinates (Å from RELION's centre ``int(N/2)`` of the unbinned tomogram) need
    ``tomograms`` (for rlnTomoSizeX/Y/Z and the pixel size); pixel coordinates need ``pixel_size_a``
    (or the tomogram's tilt-series pixel size times binning). The particle origin is subtracted
    (RELION's position is coordinate - origin). The orientation is RELION's ``A_subtomogram @ A_particle``
    (:func:`relion_matrix` of rlnTomoSubtomogram* and rlnAngle*), expressed as tomoforge ZYZ angles."""
    b = parts.particles
    path = b.path
    names = b.column("rlnTomoName")
    n = len(names)
    zeros = np.zeros(n)

    def col(lab):
        return b.floats(lab) if b.has(lab) else zeros

    r = relion_matrix(col("rlnAngleRot"), col("rlnAngleTilt"), col("rlnAnglePsi"))
    if b.has("rlnTomoSubtomogramRot"):
        r = relion_matrix(col("rlnTomoSubtomogramRot"), col("rlnTomoSubtomogramTilt"),
                          col("rlnTomoSubtomogramPsi")) @ r
    eul = matrix_to_euler_zyz(r).numpy() if n else np.zeros((0, 3))
    origin = np.stack([col(f"rlnOrigin{a}Angst") for a in "XYZ"], -1)
    centered = all(b.has(f"rlnCenteredCoordinate{a}Angst") for a in "XYZ")
    if centered:
        xyz = np.stack([b.floats(f"rlnCenteredCoordinate{a}Angst") for a in "XYZ"], -1)
    else:
        xyz = np.stack([b.floats(f"rlnCoordinate{a}") for a in "XYZ"], -1)
    score = b.floats("rlnMaxValueProbDistribution") if b.has("rlnMaxValueProbDistribution") else None
    half = b.ints("rlnRandomSubset") if b.has("rlnRandomSubset") else None
    by_tomo: dict[str, list[Particle]] = {}
    pix_by: dict[str, float] = {}
    for k, name in enumerate(names):
        tomo = (tomograms or {}).get(name)
        if centered:
            if tomo is None or tomo.size_xyz is None or tomo.tilt_series_pixel_size_a is None:
                raise ParseError(f"tomogram '{name}' needs rlnTomoSizeX/Y/Z and rlnTomoTiltSeriesPixelSize "
                                 "to place centred coordinates", path=path, line=b.row_lines[k])
            p = tomo.tilt_series_pixel_size_a
            pos = xyz[k] - origin[k] + np.array([(s // 2) * p for s in tomo.size_xyz])
            pix_by[name] = p
        else:
            p = pixel_size_a
            if p is None and tomo is not None and tomo.tilt_series_pixel_size_a is not None:
                p = tomo.tilt_series_pixel_size_a * (tomo.binning or 1.0)
            if p is None:
                raise ParseError("pixel coordinates need a pixel size", path=path, line=b.row_lines[k],
                                 field="rlnCoordinateX", expected="pixel_size_a or a tomograms.star")
            pos = xyz[k] * p - origin[k]
            pix_by[name] = p
        h = int(half[k]) if half is not None and int(half[k]) in (1, 2) else None
        by_tomo.setdefault(name, []).append(Particle(
            x_a=float(pos[0]), y_a=float(pos[1]), z_a=float(pos[2]), rot_deg=float(eul[k, 0]),
            tilt_deg=float(eul[k, 1]), psi_deg=float(eul[k, 2]),
            score=float(score[k]) if score is not None else None, half_set=h))
    return [Coordinates3D(ts_id=name, particles=ps, pixel_size_a=pix_by[name], method="relion-import")
            for name, ps in by_tomo.items()]


def write_particles_star(path: str | Path, coords: list[Coordinates3D], tomograms: dict[str, RelionTomogram],
                         *, box_size_px: int = 64, binning: float = 1.0) -> Path:
    """RELION 5 3D-variant particles.star (centred coordinates in Å, no origins)."""
    rows: dict[str, list] = {k: [] for k in (
        "rlnTomoName", "rlnCenteredCoordinateXAngst", "rlnCenteredCoordinateYAngst",
        "rlnCenteredCoordinateZAngst", "rlnAngleRot", "rlnAngleTilt", "rlnAnglePsi", "rlnOpticsGroup",
        "rlnTomoParticleName")}
    halves = []
    groups: dict[str, int] = {}
    for c in coords:
        t = tomograms[c.ts_id]
        if t.size_xyz is None or t.tilt_series_pixel_size_a is None:
            raise ValueError(f"tomogram {c.ts_id} needs size_xyz and tilt_series_pixel_size_a")
        groups.setdefault(t.optics_group_name or "optics1", len(groups) + 1)
        off = [(s // 2) * t.tilt_series_pixel_size_a for s in t.size_xyz]
        for k, p in enumerate(c.particles):
            rot, tilt, psi = relion_angles_from_matrix(euler_zyz_to_matrix(p.rot_deg, p.tilt_deg, p.psi_deg)).tolist()
            rows["rlnTomoName"].append(c.ts_id)
            for j, a in enumerate("XYZ"):
                rows[f"rlnCenteredCoordinate{a}Angst"].append((p.x_a, p.y_a, p.z_a)[j] - off[j])
            rows["rlnAngleRot"].append(rot)
            rows["rlnAngleTilt"].append(tilt)
            rows["rlnAnglePsi"].append(psi)
            rows["rlnOpticsGroup"].append(groups[t.optics_group_name or "optics1"])
            rows["rlnTomoParticleName"].append(f"{c.ts_id}/{k + 1}")
            halves.append(p.half_set)
    if halves and all(h is not None for h in halves):
        rows["rlnRandomSubset"] = halves
    first = next(iter(tomograms.values()))
    pix = first.tilt_series_pixel_size_a or 1.0
    optics = {"rlnOpticsGroup": list(groups.values()), "rlnOpticsGroupName": list(groups.keys()),
              "rlnVoltage": [first.voltage_kv or 300.0] * len(groups),
              "rlnSphericalAberration": [first.cs_mm or 2.7] * len(groups),
              "rlnAmplitudeContrast": [first.amplitude_contrast or 0.1] * len(groups),
              "rlnTomoTiltSeriesPixelSize": [pix] * len(groups),
              "rlnImageDimensionality": [3] * len(groups),
              "rlnTomoSubtomogramBinning": [binning] * len(groups),
              "rlnImagePixelSize": [pix * binning] * len(groups), "rlnImageSize": [box_size_px] * len(groups)}
    return write_star(path, {"general": {"rlnTomoSubTomosAre2DStacks": 0}, "optics": optics,
                             "particles": rows})


# --------------------------------------------------------------------- optimisation sets, postprocess


def read_optimisation_set(path: str | Path) -> dict[str, str]:
    """File names of an optimisation set, e.g. {'rlnTomoParticlesFile': ..., 'rlnTomoTomogramsFile': ...}.

    Accepts the unlooped form and the single-row loop form."""
    star = read_star(path)
    b = star.first()
    if b.pairs:
        out = dict(b.pairs)
    elif b.is_loop and len(b.rows) == 1:
        out = dict(zip(b.labels, b.rows[0], strict=False))
    else:
        raise ParseError("an optimisation set has one value per file", path=path, line=b.line,
                         expected="'_rlnTomo...File name' pairs")
    if not any(k.startswith("rlnTomo") and k.endswith("File") for k in out):
        raise ParseError("no _rlnTomo...File entries", path=path, line=b.line,
                         field="rlnTomoParticlesFile")
    return out


def write_optimisation_set(path: str | Path, files: dict[str, str]) -> Path:
    return write_star(path, {"": dict(files)})


@dataclass
class PostProcess:
    final_resolution_a: float
    general: dict[str, str]
    resolution_a: np.ndarray        # (n,) from data_fsc
    fsc_corrected: np.ndarray
    fsc: dict[str, np.ndarray] = field(default_factory=dict)


def read_postprocess(path: str | Path) -> PostProcess:
    star = read_star(path)
    g = star.block("general")
    res = g.float_value("rlnFinalResolution")
    f = star.block("fsc")
    f.require("rlnAngstromResolution", "rlnFourierShellCorrelationCorrected")
    fsc = {lab: f.floats(lab) for lab in f.labels}
    return PostProcess(res, dict(g.pairs), fsc["rlnAngstromResolution"],
                       fsc["rlnFourierShellCorrelationCorrected"], fsc)


def write_postprocess(path: str | Path, final_resolution_a: float, *, half1: str, half2: str,
                      postprocessed_map: str, resolution_a, fsc_corrected, bfactor: float = 0.0,
                      mask: str | None = None, extra_fsc: dict[str, list] | None = None) -> Path:
    res = np.asarray(resolution_a, dtype=np.float64)
    general = {"rlnFinalResolution": float(final_resolution_a), "rlnBfactorUsedForSharpening": float(bfactor),
               "rlnUnfilteredMapHalf1": half1, "rlnUnfilteredMapHalf2": half2,
               "rlnPostprocessedMap": postprocessed_map}
    if mask:
        general["rlnMaskName"] = mask
    fsc = {"rlnSpectralIndex": list(range(len(res))),
           "rlnResolution": [float(1 / r) if r > 0 else 0.0 for r in res],
           "rlnAngstromResolution": [float(r) for r in res],
           "rlnFourierShellCorrelationCorrected": [float(x) for x in fsc_corrected]}
    for k, v in (extra_fsc or {}).items():
        fsc[k] = [float(x) for x in v]
    return write_star(path, {"general": general, "fsc": fsc})


# ----------------------------------------------------------------------------------------- pipeline


@dataclass
class Pipeline:
    job_counter: int
    processes: list[dict[str, str]]     # name, alias, type, status
    nodes: list[dict[str, str]]
    input_edges: list[tuple[str, str]]
    output_edges: list[tuple[str, str]]


def read_pipeline(path: str | Path) -> Pipeline:
    star = read_star(path)
    g = star.block("pipeline_general")
    p = star.block("pipeline_processes")
    p.require("rlnPipeLineProcessName", "rlnPipeLineProcessTypeLabel")
    procs = [{"name": r["rlnPipeLineProcessName"], "alias": r.get("rlnPipeLineProcessAlias", "None"),
              "type": r["rlnPipeLineProcessTypeLabel"], "status": r.get("rlnPipeLineProcessStatusLabel", "")}
             for r in p.records()]
    nodes = star["pipeline_nodes"].records() if "pipeline_nodes" in star else []

    def edges(name, a, b):
        if name not in star:
            return []
        blk = star[name]
        blk.require(a, b)
        return list(zip(blk.column(a), blk.column(b), strict=False))

    return Pipeline(g.int_value("rlnPipeLineJobCounter"), procs, nodes,
                    edges("pipeline_input_edges", "rlnPipeLineEdgeFromNode", "rlnPipeLineEdgeProcess"),
                    edges("pipeline_output_edges", "rlnPipeLineEdgeProcess", "rlnPipeLineEdgeToNode"))


def read_job_star(path: str | Path) -> tuple[str, dict[str, str]]:
    """(job type label, {option: value}) from a RELION job.star."""
    star = read_star(path)
    j = star.block("job")
    o = star.block("joboptions_values")
    o.require("rlnJobOptionVariable", "rlnJobOptionValue")
    return j.value("rlnJobTypeLabel"), dict(zip(o.column("rlnJobOptionVariable"), o.column("rlnJobOptionValue"), strict=False))


# --------------------------------------------------------------- WarpTools projection-matrix tomograms


@dataclass
class ProjectionMatrixTomogram:
    name: str
    matrices: np.ndarray            # (v, 4, 4)
    ctf: list[CtfEstimate]
    pre_exposure_e_per_a2: np.ndarray
    ctf_scale_factor: np.ndarray | None
    globals: dict[str, str]


def _vector(text: str, path, line: int, label: str) -> list[float]:
    s = text.strip()
    if not (s.startswith("[") and s.endswith("]")):
        raise ParseError(f"'{s[:30]}' is not a '[a,b,c,d]' vector", path=path, line=line, field=label)
    parts = s[1:-1].split(",")
    if len(parts) != 4:
        raise ParseError(f"{len(parts)} values in a projection row", path=path, line=line, field=label,
                         expected="4")
    return [to_float(p, path, line, label) for p in parts]


def read_projection_matrix_tomograms(path: str | Path) -> list[ProjectionMatrixTomogram]:
    """WarpTools/RELION-4 ``tomograms.star``: ``data_global`` plus one ``data_<tomo>`` per tomogram."""
    star: StarFile = read_star(path)
    g = star.block("global")
    g.require("rlnTomoName")
    out = []
    for rec in g.records():
        name = rec["rlnTomoName"]
        b = star.block(name)
        b.require("rlnTomoProjX", "rlnTomoProjY", "rlnTomoProjZ", "rlnTomoProjW")
        mats = []
        for row, ln in zip(b.rows, b.row_lines, strict=False):
            r = dict(zip(b.labels, row, strict=False))
            mats.append([_vector(r[f"rlnTomoProj{a}"], path, ln, f"rlnTomoProj{a}") for a in "XYZW"])
        ctf = []
        if b.has("rlnDefocusU"):
            du, dv = b.floats("rlnDefocusU"), b.floats("rlnDefocusV") if b.has("rlnDefocusV") else None
            ang = b.floats("rlnDefocusAngle") if b.has("rlnDefocusAngle") else np.zeros(len(du))
            for k in range(len(du)):
                ctf.append(ordered_ctf(float(du[k]), float((dv if dv is not None else du)[k]), float(ang[k])))
        pre = b.floats("rlnMicrographPreExposure") if b.has("rlnMicrographPreExposure") else np.zeros(len(mats))
        sc = b.floats("rlnCtfScalefactor") if b.has("rlnCtfScalefactor") else None
        out.append(ProjectionMatrixTomogram(name, np.array(mats, dtype=np.float64).reshape(-1, 4, 4), ctf,
                                            pre, sc, rec))
    return out


def parse_visible_frames(text: str, path="", line: int | None = None) -> list[int]:
    """``[0,1,1,...]`` -> [0, 1, 1, ...] (rlnTomoVisibleFrames)."""
    s = text.strip()
    if not (s.startswith("[") and s.endswith("]")):
        raise ParseError(f"'{s[:30]}' is not a [0,1,...] list", path=path, line=line,
                         field="rlnTomoVisibleFrames")
    body = s[1:-1].strip()
    return [to_int(t, path, line, "rlnTomoVisibleFrames") for t in body.split(",")] if body else []


def dose_to_pre_exposure(accumulated_dose, dose) -> list[float]:
    """rlnMicrographPreExposure: dose received before each view."""
    return [float(a) - float(d) for a, d in zip(accumulated_dose, dose, strict=False)]

