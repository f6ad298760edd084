"""``reconstruct``: aligned tilt series -> tomogram (WBP, SIRT-like WBP or SIRT), streamed to MRC.

The raw views are read once and sampled through each view's ``.xf`` at back-projection (one interpolation).
The output is X,Y,Z as IMOD shows it after ``trimvol -rx``: arrays ``(z, y, x)``, Z the thickness. Slabs of
Y rows are written into the MRC as they are finished, so memory holds the views plus one slab. With
even/odd images on every view, two half tomograms are reconstructed the same way.

Thickness and Z shift are given in pixels of the input tilt series (``px_units="unbinned"``) or of the
output (``"binned"``). The Z shift follows IMOD's SHIFT: positive moves the specimen up in the output.
A binning that does not divide the image size gives ``floor(size / binning)`` voxels centred on the image
centre (the remainder is split between both edges); the log says so.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from pydantic import Field

from tomoforge.core.reconstruct.sirt import reconstruct_sirt
from tomoforge.core.reconstruct.wbp import reconstruct_wbp
from tomoforge.errors import InputError, ParamError
from tomoforge.io.mrc_stream import MrcSlabWriter
from tomoforge.model import TiltImage, TiltSeries, Tomogram
from tomoforge.steps._views import has_all, read_views
from tomoforge.steps.base import Port, Resources, Step, StepParams, Unit, UnitContext, UnitResult

ALIGNMENT_HINT = ("transforms on the views: run fiducial-align or align-patches (or assign-alignment, or import an "
                  "IMOD .xf) first")


class ReconstructParams(StepParams):
    method: Literal["wbp", "sirt-like", "sirt"] = Field(
        "wbp", description="wbp: weighted back-projection; sirt-like: WBP with a filter equivalent to "
                           "sirt_iterations of SIRT (IMOD FakeSIRTiterations); sirt: real SIRT")
    filter: Literal["ramp", "hamming", "cosine"] = Field("ramp", description="WBP radial filter roll-off")
    radial_cutoff: float | None = Field(None, gt=0, le=0.5,
                                        description="IMOD RADIAL cutoff, cycles per output voxel (none: off)")
    radial_falloff: float = Field(0.035, gt=0, le=0.5, description="IMOD RADIAL Gaussian fall-off sigma")
    sirt_iterations: int = Field(10, ge=1, le=500, description="Iterations for sirt and sirt-like")
    thickness_px: float = Field(300.0, description="Tomogram thickness (Z), in pixels of px_units")
    z_shift_px: float = Field(0.0, description="IMOD SHIFT in Z, pixels of px_units; positive moves the "
                                               "specimen up in the output")
    px_units: Literal["unbinned", "binned"] = Field(
        "unbinned", description="unbinned: pixels of the input tilt series; binned: output voxels")
    binning: int = Field(1, ge=1, le=64, description="Output voxel size in input pixels")
    x_tilt_deg: float = Field(0.0, ge=-45, le=45, description="Tilt of the specimen about X (IMOD XAXISTILT)")
    half_tomograms: bool = Field(True, description="Also reconstruct even/odd halves when every view has them")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto: CUDA when available")
    max_slab_mb: float = Field(256.0, gt=0, description="Memory for one slab of output rows (MB)")


def _device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise ParamError("CUDA was requested but is not available", field="device", expected="cpu or auto")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def output_shape(params: ReconstructParams, image_shape_yx: tuple[int, int]) -> tuple[tuple[int, int, int],
                                                                                        float, list[str]]:
    """Volume shape ``(d, h, w)`` in output voxels, the Z shift in input pixels, and log notes."""
    if params.thickness_px <= 0:
        raise ParamError(f"thickness must be positive, got {params.thickness_px:g}", field="thickness_px",
                         expected="a thickness in pixels > 0 (e.g. 300)")
    b = params.binning
    scale = 1.0 if params.px_units == "unbinned" else float(b)
    thickness_in = params.thickness_px * scale
    d = max(1, int(round(thickness_in / b)))
    h_img, w_img = image_shape_yx
    h, w = h_img // b, w_img // b
    notes = []
    if h < 1 or w < 1:
        raise ParamError(f"binning {b} leaves no pixels of a {w_img} x {h_img} image", field="binning",
                         expected=f"at most {min(h_img, w_img)}")
    if h_img % b or w_img % b:
        notes.append(f"binning {b} does not divide the image size {w_img} x {h_img}: the tomogram is {w} x {h} "
                     f"voxels centred on the image centre ({w_img - w * b} x {h_img - h * b} edge pixels left out)")
    if abs(d * b - thickness_in) > 1e-6:
        notes.append(f"thickness {thickness_in:g} input pixels rounded to {d} voxels of {b}")
    return (d, h, w), params.z_shift_px * scale, notes


def alignment_of(ts: TiltSeries, views: list[TiltImage]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(tilt_deg (v,), xf (v, 2, 3))`` of ``views``; InputError naming the step that provides them."""
    if not any(im.transform is not None for im in ts.images):
        raise InputError(f"tilt series {ts.ts_id} has no alignment", field="transform", expected=ALIGNMENT_HINT)
    missing = [im for im in views if im.transform is None]
    if missing:
        names = ", ".join(f"{im.tilt_angle_deg:g}°" for im in missing[:6])
        raise InputError(f"tilt series {ts.ts_id}: {len(missing)} view(s) have no transform ({names})",
                         field="transform", expected=ALIGNMENT_HINT + " (or exclude those views)")
    xf = torch.tensor([im.transform.as_rows() for im in views], dtype=torch.float64)
    tilt = torch.tensor([im.tilt_angle_deg for im in views], dtype=torch.float64)
    return tilt, xf


class Reconstruct(Step):
    name = "reconstruct"
    title = "Reconstruct tomograms (WBP, SIRT-like WBP or SIRT), slab by slab, with half tomograms"
    Params = ReconstructParams
    inputs = {"tilt_series": Port(TiltSeries, "Aligned tilt series (transforms and refined angles on views)")}
    outputs = {"tomogram": Port(Tomogram, "Tomogram (X,Y,Z), MRC with the pixel size in the header")}
    resources = Resources(cores=4, gpus=0, mem_gb=16.0, walltime_min=120)

    def plan(self, params: ReconstructParams, inputs) -> list[Unit]:
        units = super().plan(params, inputs)
        for u in units:  # refuse a missing alignment before anything runs
            ts: TiltSeries = u.one("tilt_series").load(TiltSeries)  # type: ignore[assignment]
            alignment_of(ts, ts.active())
            if ts.image_shape_yx is not None:
                output_shape(params, ts.image_shape_yx)
        return units

    def run_unit(self, params: ReconstructParams, unit: Unit, ctx: UnitContext) -> UnitResult:
        ts: TiltSeries = unit.one("tilt_series").load(TiltSeries)  # type: ignore[assignment]
        views = ts.active()
        if not views:
            raise InputError(f"tilt series {ts.ts_id}: every view is excluded", field="excluded",
                             expected="at least one view to reconstruct from")
        tilt, xf = alignment_of(ts, views)
        device = _device(params.device)
        kinds = ["image"]
        if params.half_tomograms and has_all(views, "even") and has_all(views, "odd"):
            kinds += ["even", "odd"]
        px = ts.acquisition.pixel_size_a
        result = UnitResult()
        paths = {}
        shape = None
        for kind in kinds:
            stack = read_views(ts, views, which=kind).to(device)
            shape, z_shift, notes = output_shape(params, tuple(stack.shape[-2:]))
            if kind == "image":
                for n in notes:
                    ctx.log(n)
            suffix = {"image": "", "even": "_half1", "odd": "_half2"}[kind]
            path = ctx.out_dir / f"{ts.ts_id}{suffix}.mrc"
            self._reconstruct_to(path, stack, tilt, xf, shape, z_shift, px * params.binning, params)
            paths[kind] = str(path)
            ctx.log(f"{kind}: {len(views)} views -> {shape[2]} x {shape[1]} x {shape[0]} (X x Y x Z) "
                    f"at {px * params.binning:.3f} Å/voxel, {params.method}")
            del stack
        tomo = Tomogram(ts_id=ts.ts_id, path=paths["image"], pixel_size_a=px * params.binning,
                        shape_zyx=shape, binning=float(params.binning), half1_path=paths.get("even"),
                        half2_path=paths.get("odd"), ctf_corrected=ts.ctf_corrected, method=params.method,
                        z_shift_px=z_shift, x_tilt_deg=params.x_tilt_deg)
        result.artifacts.append(ctx.write_record("tomogram", ts.ts_id, tomo))
        result.metrics.update({"views_used": float(len(views)), "thickness_vox": float(shape[0]),
                               "pixel_size_a": px * params.binning})
        result.log.extend(ctx.log_lines)
        return result

    @staticmethod
    def _reconstruct_to(path, stack, tilt, xf, shape, z_shift_px, voxel_a, params: ReconstructParams) -> None:
        d, h, w = shape
        slab_bytes = int(params.max_slab_mb * 2**20)
        with MrcSlabWriter(path, shape, voxel_a, dtype=np.float32) as writer:
            common = dict(binning=params.binning, z_shift_px=z_shift_px, x_tilt_deg=params.x_tilt_deg,
                          on_slab=writer.write_slab)
            if params.method == "sirt":
                reconstruct_sirt(stack, tilt, xf, shape, iterations=params.sirt_iterations,
                                 max_slab_bytes=max(slab_bytes // 4, d * w * 4), **common)
            else:
                filt = "sirt-like" if params.method == "sirt-like" else params.filter
                reconstruct_wbp(stack, tilt, xf, shape, filter=filt, cutoff=params.radial_cutoff,
                                falloff=params.radial_falloff, sirt_iterations=params.sirt_iterations,
                                max_slab_bytes=slab_bytes, **common)


__all__ = ["Reconstruct", "ReconstructParams", "alignment_of", "output_shape"]
