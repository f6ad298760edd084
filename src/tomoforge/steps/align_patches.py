"""``align-patches``: fiducial-less alignment by patch tracking and the same solve as ``fiducial-align``
(core/align/patches.py), then projection matching against reprojections of the specimen with the solved axis
and angles (core/align/projection_matching.py, as AreTomo refines).

The patch solve gives the axis (kept only when the tracks pin it: otherwise the starting one stays, with a
warning), the tilt-angle offset that levels the specimen (pretilt) and the spread of the patch heights (a lower
bound of the specimen thickness). The shifts come from projection matching started at the coarse shifts: in a
thick crowded specimen a patch follows a mix of layers, and its track bends the solved shifts (on the
simulated lamella 3-7 px off, against 0.8-3.3 px from the coarse shifts).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tomoforge.core.align.patches import align_patches
from tomoforge.core.align.prealign import prealign
from tomoforge.core.align.projection_matching import refine_by_projection_matching
from tomoforge.core.geometry import with_tilt_axis
from tomoforge.io.imod import write_tilt_angles, write_xf
from tomoforge.model import AlignmentReport, TiltSeries
from tomoforge.steps._align import (
    alignment_report,
    full_shape,
    load_working_stack,
    nominal_angles,
    skip_mask,
    tilt_axis_of,
    transforms_of,
    with_alignment,
    xf_to_binned,
    xf_to_full,
)
from tomoforge.steps.base import Port, Resources, Step, StepParams, Unit, UnitContext, UnitResult


class AlignPatchesParams(StepParams):
    tilt_axis_deg: float | None = Field(None, description="Starting axis; default: the record's")
    working_size_px: int = Field(512, ge=128, le=4096, description="Bin so the larger side is at most this")
    patches_x: int = Field(7, ge=2, le=20)
    patches_y: int = Field(7, ge=2, le=20)
    patch_size_px: int = Field(48, ge=16, le=512, description="Patch side in working pixels")
    rotation: Literal["one", "group", "view"] = "one"
    tilt: Literal["fixed", "group", "view"] = "fixed"
    level_specimen: bool = Field(True, description="Add the tilt offset that makes the specimen level")
    iterations: int = Field(3, ge=1, le=6, description="Track-and-solve rounds (each re-tracks on the new axis)")
    max_axis_sd_deg: float = Field(0.25, ge=0, le=10,
                                   description="Keep the axis the patches give only when its bootstrap spread "
                                               "over resampled tracks is at most this; else keep the starting axis")
    matching_rounds: int = Field(2, ge=0, le=10, description="Projection-matching rounds after the solve "
                                                             "(every view against the others); 0: none")
    matching_size_px: int = Field(256, ge=64, le=2048, description="Projection matching: bin so the larger "
                                                                   "side is at most this")


class AlignPatches(Step):
    name = "align-patches"
    title = "Fiducial-less alignment by patch tracking"
    Params = AlignPatchesParams
    inputs = {"tilt_series": Port(TiltSeries, "Tilt series (coarse transforms are used when present)")}
    outputs = {"tilt_series": Port(TiltSeries, "Aligned tilt series"),
               "report": Port(AlignmentReport, "Residual per view and the solved geometry")}
    resources = Resources(cores=1, mem_gb=4.0)

    def run_unit(self, params: AlignPatchesParams, unit: Unit, ctx: UnitContext) -> UnitResult:
        ts: TiltSeries = unit.one("tilt_series").load(TiltSeries)  # type: ignore[assignment]
        psi = tilt_axis_of(ts, params.tilt_axis_deg)
        shape = full_shape(ts)
        imgs, b = load_working_stack(ts, params.working_size_px)
        skip, _ = skip_mask(ts, imgs)
        xf = transforms_of(ts)
        if xf is None:
            ctx.log("no coarse transforms on the input: running the default coarse prealignment first")
            coarse = prealign(imgs, nominal_angles(ts), psi, skip=skip, matching_size=params.matching_size_px).xf
        else:
            coarse = xf_to_binned(xf, b, shape)
        res = align_patches(imgs, nominal_angles(ts), psi, skip=skip,
                            n_patches=(params.patches_x, params.patches_y), patch_size=params.patch_size_px,
                            target_size=params.working_size_px, rotation=params.rotation, tilt=params.tilt,
                            level_specimen=params.level_specimen, n_iter=params.iterations, xf_coarse=coarse,
                            max_axis_sd_deg=params.max_axis_sd_deg)
        sol = res.solution
        axis = float(sol.tilt_axis_deg.median())
        if res.axis_kept:
            ctx.log(f"warning: the patch tracks do not pin the tilt axis (bootstrap spread {res.axis_sd_deg:.2f}° > "
                     f"{params.max_axis_sd_deg}°): kept the starting axis {psi:.2f}°; run tilt-axis-refine or "
                     f"check the mdoc if it is in doubt")
        xf_work, thickness_nm = sol.xf, None
        px_nm = ts.acquisition.pixel_size_a / 10.0 * b
        if params.matching_rounds:
            # the solve levelled the specimen, so the slab is flat in its angles
            start = with_tilt_axis(coarse, axis) if params.rotation == "one" else sol.xf
            m = refine_by_projection_matching(imgs, sol.tilt_deg, start, skip=skip, outward=False,
                                              rounds=params.matching_rounds, target_size=params.matching_size_px)
            xf_work, thickness_nm = m.xf, m.thickness_px * px_nm
            ctx.log(f"projection matching from the coarse shifts: {float((m.xf - sol.xf)[:, :, 2].abs().max()) * b:.1f}"
                    f" px at most from the patch solve's; specimen about {thickness_nm:.0f} nm")
        xf_full = xf_to_full(xf_work, b, shape)
        out = with_alignment(ts, xf_full, tilt_deg=sol.tilt_deg, tilt_axis_deg=axis,
                             note=f"align-patches: residual {sol.residual_mean_px * px_nm:.2f} nm, pretilt "
                                  f"{sol.pretilt_deg:.2f}°, patch height spread {sol.thickness_px * px_nm:.0f} nm")
        write_xf(ctx.out_dir / f"{ts.ts_id}.xf", xf_full)
        write_tilt_angles(ctx.out_dir / f"{ts.ts_id}.tlt", sol.tilt_deg.numpy())
        result = UnitResult()
        result.artifacts.append(ctx.write_record("tilt_series", ts.ts_id, out))
        result.artifacts.append(ctx.write_record("report", ts.ts_id,
                                                 alignment_report(ts, sol, "patches", px_nm, binning=b)))
        tracked = res.tracks_xy[..., 0].isfinite().double().mean()
        result.metrics.update({"tilt_axis_deg": axis, "pretilt_deg": sol.pretilt_deg,
                               "thickness_lower_bound_nm": sol.thickness_px * px_nm,
                               "residual_mean_px": sol.residual_mean_px * b, "tracked_fraction": float(tracked),
                               "axis_sd_deg": res.axis_sd_deg, "axis_kept": float(res.axis_kept)})
        if thickness_nm is not None:
            result.metrics["thickness_nm"] = thickness_nm
        return result
