"""``ctf-correct``: 2D strip-based CTF correction of every view (ctfphaseflip), phase flip or multiply.

Views are corrected in their raw frame: strips run parallel to the view's tilt axis (from its alignment,
else the acquisition's axis), so the stored alignment still applies afterwards and no extra interpolation
is made; the CTF (estimated on the raw view) needs no rotation there. The strip width keeps the defocus
change across a strip within ``defocus_tolerance_a`` (ctfphaseflip's rule). Excluded views are corrected
too when they have an estimate (so they can be rescued later) and copied unchanged when they do not; every
view keeps its place, acquisition order and CTF record. The output has ``ctf_corrected=True``.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field

from tomoforge.core.ctf import CtfParams, Optics, correct_ctf_strips
from tomoforge.errors import InputError
from tomoforge.model import TiltSeries
from tomoforge.steps._views import has_all, read_views, stack_name, with_images, write_stack
from tomoforge.steps.base import Port, Step, StepParams, Unit, UnitContext, UnitResult
from tomoforge.steps.ctf_estimate import view_tilt_axis_deg


class CtfCorrectParams(StepParams):
    mode: Literal["flip", "multiply"] = Field("flip", description="flip: phase flipping; multiply: by the CTF")
    defocus_tolerance_a: float = Field(500.0, gt=0, description="Largest defocus change across a strip (Å)")
    handedness: int = Field(1, description="Defocus-gradient sign (+1/-1; ctf-estimate joint mode reports it)")
    even_odd: bool = Field(True, description="Also correct the even/odd images when present")


class CtfCorrect(Step):
    name = "ctf-correct"
    title = "2D strip-based CTF correction (phase flip or multiply), strips parallel to the tilt axis"
    Params = CtfCorrectParams
    inputs = {"tilt_series": Port(TiltSeries, "Tilt series with CTF estimates (ctf-estimate, ctf-exclude)")}
    outputs = {"tilt_series": Port(TiltSeries, "CTF-corrected tilt series (ctf_corrected=True)")}

    def plan(self, params: CtfCorrectParams, inputs) -> list[Unit]:
        if params.handedness not in (1, -1):
            raise InputError(f"handedness {params.handedness}", field="handedness", expected="1 or -1")
        units = super().plan(params, inputs)
        for u in units:
            ts: TiltSeries = u.one("tilt_series").load(TiltSeries)  # type: ignore[assignment]
            if ts.ctf_corrected:
                raise InputError(f"tilt series {ts.ts_id} is already CTF corrected", path=u.one("tilt_series").path,
                                 field="ctf_corrected", expected="uncorrected images (correcting twice is wrong)")
            missing = [im for im in ts.images if not im.excluded and im.ctf is None]
            if missing and not ts.excluded:
                raise InputError(f"tilt series {ts.ts_id}: the view at {missing[0].tilt_angle_deg:g}° (acquisition "
                                 f"order {missing[0].acquisition_order}) has no CTF estimate",
                                 path=u.one("tilt_series").path, field="ctf", expected="the output of ctf-estimate")
        return units

    def run_unit(self, params: CtfCorrectParams, unit: Unit, ctx: UnitContext) -> UnitResult:
        ts: TiltSeries = unit.one("tilt_series").load(TiltSeries)  # type: ignore[assignment]
        acq = ts.acquisition
        optics = Optics(acq.voltage_kv, acq.cs_mm, acq.amplitude_contrast)
        out = ts
        kinds = ["image"] + (["even", "odd"] if params.even_odd and has_all(ts.images, "even")
                             and has_all(ts.images, "odd") else [])
        copied = 0
        for kind in kinds:
            views = read_views(ts, which=kind)
            corrected = torch.empty_like(views)
            for k, im in enumerate(ts.images):
                if im.ctf is None:
                    corrected[k] = views[k]
                    copied += kind == "image"
                    continue
                c = im.ctf
                p = CtfParams(c.defocus_u_a, c.defocus_v_a, c.astigmatism_angle_deg, c.phase_shift_deg)
                corrected[k] = correct_ctf_strips(views[k], p, acq.pixel_size_a, optics, im.tilt_angle_deg,
                                                  mode=params.mode, defocus_tolerance_a=params.defocus_tolerance_a,
                                                  handedness=params.handedness,
                                                  tilt_axis_deg=view_tilt_axis_deg(ts, im)).to(views.dtype)
            suffix = {"image": "", "even": "_EVN", "odd": "_ODD"}[kind]
            refs = write_stack(stack_name(ctx.out_dir, ts.ts_id, suffix), corrected, acq.pixel_size_a)
            out = with_images(out, refs, which=kind)
        if copied:
            ctx.log(f"{ts.ts_id}: {copied} excluded view(s) without a CTF estimate copied uncorrected")
        out = out.model_copy(update={"ctf_corrected": True})
        result = UnitResult()
        result.artifacts.append(ctx.write_record("tilt_series", ts.ts_id, out))
        result.metrics.update({"views_corrected": len(ts.images) - copied, "views_copied": copied})
        return result
