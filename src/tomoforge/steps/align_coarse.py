"""``align-coarse``: tiltxcorr-style prealignment (core/align/coarse.py).

Neighbouring views (by angle) are cross-correlated after cosine stretching perpendicular to the tilt axis;
shifts chain outwards from the view nearest zero tilt. Transforms are recorded on the views (metadata, like
the seeds' ``+ali``) and written as an IMOD ``.prexg``; an interpolated aligned stack can be written for viewing.
Excluded and dark views are left out of the chain and get shifts interpolated from their neighbours.

Pairwise correlation bends the shifts of thick specimens (layers at different heights move differently between
views), so by default the shifts are then refined by projection matching (core/align/projection_matching.py),
which also measures the specimen's thickness.
"""

from __future__ import annotations

import numpy as np
import torch
from pydantic import Field

from tomoforge.core.align.prealign import prealign
from tomoforge.core.align.warp import warp_images
from tomoforge.errors import InputError
from tomoforge.io.imod import write_xf
from tomoforge.io.mrc import write_mrc
from tomoforge.model import TiltSeries
from tomoforge.steps._align import (
    full_shape,
    load_working_stack,
    nominal_angles,
    skip_mask,
    tilt_axis_of,
    with_alignment,
    xf_to_full,
)
from tomoforge.steps.base import Port, Step, StepParams, Unit, UnitContext, UnitResult


class AlignCoarseParams(StepParams):
    tilt_axis_deg: float | None = Field(None, description="Tilt axis (degrees CCW from +Y); default: the record's")
    cumulative: bool | None = Field(None, description="Correlate each view with the sum of those already aligned "
                                                       "instead of its neighbour; empty: try both and keep the one "
                                                       "that agrees better with reprojections (needs projection "
                                                       "matching; otherwise neighbour)")
    working_size_px: int = Field(1024, ge=64, le=8192, description="Bin the images so the larger side is at "
                                                                   "most this (automatic binning)")
    correlation_size_px: int = Field(512, ge=64, le=4096, description="Further binning for the correlation")
    lowpass: float = Field(0.15, gt=0, le=0.5, description="Low-pass edge (cycles/pixel of the correlated images)")
    highpass: float = Field(0.02, ge=0, lt=0.5, description="High-pass sigma (cycles/pixel)")
    taper_fraction: float = Field(0.1, ge=0, le=0.4, description="Edge taper width (fraction of the image)")
    pad_fraction: float = Field(0.5, ge=0, le=1, description="Zero padding (fraction of the image)")
    skip_views: list[int] = Field(default_factory=list, description="Acquisition orders of views to leave out")
    projection_matching: bool = Field(True, description="Refine the shifts by matching each view to a "
                                                        "reprojection of the others (AreTomo-style)")
    matching_rounds: int = Field(3, ge=1, le=10, description="Projection matching: the outward pass, then "
                                                             "rounds of every view against all the others")
    matching_size_px: int = Field(256, ge=64, le=2048, description="Projection matching: bin so the larger "
                                                                   "side is at most this")
    specimen_thickness_nm: float | None = Field(None, gt=0, le=5000, description="Projection matching: "
                                                "specimen thickness; empty: measured from the data")
    write_aligned_stack: bool = Field(False, description="Also write an interpolated aligned stack for viewing")
    aligned_stack_binning: int = Field(4, ge=1, le=64)


class AlignCoarse(Step):
    name = "align-coarse"
    title = "Coarse alignment by cross-correlation of neighbouring views (tiltxcorr)"
    Params = AlignCoarseParams
    inputs = {"tilt_series": Port(TiltSeries, "Tilt series with images")}
    outputs = {"tilt_series": Port(TiltSeries, "Tilt series with coarse transforms")}

    def run_unit(self, params: AlignCoarseParams, unit: Unit, ctx: UnitContext) -> UnitResult:
        ts: TiltSeries = unit.one("tilt_series").load(TiltSeries)  # type: ignore[assignment]
        psi = tilt_axis_of(ts, params.tilt_axis_deg)
        imgs, b = load_working_stack(ts, params.working_size_px)
        skip, dark = skip_mask(ts, imgs)
        for k, im in enumerate(ts.images):
            if im.acquisition_order in params.skip_views:
                skip[k] = True
        if int((~skip).sum()) < 2:
            raise InputError(f"tilt series {ts.ts_id}: fewer than two usable views", field="excluded",
                             expected="at least two views that are neither excluded nor dark")
        shape = full_shape(ts)
        px_nm = ts.acquisition.pixel_size_a / 10.0 * b
        thick = params.specimen_thickness_nm / px_nm if params.specimen_thickness_nm else None
        pre = prealign(imgs, nominal_angles(ts), psi, skip=skip, cumulative=params.cumulative,
                       matching=params.projection_matching, matching_rounds=params.matching_rounds,
                       matching_size=params.matching_size_px, thickness_px=thick,
                       target_size=params.correlation_size_px, lowpass=params.lowpass, highpass=params.highpass,
                       taper_fraction=params.taper_fraction, pad_fraction=params.pad_fraction)
        res, matched, xf_work = pre.coarse, pre.matching, pre.xf
        ctx.log(f"neighbour correlation: {'cumulative' if pre.cumulative else 'pairwise'} chain"
                + (f" (agreement with reprojections: {', '.join(f'{k} {v:.3f}' for k, v in pre.agreement.items())})"
                   if len(pre.agreement) > 1 else ""))
        if matched is not None:
            ctx.log(f"projection matching: specimen about {matched.thickness_px * px_nm:.0f} nm thick, shifts "
                    f"moved by up to {float((matched.xf - res.xf)[:, :, 2].abs().max()) * b:.1f} px")
        xf = xf_to_full(xf_work, b, shape)
        if dark:
            ctx.log(f"dark views left out: {', '.join(f'{ts.images[k].tilt_angle_deg:g}°' for k in dark)}")
        out = with_alignment(ts, xf, note=f"align-coarse: axis {psi:.2f}°, binning {b * res.binning}")
        write_xf(ctx.out_dir / f"{ts.ts_id}.prexg", xf)
        if params.write_aligned_stack:
            bb = params.aligned_stack_binning
            full = load_working_stack(ts, binning=bb)[0]
            xf_bb = xf.clone()
            xf_bb[:, :, 2] = xf_bb[:, :, 2] / bb
            ali = warp_images(full, xf_bb)
            write_mrc(ctx.out_dir / f"{ts.ts_id}_coarse_bin{bb}.mrc", ali, ts.acquisition.pixel_size_a * bb,
                      stack=True)
        result = UnitResult()
        result.artifacts.append(ctx.write_record("tilt_series", ts.ts_id, out))
        peaks = res.peak[torch.isfinite(res.peak)]
        result.metrics.update({"binning": float(b * res.binning), "views_skipped": float(skip.sum()),
                               "peak_mean": float(peaks.mean()) if len(peaks) else float("nan"),
                               "peak_min": float(peaks.min()) if len(peaks) else float("nan"),
                               "shift_max_px": float(np.abs(xf[:, :, 2].numpy()).max())})
        result.metrics["cumulative"] = float(pre.cumulative)
        if matched is not None:
            mp = matched.peak[torch.isfinite(matched.peak)]
            result.metrics.update({"thickness_nm": matched.thickness_px * px_nm,
                                   "matching_peak_mean": float(mp.mean()) if len(mp) else float("nan")})
        return result
