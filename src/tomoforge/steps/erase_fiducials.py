"""``erase-fiducials``: replace gold beads in every view by noise matched to their surroundings.

Two ways to know where beads are:

- ``project`` (needs an aligned tilt series and 3D bead positions: the refined ``landmarks`` of
  fiducial-align, or bead picks ``Coordinates3D`` with the ``Tomogram`` they were picked in): each bead's
  3D position is projected into every view with the alignment, then refined locally by template matching
  (the prediction may be off by a few pixels);
- ``detect``: a disc template is matched in every view on its own (no 3D positions, no alignment).

``auto`` uses ``project`` when landmarks or picks are given, else ``detect``. The erased pixels get the local mean (a ring
around the bead) plus noise of the view's SD outside beads (fidder's idea; the seeds' deep-learning fidder
cannot download its weights here, so this is model-based). Even/odd images are erased at the same positions.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field

from tomoforge.core.reconstruct.erase import (
    detect_beads,
    erase_beads,
    project_beads,
    refine_bead_positions,
)
from tomoforge.core.reconstruct.projector import voxels_to_specimen
from tomoforge.errors import InputError
from tomoforge.model import Coordinates3D, TiltSeries, Tomogram
from tomoforge.model.landmarks import LandmarkModel
from tomoforge.steps._views import has_all, read_views, stack_name, with_images, write_stack
from tomoforge.steps.base import Port, Step, StepParams, Unit, UnitContext, UnitResult
from tomoforge.steps.reconstruct import alignment_of


class EraseFiducialsParams(StepParams):
    mode: Literal["auto", "project", "detect"] = Field(
        "auto", description="project: from 3D bead picks + alignment; detect: template matching per view")
    bead_diameter_a: float | None = Field(None, gt=0, description="Gold bead diameter (Å); default: the "
                                                                  "landmark model's, else 100 Å")
    dilate_px: float = Field(1.5, ge=0, le=50, description="Extra pixels erased around each bead")
    search_px: float = Field(6.0, ge=0, le=200, description="How far a projected bead may be from its "
                                                            "prediction (pixels of the views)")
    detect_threshold: float = Field(0.5, gt=0, lt=1, description="detect: normalised correlation threshold")
    min_contrast_sd: float = Field(3.0, ge=0, description="detect: a bead must be this many noise SDs darker")
    beads_are_dark: bool = Field(True, description="Beads darker than the background (cryo-EM images)")
    even_odd: bool = Field(True, description="Also erase the even/odd images at the same positions")
    seed: int = Field(0, description="Random seed of the replacement noise (reproducible output)")


class EraseFiducials(Step):
    name = "erase-fiducials"
    title = "Erase gold fiducials from tilt images (projected 3D positions or template detection)"
    Params = EraseFiducialsParams
    inputs = {"tilt_series": Port(TiltSeries, "Tilt series (aligned for mode=project)"),
              "landmarks": Port(LandmarkModel, "Refined fiducial model with 3D bead positions (fiducial-align)",
                                optional=True),
              "beads": Port(Coordinates3D, "3D bead positions (Å from voxel 0 of the tomogram)", optional=True),
              "tomogram": Port(Tomogram, "The tomogram the bead positions refer to", optional=True)}
    outputs = {"tilt_series": Port(TiltSeries, "Tilt series with beads erased")}

    def _positions(self, params: EraseFiducialsParams, unit: Unit, ts: TiltSeries, views: torch.Tensor,
                   radius_px: float, ctx: UnitContext) -> torch.Tensor:
        beads = unit.inputs.get("beads", [])
        landmarks = unit.inputs.get("landmarks", [])
        mode = params.mode if params.mode != "auto" else ("project" if beads or landmarks else "detect")
        dark = params.beads_are_dark
        if mode == "detect":
            found = [detect_beads(views[i], radius_px, threshold=params.detect_threshold, dark=dark,
                                  min_contrast_sd=params.min_contrast_sd) for i in range(views.shape[0])]
            n = max((len(f) for f in found), default=0)
            pos = torch.full((views.shape[0], n, 2), -1e6, dtype=torch.float64)  # padding: off the image
            for i, f in enumerate(found):
                pos[i, :len(f)] = f
            ctx.log(f"detect: {sum(len(f) for f in found)} beads over {views.shape[0]} views")
            return pos
        if len(landmarks) == 1:
            lm: LandmarkModel = landmarks[0].load(LandmarkModel)  # type: ignore[assignment]
            xyz = [b.xyz_px for b in lm.beads if b.xyz_px is not None]
            if not xyz:
                raise InputError(f"tilt series {ts.ts_id}: the landmark model has no 3D bead positions",
                                 field="landmarks", expected="the refined landmarks output of fiducial-align")
            tilt, xf = alignment_of(ts, ts.images)
            # xyz_px are in pixels of the model's images; rescale to this series' pixels.
            spec = torch.tensor(xyz, dtype=torch.float64) * (lm.pixel_size_a / ts.acquisition.pixel_size_a)
            predicted = project_beads(spec, tilt, xf, tuple(views.shape[-2:]))
            ctx.log(f"project: {len(xyz)} beads of the landmark model projected into {views.shape[0]} views")
            return self._refine(views, predicted, radius_px, params, ctx)
        tomos = unit.inputs.get("tomogram", [])
        if len(beads) != 1 or len(tomos) != 1:
            raise InputError(f"tilt series {ts.ts_id}: mode=project needs 3D bead positions", field="beads",
                             expected="the landmarks of fiducial-align, or beads (Coordinates3D) with their "
                                      "tomogram, for this tilt series; or mode=detect")
        picks: Coordinates3D = beads[0].load(Coordinates3D)  # type: ignore[assignment]
        tomo: Tomogram = tomos[0].load(Tomogram)  # type: ignore[assignment]
        tilt, xf = alignment_of(ts, ts.images)
        vox = torch.tensor([[p.x_a, p.y_a, p.z_a] for p in picks.particles], dtype=torch.float64)
        vox = vox / tomo.pixel_size_a
        px_per_vox = tomo.pixel_size_a / ts.acquisition.pixel_size_a
        # The tomogram's Z shift is in pixels of the series it was reconstructed from (voxel / binning).
        z_shift = tomo.z_shift_px * px_per_vox / tomo.binning
        spec = voxels_to_specimen(vox.reshape(-1, 3), tomo.shape_zyx, binning=px_per_vox, z_shift_px=z_shift)
        predicted = project_beads(spec, tilt, xf, tuple(views.shape[-2:]), x_tilt_deg=tomo.x_tilt_deg)
        ctx.log(f"project: {len(picks.particles)} beads projected into {views.shape[0]} views")
        return self._refine(views, predicted, radius_px, params, ctx)

    @staticmethod
    def _refine(views, predicted, radius_px: float, params: EraseFiducialsParams, ctx: UnitContext):
        refined = refine_bead_positions(views, predicted, radius_px, search_px=params.search_px,
                                        dark=params.beads_are_dark)
        # Overlapping beads pull each other's refinement off; where refinement moved a bead by more than
        # a pixel, erase at the prediction as well (erasing a little more beats leaving half a bead).
        moved = (refined - predicted).norm(dim=-1) > 1.0
        extra = torch.where(moved[..., None], predicted, torch.full_like(predicted, -1e6))
        ctx.log(f"project: {int(moved.sum())} of {moved.numel()} bead images moved > 1 px by refinement")
        return torch.cat([refined, extra], dim=1)

    def run_unit(self, params: EraseFiducialsParams, unit: Unit, ctx: UnitContext) -> UnitResult:
        ts: TiltSeries = unit.one("tilt_series").load(TiltSeries)  # type: ignore[assignment]
        px = ts.acquisition.pixel_size_a
        diameter_a = params.bead_diameter_a
        if diameter_a is None:
            lms = unit.inputs.get("landmarks", [])
            lm = lms[0].load(LandmarkModel) if len(lms) == 1 else None
            diameter_a = lm.bead_diameter_px * lm.pixel_size_a if lm is not None else 100.0  # type: ignore[union-attr]
        radius_px = 0.5 * diameter_a / px
        views = read_views(ts)
        pos = self._positions(params, unit, ts, views, radius_px, ctx)
        kinds = ["image"] + (["even", "odd"] if params.even_odd and has_all(ts.images, "even")
                             and has_all(ts.images, "odd") else [])
        out = ts
        for k, kind in enumerate(kinds):
            data = views if kind == "image" else read_views(ts, which=kind)
            gen = torch.Generator().manual_seed(params.seed + k)
            erased = erase_beads(data, pos, radius_px, dilate_px=params.dilate_px, generator=gen)
            suffix = {"image": "_erased", "even": "_erased_EVN", "odd": "_erased_ODD"}[kind]
            refs = write_stack(stack_name(ctx.out_dir, ts.ts_id, suffix), erased, ts.acquisition.pixel_size_a)
            out = with_images(out, refs, which=kind)
        result = UnitResult()
        result.artifacts.append(ctx.write_record("tilt_series", ts.ts_id, out))
        on_image = ((pos[..., 0] >= 0) & (pos[..., 0] < views.shape[-1])
                    & (pos[..., 1] >= 0) & (pos[..., 1] < views.shape[-2]))
        result.metrics["beads_erased"] = float(on_image.sum())
        result.log.extend(ctx.log_lines)
        return result
