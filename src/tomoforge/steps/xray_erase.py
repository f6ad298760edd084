"""``xray-erase``: remove X-rays and hot pixels from every view (IMOD ccderaser style), plus fixed defects.

Every view is processed, excluded ones too (so a "mark excluded" view can be rescued later), and the even
and odd images when the series has them. Bookkeeping (angles, order, doses, flags) is copied unchanged.
"""

from __future__ import annotations

import torch
from pydantic import Field

from tomoforge.core.motion import defect_mask_from_coordinates
from tomoforge.core.xray import erase_xrays
from tomoforge.model import TiltSeries
from tomoforge.steps._views import has_all, read_views, stack_name, with_images, write_stack
from tomoforge.steps.base import Port, Step, StepParams, Unit, UnitContext, UnitResult
from tomoforge.steps.motion_correct import _read_defects


class XrayEraseParams(StepParams):
    peak_sd: float = Field(8.0, gt=0, description="A peak lies this many local SDs above its neighbourhood")
    grow_sd: float = Field(4.0, gt=0, description="Neighbours above this many SDs join a peak")
    grow_radius: int = Field(2, ge=0, le=10, description="How far (pixels) a peak may grow")
    outer_radius: int = Field(6, ge=2, le=50, description="Half-size of the neighbourhood box (pixels)")
    dark: bool = Field(False, description="Also erase dark peaks (below the local mean)")
    fixed: str | None = Field(None, description="Text file of defect pixels 'x y' (0-based) always replaced")
    even_odd: bool = Field(True, description="Also clean the even/odd images when present")


class XrayErase(Step):
    name = "xray-erase"
    title = "Erase X-rays and hot pixels (ccderaser style) and fixed defects"
    Params = XrayEraseParams
    inputs = {"tilt_series": Port(TiltSeries, "Tilt series with images")}
    outputs = {"tilt_series": Port(TiltSeries, "Cleaned tilt series")}

    def plan(self, params: XrayEraseParams, inputs) -> list[Unit]:
        if params.fixed:
            _read_defects(params.fixed)  # a bad file is refused before anything runs
        return super().plan(params, inputs)

    def run_unit(self, params: XrayEraseParams, unit: Unit, ctx: UnitContext) -> UnitResult:
        ts: TiltSeries = unit.one("tilt_series").load(TiltSeries)  # type: ignore[assignment]
        px = ts.acquisition.pixel_size_a
        result = UnitResult()
        out = ts
        which = ["image"] + (["even", "odd"] if params.even_odd and has_all(ts.images, "even")
                             and has_all(ts.images, "odd") else [])
        found = 0
        for kind in which:
            views = read_views(ts, which=kind)
            fixed = None
            if params.fixed:
                fixed = defect_mask_from_coordinates(tuple(views.shape[-2:]), _read_defects(params.fixed))
            cleaned, mask = erase_xrays(views, fixed_mask=fixed, peak_sd=params.peak_sd, grow_sd=params.grow_sd,
                                        grow_radius=params.grow_radius, outer_radius=params.outer_radius,
                                        dark=params.dark)
            if kind == "image":
                found = int(mask.sum())
                per_view = mask.flatten(1).sum(1)
                ctx.log(f"replaced {found} pixels; most in one view: {int(per_view.max())}")
            suffix = {"image": "", "even": "_EVN", "odd": "_ODD"}[kind]
            refs = write_stack(stack_name(ctx.out_dir, ts.ts_id, suffix), cleaned, px)
            out = with_images(out, refs, which=kind)
        result.artifacts.append(ctx.write_record("tilt_series", ts.ts_id, out))
        result.metrics.update({"pixels_replaced": found,
                               "fraction_replaced": found / max(1, len(ts.images) * _area(ts))})
        return result


def _area(ts: TiltSeries) -> int:
    if ts.image_shape_yx:
        return ts.image_shape_yx[0] * ts.image_shape_yx[1]
    return int(torch.tensor(read_views(ts, ts.images[:1]).shape[-2:]).prod())
