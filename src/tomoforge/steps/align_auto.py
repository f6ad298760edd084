"""``align``: the default preset's alignment. Coarse cross-correlation, then fiducial tracking and a
tiltalign-style solve when beads are found, and patch tracking (fiducial-less) otherwise.

It composes the individual alignment steps (each still usable alone) and says which route it took and why.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from tomoforge.errors import InputError
from tomoforge.model import AlignmentReport, TiltSeries
from tomoforge.model.landmarks import LandmarkModel
from tomoforge.steps.align_coarse import AlignCoarse
from tomoforge.steps.align_patches import AlignPatches
from tomoforge.steps.base import (
    InputArtifact,
    OutputArtifact,
    Port,
    Resources,
    Step,
    StepParams,
    Unit,
    UnitContext,
    UnitResult,
)
from tomoforge.steps.fiducial_align import FiducialAlign
from tomoforge.steps.fiducial_model import FiducialModel


class AlignParams(StepParams):
    bead_diameter_nm: float | None = Field(10.0, gt=0, le=100, description="Gold bead diameter (nm); empty: "
                                                                          "no beads, go fiducial-less")
    min_beads: int = Field(4, ge=3, description="Fewer tracked beads than this: fall back to patch tracking")
    tilt_axis_deg: float | None = Field(None, description="Starting tilt axis (degrees CCW from +Y); default: "
                                                          "the record's (mdoc)")
    fiducial_rotation: str = Field("one", pattern="^(one|group|view)$", description="In-plane rotation model")
    fiducial_tilt: str = Field("fixed", pattern="^(fixed|group|view)$", description="Tilt angle model")
    exclude_outliers_mad: float | None = Field(6.0, gt=0, description="Exclude views whose residual is this many "
                                                                       "robust SDs above the median; empty: keep all")


def _as_input(art: OutputArtifact, port: str) -> InputArtifact:
    return InputArtifact(artifact_id=0, port=port, key=art.key, type=art.type, path=art.path)


def _sub(step_cls: type[Step], params: dict, inputs: dict[str, list[InputArtifact]], ctx: UnitContext,
         key: str) -> UnitResult:
    """Run one alignment step's unit inside this job, in a sub-folder so records do not collide."""
    sub_ctx = UnitContext(job_dir=ctx.job_dir / step_cls.name, unit_key=key)
    result = step_cls().run_unit(step_cls.Params.model_validate(params), Unit(key=key, inputs=inputs), sub_ctx)
    ctx.log_lines.extend(f"{step_cls.name}: {line}" for line in sub_ctx.log_lines)
    return result


def _one(result: UnitResult, port: str) -> OutputArtifact:
    return next(a for a in result.artifacts if a.port == port)


def exclude_residual_outliers(ts: TiltSeries, report: AlignmentReport, mad_factor: float | None) -> list[str]:
    """Mark views whose alignment residual stands far above the others as excluded, with the reason."""
    if mad_factor is None:
        return []
    vals = [r for r, im in zip(report.residual_px, ts.images, strict=True) if r is not None and not im.excluded]
    if len(vals) < 5:
        return []
    med = float(np.median(vals))
    sd = 1.4826 * float(np.median(np.abs(np.asarray(vals) - med))) or 1e-9
    limit = med + mad_factor * sd
    out = []
    for r, im in zip(report.residual_px, ts.images, strict=True):
        if r is not None and not im.excluded and r > max(limit, 2 * med, 1.5):  # 1.5 px: never for noise
            im.excluded = True
            im.exclude_reason = f"alignment: residual {r:.2f} px (median {med:.2f} px)"
            out.append(f"excluded view at {im.tilt_angle_deg:+.1f}°: {im.exclude_reason}")
    return out


class Align(Step):
    name = "align"
    title = "Align: coarse, then fiducials when beads are found, patch tracking otherwise"
    Params = AlignParams
    inputs = {"tilt_series": Port(TiltSeries, "Tilt series with images")}
    outputs = {"tilt_series": Port(TiltSeries, "Aligned tilt series (transforms, refined angles)"),
               "landmarks": Port(LandmarkModel, "Refined fiducial model, when fiducials were used", optional=True),
               "report": Port(AlignmentReport, "Residual per view and the solved geometry")}
    resources = Resources(cores=2, mem_gb=8.0)

    def run_unit(self, params: AlignParams, unit: Unit, ctx: UnitContext) -> UnitResult:
        key = unit.key
        axis = {"tilt_axis_deg": params.tilt_axis_deg}
        coarse = _sub(AlignCoarse, axis, unit.inputs, ctx, key)
        coarse_ts = {"tilt_series": [_as_input(_one(coarse, "tilt_series"), "tilt_series")]}
        route, why, fid = "patches", "no bead diameter given", None
        if params.bead_diameter_nm is not None:
            try:
                model = _sub(FiducialModel, {"bead_diameter_nm": params.bead_diameter_nm,
                                             "min_beads": params.min_beads}, coarse_ts, ctx, key)
                fid = _sub(FiducialAlign, {"rotation": params.fiducial_rotation, "tilt": params.fiducial_tilt},
                           coarse_ts | {"landmarks": [_as_input(_one(model, "landmarks"), "landmarks")]}, ctx, key)
                route, why = "fiducials", f"{model.metrics.get('beads', 0):.0f} beads tracked"
            except InputError as err:  # too few or no beads: fiducial-less, as a user would do next
                why = str(err)
        final = fid if fid is not None else _sub(AlignPatches, axis, coarse_ts, ctx, key)
        ctx.log(f"alignment by {route}: {why}")
        ts = TiltSeries.model_validate_json(open(_one(final, "tilt_series").path).read())
        ts.notes.append(f"align: {route} ({why})")
        report = AlignmentReport.model_validate_json(open(_one(final, "report").path).read())
        outliers = exclude_residual_outliers(ts, report, params.exclude_outliers_mad)
        for line in outliers:
            ctx.log(line)
        result = UnitResult(metrics={**final.metrics, "fiducials": float(route == "fiducials"),
                                     "views_excluded_alignment": float(len(outliers))})
        result.artifacts.append(ctx.write_record("tilt_series", key, ts))
        result.artifacts.append(ctx.write_record("report", key, report))
        if fid is not None:
            lm = LandmarkModel.model_validate_json(open(_one(fid, "landmarks").path).read())
            result.artifacts.append(ctx.write_record("landmarks", key, lm))
        return result
