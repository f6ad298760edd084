"""``dose-filter``: Grant & Grigorieff exposure filter per view, from its dose in acquisition order.

Each view is filtered with its own pre-exposure (the accumulated dose of the views taken before it) and its
own dose, integrated over its exposure (see :mod:`tomoforge.core.dose`), at the series' pixel size and
voltage. The output records ``dose_filtered=True`` and keeps the doses, so later steps (CTF, averaging) know
the images are filtered and still know each view's exposure; ``assign-alignment`` can carry an alignment
found on these images back to the unfiltered ones.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field

from tomoforge.core.dose import dose_filter
from tomoforge.errors import InputError
from tomoforge.model import TiltSeries
from tomoforge.steps._views import has_all, read_views, stack_name, with_images, write_stack
from tomoforge.steps.base import Port, Step, StepParams, Unit, UnitContext, UnitResult


class DoseFilterParams(StepParams):
    mode: Literal["integrated", "accumulated"] = Field(
        "integrated", description="integrated: mean attenuation over the view's exposure; accumulated: at its end")
    even_odd: bool = Field(True, description="Also filter the even/odd images when present")


class DoseFilter(Step):
    name = "dose-filter"
    title = "Exposure filter (Grant & Grigorieff 2015) from each view's accumulated dose"
    Params = DoseFilterParams
    inputs = {"tilt_series": Port(TiltSeries, "Tilt series with images and doses")}
    outputs = {"tilt_series": Port(TiltSeries, "Dose-filtered tilt series (dose_filtered=True)")}

    def plan(self, params: DoseFilterParams, inputs) -> list[Unit]:
        units = super().plan(params, inputs)
        for u in units:
            ts: TiltSeries = u.one("tilt_series").load(TiltSeries)  # type: ignore[assignment]
            if ts.dose_filtered:
                raise InputError(f"tilt series {ts.ts_id} is already dose filtered", path=u.one("tilt_series").path,
                                 field="dose_filtered", expected="unfiltered images (filtering twice is wrong)")
            if all(im.dose_e_per_a2 == 0 for im in ts.images):
                raise InputError(f"tilt series {ts.ts_id} has no dose per view", path=u.one("tilt_series").path,
                                 field="dose_e_per_a2",
                                 expected="doses from the mdoc or --set dose_per_tilt_e_per_a2 at import")
        return units

    def run_unit(self, params: DoseFilterParams, unit: Unit, ctx: UnitContext) -> UnitResult:
        ts: TiltSeries = unit.one("tilt_series").load(TiltSeries)  # type: ignore[assignment]
        acq = ts.acquisition
        pre = torch.tensor([im.pre_exposure_e_per_a2 for im in ts.images])
        dose = torch.tensor([im.dose_e_per_a2 for im in ts.images])
        out = ts
        which = ["image"] + (["even", "odd"] if params.even_odd and has_all(ts.images, "even")
                             and has_all(ts.images, "odd") else [])
        for kind in which:
            views = read_views(ts, which=kind)
            filtered = dose_filter(views, acq.pixel_size_a, pre, dose, voltage_kv=acq.voltage_kv, mode=params.mode)
            suffix = {"image": "", "even": "_EVN", "odd": "_ODD"}[kind]
            out = with_images(out, write_stack(stack_name(ctx.out_dir, ts.ts_id, suffix), filtered, acq.pixel_size_a),
                              which=kind)
        out = out.model_copy(update={"dose_filtered": True})
        result = UnitResult()
        result.artifacts.append(ctx.write_record("tilt_series", ts.ts_id, out))
        result.metrics.update({"max_pre_exposure_e_per_a2": float(pre.max()), "views": len(ts.images)})
        return result
