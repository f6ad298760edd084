"""Per-view alignment arrays of a TiltSeries, and their inverse: filling views from external files."""

from __future__ import annotations

from pathlib import Path

import torch

from tomoforge.core.geometry import rotation_matrix_2d, xf_rotation_deg
from tomoforge.errors import InputError
from tomoforge.io.mrc import read_section
from tomoforge.model import TiltImage, TiltSeries, Transform2D


def transforms(ts: TiltSeries) -> torch.Tensor:
    """``(v, 2, 3)`` .xf transforms of all views in tilt order; identity where a view has none."""
    rows = [(im.transform or Transform2D()).as_rows() for im in ts.images]
    return torch.tensor(rows, dtype=torch.float64).reshape(-1, 2, 3)


def rigid_part(xf: torch.Tensor) -> torch.Tensor:
    """The rotation-only transforms ``(v, 2, 3)`` closest to ``xf`` that keep where the volume centre lands.

    RELION 5 alignments have no magnification. The raw position of the tomogram centre, ``-A^-1 d``, is kept,
    so a scale ``m`` moves a point at radius ``r`` by ``(1 - m) r`` only."""
    a = xf[..., :2, :2]
    centre = -(torch.linalg.inv(a) @ xf[..., :2, 2:3])
    rot = rotation_matrix_2d(-xf_rotation_deg(xf))
    return torch.cat([rot, -(rot @ centre)], -1)


def transform_record(xf_row: torch.Tensor) -> Transform2D:
    return Transform2D.from_rows(xf_row.tolist())


def mean_axis_deg(xf: torch.Tensor) -> float:
    """Circular mean of the tilt-axis angles the transforms ``(v, 2, 3)`` rotate to vertical."""
    a = torch.deg2rad(xf_rotation_deg(xf))
    return float(torch.rad2deg(torch.atan2(torch.sin(a).mean(), torch.cos(a).mean())))


def image_shape(ts: TiltSeries) -> tuple[int, int]:
    """(h, w) of the tilt series' images: the record's, else the first image's header."""
    if ts.image_shape_yx is not None:
        return tuple(ts.image_shape_yx)
    from tomoforge.io.mrc import mrc_header_info

    for im in ts.images:
        if im.image is not None:
            _, h, w = mrc_header_info(im.image.path).shape_zyx
            return (h, w)
    raise InputError(f"tilt series {ts.ts_id} has no images", expected="motion-corrected or imported stacks")


def read_view(ts: TiltSeries, im: TiltImage):
    """The 2D image of one view (float32 (h, w)); InputError when the view has none."""
    if im.image is None:
        raise InputError(f"tilt series {ts.ts_id}: the view at {im.tilt_angle_deg:g}° has no image",
                         expected="tilt series with images (run motion correction on movies first)")
    return read_section(Path(im.image.path), im.image.index)


def nominal_angle(im: TiltImage) -> float:
    return im.nominal_tilt_angle_deg if im.nominal_tilt_angle_deg is not None else im.tilt_angle_deg


def view_name(ts: TiltSeries, im: TiltImage) -> str:
    """A per-view file stem: the movie's stem, else ``TS_order_angle`` as EMPIAR-10164 names them."""
    if im.movie is not None:
        return Path(im.movie.path).stem
    return f"{ts.ts_id}_{im.acquisition_order:03d}_{nominal_angle(im):.1f}"
