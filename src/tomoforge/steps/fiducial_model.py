"""``fiducial-model``: find gold beads and track them through the tilt series (core/align/beads.py, tracking.py).

The bead diameter (nm) gives the template; seeds come from the view nearest zero tilt and its neighbours, and
each bead is followed view by view with positions predicted from the current geometry; gaps are filled after
a solve. Output: a landmark model (record) and the same model as an IMOD ``.fid`` that 3dmod opens.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from pydantic import Field

from tomoforge.core.align.beads import detect_beads, estimate_bead_diameter
from tomoforge.core.align.coarse import align_coarse
from tomoforge.core.align.solve import solve_alignment
from tomoforge.core.align.tracking import track_beads
from tomoforge.core.geometry import xf_rotation_deg
from tomoforge.errors import InputError
from tomoforge.io.imod_model import write_fiducials
from tomoforge.model import TiltSeries
from tomoforge.model.landmarks import LandmarkModel
from tomoforge.steps._align import (
    full_shape,
    load_working_stack,
    nominal_angles,
    points_to_full,
    positions_to_beads,
    skip_mask,
    tilt_axis_of,
    transforms_of,
    xf_to_binned,
)
from tomoforge.steps.base import Port, Step, StepParams, Unit, UnitContext, UnitResult


class FiducialModelParams(StepParams):
    bead_diameter_nm: float = Field(10.0, gt=0, le=100, description="Gold bead diameter (nm)")
    target_beads: int | None = Field(None, ge=4, description="Keep at most this many beads (strongest first)")
    two_surfaces: bool = Field(True, description="Beads lie on both surfaces: sort them into surfaces")
    min_beads: int = Field(4, ge=3, description="Fewer well-tracked beads than this is an error")
    min_track_fraction: float = Field(0.5, gt=0, le=1, description="A well-tracked bead is seen on this "
                                                                   "fraction of the views")
    tilt_axis_deg: float | None = Field(None, description="Used only when the input has no transforms")


class FiducialModel(Step):
    name = "fiducial-model"
    title = "Find and track gold beads (beadtrack)"
    Params = FiducialModelParams
    inputs = {"tilt_series": Port(TiltSeries, "Tilt series, coarsely aligned (align-coarse) or not")}
    outputs = {"landmarks": Port(LandmarkModel, "Tracked beads")}

    def run_unit(self, params: FiducialModelParams, unit: Unit, ctx: UnitContext) -> UnitResult:
        ts: TiltSeries = unit.one("tilt_series").load(TiltSeries)  # type: ignore[assignment]
        shape = full_shape(ts)
        px = ts.acquisition.pixel_size_a
        diam_full = params.bead_diameter_nm * 10.0 / px
        b = max(1, int(diam_full // 8))
        imgs, b = load_working_stack(ts, binning=b)
        d_b = diam_full / b
        skip, _dark = skip_mask(ts, imgs)
        tilt = nominal_angles(ts)
        xf = transforms_of(ts)
        if xf is None:
            xf_b = align_coarse(imgs, tilt, tilt_axis_of(ts, params.tilt_axis_deg), skip=skip).xf
        else:
            xf_b = xf_to_binned(xf, b, shape)
        ref = min((k for k in range(len(tilt)) if not skip[k]), key=lambda k: abs(float(tilt[k])))
        seeds, _ = detect_beads(imgs[ref], d_b)
        if len(seeds) == 0:
            seen = estimate_bead_diameter(imgs[ref])
            hint = (f"the images show round dark features of about {seen * b * px / 10:.1f} nm"
                    if seen else "no bead-like features were seen at any size")
            raise InputError(f"tilt series {ts.ts_id}: no beads found at {params.bead_diameter_nm:g} nm; {hint}",
                             field="bead_diameter_nm", expected="the gold bead diameter in nm "
                             "(or align-patches when there are no beads)")
        tr = track_beads(imgs, tilt, xf_b, d_b, skip=skip, max_beads=params.target_beads, binning=1)
        pos = tr.positions_xy
        use = ~skip
        frac = torch.isfinite(pos[use, :, 0]).double().mean(0)
        good = frac >= params.min_track_fraction
        if int(good.sum()) < params.min_beads:
            raise InputError(f"tilt series {ts.ts_id}: only {int(good.sum())} beads could be tracked through "
                             f"{params.min_track_fraction:.0%} of the views", field="bead_diameter_nm",
                             expected=f"at least {params.min_beads} beads; try align-patches "
                             "(fiducial-less) for this tilt series")
        pos = pos[:, good]
        pos_full = points_to_full(pos, b)
        model = LandmarkModel(ts_id=ts.ts_id, image_shape_yx=shape, pixel_size_a=px, bead_diameter_px=diam_full,
                              beads=positions_to_beads(pos_full))
        try:
            sol = solve_alignment(pos_full, tilt, shape, float(torch.median(xf_rotation_deg(xf_b))), level_specimen=True)
            for j, bead in enumerate(model.beads):
                bead.surface = int(sol.surface[j]) if params.two_surfaces else None
                bead.xyz_px = tuple(float(x) for x in sol.points_xyz[j])
                r = float(sol.residual_mean_per_bead_px[j])
                bead.residual_mean_px = r if math.isfinite(r) else None
            resid = sol.residual_mean_px
        except ValueError:
            resid = float("nan")
        fid = ctx.out_dir / f"{ts.ts_id}.fid"
        pts = [np.array([[x, y, v] for v, x, y in bead.points], dtype=np.float64) for bead in model.beads]
        write_fiducials(fid, pts, (shape[1], shape[0], len(ts.images)), pixel_size_a=px)
        model.fid_path = str(fid)
        result = UnitResult()
        result.artifacts.append(ctx.write_record("landmarks", ts.ts_id, model))
        result.metrics.update({"beads": float(len(model.beads)), "binning": float(b),
                               "track_fraction_mean": float(frac[good].mean()),
                               "residual_mean_px": resid})
        return result
