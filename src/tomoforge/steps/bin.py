"""``bin``: Fourier-crop binning of tilt series by any factor (the seeds' "preprocess"), with normalisation.

The pixel size grows by the actual factor (``n_in / n_out``, which differs from the requested one by the
rounding of the size), and alignment shifts already on the views are rescaled to the new pixels.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tomoforge.core.binning import bin_images
from tomoforge.model import TiltSeries
from tomoforge.steps._views import has_all, read_views, stack_name, with_images, write_stack
from tomoforge.steps.base import Port, Step, StepParams, Unit, UnitContext, UnitResult


class BinParams(StepParams):
    factor: float = Field(2.0, gt=0, le=64, description="Binning factor (any positive number; <1 upsamples)")
    normalisation: Literal["none", "mean", "sum", "zscore"] = Field(
        "none", description="none keeps the mean; sum keeps counts per area; mean divides by the mean; "
                            "zscore gives mean 0, SD 1 per view")
    edge_fraction: float = Field(0.1, ge=0, le=0.5, description="Anti-aliasing cosine edge (fraction of Nyquist)")
    even_odd: bool = Field(True, description="Also bin the even/odd images when present")


class Bin(Step):
    name = "bin"
    title = "Bin tilt series by Fourier cropping (any factor), with intensity normalisation"
    Params = BinParams
    inputs = {"tilt_series": Port(TiltSeries, "Tilt series with images")}
    outputs = {"tilt_series": Port(TiltSeries, "Binned tilt series")}

    def run_unit(self, params: BinParams, unit: Unit, ctx: UnitContext) -> UnitResult:
        ts: TiltSeries = unit.one("tilt_series").load(TiltSeries)  # type: ignore[assignment]
        acq = ts.acquisition
        out = ts
        scale = (1.0, 1.0)
        which = ["image"] + (["even", "odd"] if params.even_odd and has_all(ts.images, "even")
                             and has_all(ts.images, "odd") else [])
        shape = ts.image_shape_yx
        for kind in which:
            views = read_views(ts, which=kind)
            binned, scale = bin_images(views, params.factor, edge_fraction=params.edge_fraction,
                                       normalisation=params.normalisation)
            shape = tuple(binned.shape[-2:])
            suffix = {"image": "", "even": "_EVN", "odd": "_ODD"}[kind]
            refs = write_stack(stack_name(ctx.out_dir, ts.ts_id, suffix), binned, acq.pixel_size_a * scale[1])
            out = with_images(out, refs, which=kind)
        images = []
        for im in out.images:
            t = im.transform
            if t is not None:  # shifts are in pixels of the (aligned) image: rescale them
                t = t.model_copy(update={"dx_px": t.dx_px / scale[1], "dy_px": t.dy_px / scale[0]})
            images.append(im.model_copy(update={"transform": t}))
        new_px = acq.pixel_size_a * scale[1]
        out = out.model_copy(update={"images": images, "image_shape_yx": shape,
                                     "acquisition": acq.model_copy(update={"pixel_size_a": new_px})})
        if abs(scale[0] - scale[1]) > 1e-6:
            out.notes.append(f"bin: pixel size differs in y ({acq.pixel_size_a * scale[0]:.4f} Å) and x "
                             f"({new_px:.4f} Å) after rounding the image size")
        result = UnitResult()
        result.artifacts.append(ctx.write_record("tilt_series", ts.ts_id, out))
        result.metrics.update({"pixel_size_a": new_px, "factor_x": scale[1], "factor_y": scale[0]})
        return result
