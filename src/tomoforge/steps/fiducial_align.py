"""``fiducial-align``: tiltalign-style least squares from a landmark model (core/align/solve.py).

Solves per-view shifts, the in-plane rotation (one, grouped or per view), tilt angles (fixed, grouped or per
view), magnification (fixed, grouped or per view) with robust weighting; the bead layer is made level, which
gives the tilt-angle offset. Writes the final transforms on the views (and as ``.xf``), refined angles
(``.tlt``), the 3D bead positions (``fid.xyz``) and the gap-free refined landmark model.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from pydantic import Field

from tomoforge.core.align.solve import solve_alignment
from tomoforge.errors import InputError
from tomoforge.io.imod import FiducialPoint3D, FiducialXYZ, write_fid_xyz, write_tilt_angles, write_xf
from tomoforge.model import AlignmentReport, TiltSeries
from tomoforge.model.landmarks import LandmarkModel
from tomoforge.steps._align import (
    alignment_report,
    nominal_angles,
    positions_to_beads,
    tilt_axis_of,
    with_alignment,
)
from tomoforge.steps.base import Port, Step, StepParams, Unit, UnitContext, UnitResult

Mode = Literal["fixed", "one", "group", "view"]


class FiducialAlignParams(StepParams):
    rotation: Literal["one", "group", "view"] = Field("one", description="In-plane rotation: one, grouped, per view")
    tilt: Literal["fixed", "group", "view"] = Field("fixed", description="Tilt angles: fixed, grouped, per view")
    magnification: Literal["fixed", "group", "view"] = Field("fixed", description="Magnification")
    group_size: int = Field(5, ge=2, le=50, description="Views per group")
    robust: bool = Field(True, description="Down-weight outlying points")
    level_specimen: bool = Field(True, description="Add the tilt offset that makes the bead layer level")
    tilt_axis_deg: float | None = Field(None, description="Starting axis; default: the record's")


class FiducialAlign(Step):
    name = "fiducial-align"
    title = "Solve the alignment from a fiducial model (tiltalign)"
    Params = FiducialAlignParams
    inputs = {"tilt_series": Port(TiltSeries, "Tilt series"),
              "landmarks": Port(LandmarkModel, "Fiducial model (fiducial-model)")}
    outputs = {"tilt_series": Port(TiltSeries, "Aligned tilt series"),
               "landmarks": Port(LandmarkModel, "Gap-free refined fiducial model"),
               "report": Port(AlignmentReport, "Residual per view and the solved geometry")}

    def run_unit(self, params: FiducialAlignParams, unit: Unit, ctx: UnitContext) -> UnitResult:
        ts: TiltSeries = unit.one("tilt_series").load(TiltSeries)  # type: ignore[assignment]
        lm: LandmarkModel = unit.one("landmarks").load(LandmarkModel)  # type: ignore[assignment]
        v = len(ts.images)
        obs = lm.positions(v)
        excluded = torch.tensor([im.excluded for im in ts.images])
        obs[excluded] = float("nan")
        n_ok = int((torch.isfinite(obs[..., 0]).sum(0) >= 3).sum())
        if n_ok < 4:
            raise InputError(f"tilt series {ts.ts_id}: the fiducial model has {n_ok} usable beads",
                             field="landmarks", expected="at least 4 beads; try align-patches (fiducial-less)")
        psi = tilt_axis_of(ts, params.tilt_axis_deg)
        shape = tuple(lm.image_shape_yx)
        sol = solve_alignment(obs, nominal_angles(ts), shape, psi, rotation=params.rotation, tilt=params.tilt,
                              magnification=params.magnification, group_size=params.group_size,
                              robust=params.robust, level_specimen=params.level_specimen)
        axis = float(sol.tilt_axis_deg.median())
        nm = ts.acquisition.pixel_size_a / 10.0
        out = with_alignment(ts, sol.xf, tilt_deg=sol.tilt_deg, tilt_axis_deg=axis,
                             note=f"fiducial-align: residual {sol.residual_mean_px * nm:.3f} ± "
                                  f"{sol.residual_sd_px * nm:.3f} nm, pretilt {sol.pretilt_deg:.2f}°")
        write_xf(ctx.out_dir / f"{ts.ts_id}.xf", sol.xf)
        write_tilt_angles(ctx.out_dir / f"{ts.ts_id}.tlt", sol.tilt_deg.numpy())
        c = [(shape[1] - 1) / 2, (shape[0] - 1) / 2, 0.0]
        write_fid_xyz(ctx.out_dir / f"{ts.ts_id}fid.xyz", FiducialXYZ(points=[
            FiducialPoint3D(point=j + 1, x_px=float(p[0]) + c[0], y_px=float(p[1]) + c[1], z_px=float(p[2]),
                            object=1, contour=j + 1) for j, p in enumerate(sol.points_xyz)],
            pixel_size_nm=nm, image_size_xy=(shape[1], shape[0])))
        refined = lm.model_copy(update={"beads": positions_to_beads(sol.predicted_xy), "refined": True,
                                        "fid_path": None})
        for j, bead in enumerate(refined.beads):
            bead.surface = int(sol.surface[j])
            bead.xyz_px = tuple(float(x) for x in sol.points_xyz[j])
            r = float(sol.residual_mean_per_bead_px[j])
            bead.residual_mean_px = r if np.isfinite(r) else None
        per_view = sol.residual_mean_per_view_px
        worst = int(torch.nan_to_num(per_view, nan=-1).argmax())
        ctx.log(f"residual per view (nm): worst {float(per_view[worst]) * nm:.3f} at "
                f"{ts.images[worst].tilt_angle_deg:g}°")
        result = UnitResult()
        result.artifacts.append(ctx.write_record("tilt_series", ts.ts_id, out))
        result.artifacts.append(ctx.write_record("landmarks", ts.ts_id, refined))
        result.artifacts.append(ctx.write_record("report", ts.ts_id, alignment_report(ts, sol, "fiducials", nm)))
        result.metrics.update({"residual_mean_nm": sol.residual_mean_px * nm, "residual_sd_nm": sol.residual_sd_px * nm,
                               "residual_mean_px": sol.residual_mean_px, "tilt_axis_deg": axis,
                               "pretilt_deg": sol.pretilt_deg, "thickness_nm": sol.thickness_px * nm,
                               "beads": float(obs.shape[1])})
        return result
