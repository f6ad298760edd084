"""``tilt-axis-refine``: estimate the tilt axis, judge the given (mdoc) value, and record the result.

With a landmark model the axis minimises the bead fit residual; from images alone it maximises the agreement
of neighbouring views stretched about the candidate axis (core/align/axis.py). Geometry fixes the axis modulo
180°: the equivalent nearest the given value is kept, then the handedness (``psi`` or ``psi + 180``, i.e. a
flipped tilt-angle sign) is decided from the defocus gradient of the tilted views when their Thon rings allow
(core/align/axis.py, handedness_from_defocus). A given axis more than ``tolerance_deg`` from the estimate is
reported (log, notes, metric) and replaced.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field

from tomoforge.core.align.axis import axis_from_images, axis_from_tracks, handedness_from_defocus
from tomoforge.core.align.coarse import align_coarse
from tomoforge.core.ctf.fit import FitSettings
from tomoforge.core.ctf.model import Optics
from tomoforge.model import TiltSeries
from tomoforge.model.landmarks import LandmarkModel
from tomoforge.steps._align import (
    full_shape,
    load_working_stack,
    nominal_angles,
    skip_mask,
    transforms_of,
    with_alignment,
    xf_to_full,
)
from tomoforge.steps.base import Port, Step, StepParams, Unit, UnitContext, UnitResult


class TiltAxisRefineParams(StepParams):
    method: Literal["auto", "images", "landmarks"] = Field("auto", description="auto: landmarks when given")
    tolerance_deg: float = Field(3.0, gt=0, le=45, description="A given axis further off than this is wrong")
    working_size_px: int = Field(512, ge=64, le=4096)
    check_handedness: bool = Field(True, description="Decide psi vs psi+180 from the defocus gradient of "
                                                     "tilted views (needs Thon rings)")
    handedness_min_confidence: float = Field(0.02, ge=0, le=1, description="Act on the handedness only when "
                                                                           "its two fits differ this much")


class TiltAxisRefine(Step):
    name = "tilt-axis-refine"
    title = "Estimate the tilt axis and check the mdoc value"
    Params = TiltAxisRefineParams
    inputs = {"tilt_series": Port(TiltSeries, "Tilt series"),
              "landmarks": Port(LandmarkModel, "Fiducial model (optional)", optional=True)}
    outputs = {"tilt_series": Port(TiltSeries, "Tilt series with the refined axis")}

    def run_unit(self, params: TiltAxisRefineParams, unit: Unit, ctx: UnitContext) -> UnitResult:
        ts: TiltSeries = unit.one("tilt_series").load(TiltSeries)  # type: ignore[assignment]
        prior = ts.acquisition.tilt_axis_deg
        prior = prior if prior is not None and math.isfinite(prior) else None
        lms = unit.inputs.get("landmarks") or []
        tilt = nominal_angles(ts)
        shape = full_shape(ts)
        if lms and params.method != "images":
            lm: LandmarkModel = lms[0].load(LandmarkModel)  # type: ignore[assignment]
            obs = lm.positions(len(ts.images))
            est = axis_from_tracks(obs, tilt, shape, prior_deg=prior, tolerance_deg=params.tolerance_deg)
            source = "landmarks"
            imgs = None
        else:
            imgs, b = load_working_stack(ts, params.working_size_px)
            skip, _ = skip_mask(ts, imgs)
            keep = ~skip
            est = axis_from_images(imgs[keep], tilt[keep], prior_deg=prior, tolerance_deg=params.tolerance_deg)
            source = "images"
        axis = est.tilt_axis_deg
        hand, hand_conf = 0, float("nan")
        if params.check_handedness:
            if imgs is None:
                imgs, b = load_working_stack(ts, params.working_size_px)
                skip, _ = skip_mask(ts, imgs)
            hand, hand_conf, axis = _handedness(ts, imgs, b, skip, tilt, axis, params, ctx)
        if prior is None:
            note = f"tilt-axis-refine: axis {axis:.2f}° from {source} (no axis was given)"
        elif est.prior_ok:
            note = f"tilt-axis-refine: axis {axis:.2f}° from {source}; the given {prior:.2f}° agrees"
        else:
            note = (f"tilt-axis-refine: the given tilt axis {prior:.2f}° is WRONG by {est.prior_error_deg:.1f}° "
                    f"(modulo 180°); using {axis:.2f}° from {source}")
        hand_text = {1: "handedness checked", -1: "handedness corrected (axis turned by 180°)",
                     0: "handedness not determined"}[hand]
        note += f"; {hand_text}"
        ctx.log(note + f" (axis confidence {est.confidence:.2f}, handedness confidence {hand_conf:.3f})")
        out = ts
        if transforms_of(ts) is not None:  # coarse transforms were made for the old axis: redo them
            if imgs is None:
                imgs, b = load_working_stack(ts, params.working_size_px)
                skip, _ = skip_mask(ts, imgs)
            co = align_coarse(imgs, tilt, axis, skip=skip)
            out = with_alignment(ts, xf_to_full(co.xf, b, shape))
        out = out.model_copy(update={"acquisition": out.acquisition.model_copy(update={"tilt_axis_deg": axis}),
                                     "notes": list(out.notes) + [note]})
        result = UnitResult()
        result.artifacts.append(ctx.write_record("tilt_series", ts.ts_id, out))
        result.metrics.update({"tilt_axis_deg": axis, "confidence": est.confidence, "handedness": float(hand),
                               "handedness_confidence": hand_conf,
                               "given_axis_error_deg": est.prior_error_deg if est.prior_error_deg is not None
                               else float("nan"),
                               "given_axis_ok": float(bool(est.prior_ok)) if est.prior_ok is not None else float("nan")})
        return result


def _handedness(ts, imgs, b, skip, tilt, axis, params, ctx) -> tuple[int, float, float]:
    """(+1 checked / -1 corrected / 0 undetermined, confidence, axis to use)."""
    acq = ts.acquisition
    px = acq.pixel_size_a * b
    if px > 12.0:
        ctx.log(f"handedness: pixels of {px:.1f} Å on the working stack are too coarse for Thon rings")
        return 0, float("nan"), axis
    optics = Optics(voltage_kv=acq.voltage_kv, cs_mm=acq.cs_mm, amplitude_contrast=acq.amplitude_contrast)
    settings = FitSettings(resolution_min_a=max(40.0, 6 * px), resolution_max_a=max(2.2 * px, 6.0),
                           defocus_min_a=5000.0, defocus_max_a=80000.0)
    keep = ~skip
    try:
        chk = handedness_from_defocus(imgs[keep], tilt[keep], axis, px, optics, settings,
                                      box=min(256, int(min(imgs.shape[-2:]) // 2)))
    except ValueError as err:
        ctx.log(f"handedness: not determined ({err})")
        return 0, float("nan"), axis
    if not chk.confidence >= params.handedness_min_confidence:
        return 0, chk.confidence, axis
    return chk.handedness, chk.confidence, chk.corrected_axis_deg
