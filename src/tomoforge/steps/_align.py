"""Shared by the alignment steps: a binned working stack, view masks, transforms back to full size, and the
landmark-model record.

Core alignment runs on a stack binned by an integer ``b`` (binned pixel ``i`` = full pixels ``b*i..b*i+b-1``).
An ``.xf`` found on it converts exactly to full size: with ``delta = (N - b*N_b)/2`` (rows/columns dropped by
binning), ``d_full = b*d_b + (A - I) delta``.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from tomoforge.core.align.warp import bin_images
from tomoforge.errors import InputError, ParamError
from tomoforge.io.mrc import read_section
from tomoforge.model import AlignmentReport, TiltSeries, Transform2D
from tomoforge.model.landmarks import LandmarkBead


def positions_to_beads(pos: torch.Tensor) -> list[LandmarkBead]:
    beads = []
    for j in range(pos.shape[1]):
        pts = [(int(v), float(pos[v, j, 0]), float(pos[v, j, 1])) for v in range(pos.shape[0])
               if bool(torch.isfinite(pos[v, j]).all())]
        if pts:
            beads.append(LandmarkBead(points=pts))
    return beads


def tilt_axis_of(ts: TiltSeries, override: float | None, field: str = "tilt_axis_deg") -> float:
    """The axis to start from (a parameter overrides the record); NaN is refused."""
    value = ts.acquisition.tilt_axis_deg if override is None else override
    if value is None or not math.isfinite(float(value)):
        raise ParamError(f"tilt series {ts.ts_id}: the tilt axis angle is {value}", field=field,
                         expected="a number of degrees (CCW from image +Y); set tilt_axis_deg or run "
                                  "tilt-axis-refine")
    return float(value)


def nominal_angles(ts: TiltSeries) -> torch.Tensor:
    return torch.tensor([im.nominal_tilt_angle_deg if im.nominal_tilt_angle_deg is not None
                         else im.tilt_angle_deg for im in ts.images], dtype=torch.float64)


def full_shape(ts: TiltSeries) -> tuple[int, int]:
    if ts.image_shape_yx is not None:
        return tuple(ts.image_shape_yx)  # type: ignore[return-value]
    im = next((i for i in ts.images if i.image is not None), None)
    if im is None:
        raise InputError(f"tilt series {ts.ts_id} has no images", expected="motion-corrected images")
    return tuple(np.asarray(read_section(im.image.path, im.image.index)).shape)  # type: ignore[return-value]


def load_working_stack(ts: TiltSeries, max_size: int = 1024, binning: int | None = None
                       ) -> tuple[torch.Tensor, int]:
    """Views in record order, binned by an integer so the larger side is at most ``max_size``; returns
    ``(images (v, h_b, w_b), b)``. Views are read and binned one at a time (4k stacks stay small)."""
    shape = full_shape(ts)
    b = binning or max(1, math.ceil(max(shape) / max_size))
    out = []
    for im in ts.images:
        if im.image is None:
            raise InputError(f"tilt series {ts.ts_id}: the view at {im.tilt_angle_deg:g}° has no image",
                             field="image", expected="motion-corrected images (run motion-correct first)")
        a = torch.from_numpy(np.array(read_section(im.image.path, im.image.index), dtype=np.float32))
        if tuple(a.shape) != tuple(shape):
            raise InputError(f"tilt series {ts.ts_id}: view {im.image.path}[{im.image.index}] is {tuple(a.shape)}, "
                             f"expected {tuple(shape)}", expected="one image size per tilt series")
        out.append(bin_images(a, b))
    return torch.stack(out), b


def skip_mask(ts: TiltSeries, images: torch.Tensor) -> tuple[torch.Tensor, list[int]]:
    """Views to leave out: excluded ones, and dark ones (mean or spread far below the series' median)."""
    excluded = torch.tensor([im.excluded for im in ts.images], dtype=torch.bool)
    mean = images.mean(dim=(-2, -1)).abs()
    sd = images.std(dim=(-2, -1))
    ok = ~excluded
    if ok.sum() == 0:
        raise InputError(f"tilt series {ts.ts_id}: every view is excluded", field="excluded",
                         expected="some views to align")
    dark = ((mean < 0.1 * mean[ok].median()) | (sd < 0.05 * sd[ok].median())) & ok
    return excluded | dark, torch.nonzero(dark).flatten().tolist()


def xf_to_full(xf_b: torch.Tensor, b: int, shape_full: tuple[int, int]) -> torch.Tensor:
    """Transforms found on the stack binned by ``b`` as transforms of the full-size images."""
    xf = xf_b.clone().to(torch.float64)
    h, w = shape_full
    delta = torch.tensor([(w - b * (w // b)) / 2, (h - b * (h // b)) / 2], dtype=torch.float64)
    a = xf[..., :2, :2]
    xf[..., :2, 2] = b * xf[..., :2, 2] + ((a - torch.eye(2, dtype=torch.float64)) @ delta[:, None])[..., 0]
    return xf


def points_to_full(p: torch.Tensor, b: int) -> torch.Tensor:
    return p * b + (b - 1) / 2


def points_to_binned(p: torch.Tensor, b: int) -> torch.Tensor:
    return (p - (b - 1) / 2) / b


def with_alignment(ts: TiltSeries, xf: torch.Tensor, *, tilt_deg: torch.Tensor | None = None,
                   tilt_axis_deg: float | None = None, note: str | None = None) -> TiltSeries:
    """A copy of ``ts`` with one transform per view (record order), refined angles and axis if given."""
    images = []
    for k, im in enumerate(ts.images):
        upd = {"transform": Transform2D.from_rows(xf[k].tolist())}
        if im.nominal_tilt_angle_deg is None:
            upd["nominal_tilt_angle_deg"] = im.tilt_angle_deg
        if tilt_deg is not None:
            upd["tilt_angle_deg"] = float(tilt_deg[k])
        images.append(im.model_copy(update=upd))
    acq = ts.acquisition
    if tilt_axis_deg is not None:
        acq = acq.model_copy(update={"tilt_axis_deg": float(tilt_axis_deg)})
    notes = list(ts.notes) + ([note] if note else [])
    # build through validation: refined angles may change the order only if they cross, which they don't
    return ts.model_copy(update={"images": images, "acquisition": acq, "notes": notes})


def transforms_of(ts: TiltSeries) -> torch.Tensor | None:
    """``(v, 2, 3)`` from the records, or None when any view lacks one."""
    if any(im.transform is None for im in ts.images):
        return None
    return torch.tensor([im.transform.as_rows() for im in ts.images], dtype=torch.float64)


def xf_to_binned(xf_full: torch.Tensor, b: int, shape_full: tuple[int, int]) -> torch.Tensor:
    """Inverse of :func:`xf_to_full`."""
    xf = xf_full.clone().to(torch.float64)
    h, w = shape_full
    delta = torch.tensor([(w - b * (w // b)) / 2, (h - b * (h // b)) / 2], dtype=torch.float64)
    a = xf[..., :2, :2]
    xf[..., :2, 2] = (xf[..., :2, 2] - ((a - torch.eye(2, dtype=torch.float64)) @ delta[:, None])[..., 0]) / b
    return xf


def alignment_report(ts: TiltSeries, sol, method: str, px_nm: float, binning: int = 1) -> AlignmentReport:
    """Per-view residuals and the solved geometry of ``sol`` (a core.align AlignmentSolution) as a record;
    ``binning`` converts the solution's pixels to the tilt series' pixels."""
    per_view = [float(r) * binning if math.isfinite(float(r)) else None for r in sol.residual_mean_per_view_px]
    return AlignmentReport(ts_id=ts.ts_id, method=method, tilt_deg=[float(t) for t in sol.tilt_deg],
                           residual_px=per_view, residual_mean_nm=sol.residual_mean_px * px_nm,
                           residual_sd_nm=sol.residual_sd_px * px_nm,
                           tilt_axis_deg=float(sol.tilt_axis_deg.median()), pretilt_deg=float(sol.pretilt_deg),
                           thickness_nm=sol.thickness_px * px_nm, points=int(sol.points_xyz.shape[0]))
