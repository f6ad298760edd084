"""``assign-alignment``: copy an alignment onto another set of the same tilt series (e.g. unfiltered ones).

Tilt series are matched by id, views by acquisition order (and their nominal angle must agree). Each target
view gets the source view's transform and refined tilt angle; shifts are rescaled when the pixel sizes
differ. A missing tilt series, a view without a partner, or angles that disagree are refused with a message
naming them (``allow_missing_views`` instead marks target views without a partner as excluded).
"""

from __future__ import annotations

from pydantic import Field

from tomoforge.errors import InputError
from tomoforge.model import TiltImage, TiltSeries
from tomoforge.steps.base import Port, Step, StepParams, Unit, UnitContext, UnitResult


class AssignAlignmentParams(StepParams):
    angle_tolerance_deg: float = Field(0.5, ge=0, description="Nominal angles of matching views must agree this well")
    allow_missing_views: bool = Field(False, description="Mark target views the source lacks as excluded "
                                                         "instead of refusing")


def _nominal(im: TiltImage) -> float:
    return im.nominal_tilt_angle_deg if im.nominal_tilt_angle_deg is not None else im.tilt_angle_deg


def assign(source: TiltSeries, target: TiltSeries, params: AssignAlignmentParams) -> TiltSeries:
    """The target with the source's per-view alignment (see the module docstring)."""
    if not any(im.transform is not None for im in source.images):
        raise InputError(f"tilt series {source.ts_id} of the alignment input has no alignment",
                         expected="an aligned tilt series (transforms on its views)")
    by_order = {im.acquisition_order: im for im in source.images}
    ratio = source.acquisition.pixel_size_a / target.acquisition.pixel_size_a
    missing = [im for im in target.images if im.acquisition_order not in by_order]
    if missing and not params.allow_missing_views:
        views = ", ".join(f"{_nominal(im):g}° (order {im.acquisition_order})" for im in missing[:6])
        raise InputError(f"tilt series {target.ts_id}: {len(missing)} view(s) have no partner in the alignment "
                         f"input: {views}", field="views",
                         expected="the same views in both inputs (or allow_missing_views=true)")
    images = []
    for im in target.images:
        src = by_order.get(im.acquisition_order)
        if src is None:
            images.append(im.model_copy(update={"excluded": True, "exclude_reason": "no alignment for this view"}))
            continue
        if abs(_nominal(src) - _nominal(im)) > params.angle_tolerance_deg:
            raise InputError(f"tilt series {target.ts_id}: the view of acquisition order {im.acquisition_order} is at "
                             f"{_nominal(im):g}° but its partner is at {_nominal(src):g}°", field="tilt_angle_deg",
                             expected=f"nominal angles within {params.angle_tolerance_deg}°")
        t = src.transform
        if t is not None and ratio != 1:
            t = t.model_copy(update={"dx_px": t.dx_px * ratio, "dy_px": t.dy_px * ratio})
        images.append(im.model_copy(update={"transform": t, "tilt_angle_deg": src.tilt_angle_deg,
                                            "nominal_tilt_angle_deg": _nominal(im),
                                            "excluded": im.excluded or src.excluded,
                                            "exclude_reason": im.exclude_reason or src.exclude_reason}))
    acq = target.acquisition.model_copy(update={"tilt_axis_deg": source.acquisition.tilt_axis_deg})
    return TiltSeries.model_validate({**target.model_dump(), "images": [i.model_dump() for i in images],
                                      "acquisition": acq.model_dump()})


class AssignAlignment(Step):
    name = "assign-alignment"
    title = "Copy an alignment onto matching tilt series (e.g. the non-dose-filtered ones)"
    Params = AssignAlignmentParams
    inputs = {"tilt_series": Port(TiltSeries, "Tilt series that receive the alignment"),
              "alignment": Port(TiltSeries, "Aligned tilt series to copy from")}
    outputs = {"tilt_series": Port(TiltSeries, "Tilt series with the alignment")}

    def plan(self, params: AssignAlignmentParams, inputs) -> list[Unit]:
        units = super().plan(params, inputs)
        for u in units:
            if len(u.inputs.get("alignment", [])) != 1:
                raise InputError(f"tilt series {u.key} has no matching tilt series in the alignment input",
                                 field="alignment", expected="the same tilt-series ids in both inputs")
            # check the views now, so a mismatch is refused before anything runs
            assign(u.one("alignment").load(TiltSeries), u.one("tilt_series").load(TiltSeries), params)
        return units

    def run_unit(self, params: AssignAlignmentParams, unit: Unit, ctx: UnitContext) -> UnitResult:
        out = assign(unit.one("alignment").load(TiltSeries), unit.one("tilt_series").load(TiltSeries), params)
        result = UnitResult()
        result.artifacts.append(ctx.write_record("tilt_series", out.ts_id, out))
        result.metrics["views_aligned"] = sum(im.transform is not None for im in out.images)
        return result
