"""``tomogram-postprocess``: trim, rotate about X / flip explicitly, normalise, write float32 or 8-bit.

Order of operations: trim (index ranges of the input, half-open), rotate about X by 90° turns
(``rotate_x_turns=-1`` is IMOD ``trimvol -rx``), flip named output axes, then normalise / convert.
Works slab by slab from a memory map, so a large tomogram never has to fit in memory. Half tomograms
are processed the same way when present.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from pydantic import Field

from tomoforge.core.reconstruct.postprocess import (
    normalise,
    plan_reorient,
    read_reoriented,
    to_8bit,
    volume_stats,
)
from tomoforge.errors import InputError, ParamError
from tomoforge.io.mrc import open_stack
from tomoforge.io.mrc_stream import MrcSlabWriter
from tomoforge.model import Tomogram
from tomoforge.steps.base import Port, Step, StepParams, Unit, UnitContext, UnitResult


class TomogramPostprocessParams(StepParams):
    trim_x: tuple[int, int] | None = Field(None, description="Keep input X indices [start, stop)")
    trim_y: tuple[int, int] | None = Field(None, description="Keep input Y indices [start, stop)")
    trim_z: tuple[int, int] | None = Field(None, description="Keep input Z indices [start, stop)")
    rotate_x_turns: int = Field(0, ge=-3, le=3, description="Right-handed 90° turns about X (-1: trimvol -rx)")
    flip: str = Field("", pattern="^[xyz]*$", description="Output axes to mirror (changes handedness!)")
    normalise: Literal["none", "mean_sd"] = Field("none", description="mean_sd: zero mean, unit SD")
    invert: bool = Field(False, description="Invert contrast (dense becomes bright)")
    output: Literal["float32", "int8", "uint8"] = Field(
        "float32", description="int8 is MRC mode 0 (signed); uint8 is stored as mode 6")
    n_sd: float = Field(3.0, gt=0, description="8-bit window: mean +- n_sd SD")
    halves: bool = Field(True, description="Also process the half tomograms when present")
    max_slab_mb: float = Field(256.0, gt=0, description="Memory for one output slab (MB)")


class TomogramPostprocess(Step):
    name = "tomogram-postprocess"
    title = "Trim, reorient, normalise and convert tomograms (float or 8-bit)"
    Params = TomogramPostprocessParams
    inputs = {"tomogram": Port(Tomogram, "Tomogram(s) to post-process")}
    outputs = {"tomogram": Port(Tomogram, "Post-processed tomogram")}

    def run_unit(self, params: TomogramPostprocessParams, unit: Unit, ctx: UnitContext) -> UnitResult:
        tomo: Tomogram = unit.one("tomogram").load(Tomogram)  # type: ignore[assignment]
        trim = {"z": params.trim_z, "y": params.trim_y, "x": params.trim_x}
        try:
            plan = plan_reorient(tomo.shape_zyx, trim, params.rotate_x_turns, params.flip)
        except ValueError as err:
            raise ParamError(f"tomogram {tomo.ts_id} is {tomo.shape_zyx[2]} x {tomo.shape_zyx[1]} x "
                             f"{tomo.shape_zyx[0]} (X x Y x Z): {err}", field="trim",
                             expected="ranges inside the volume") from None
        paths = {"path": tomo.path, "half1_path": tomo.half1_path, "half2_path": tomo.half2_path}
        out_paths: dict[str, str | None] = {"half1_path": None, "half2_path": None}
        shape = tuple(p[3] for p in plan)
        for key, src in paths.items():
            if src is None or (key != "path" and not params.halves):
                continue
            suffix = {"path": "", "half1_path": "_half1", "half2_path": "_half2"}[key]
            dest = ctx.out_dir / f"{tomo.ts_id}_post{suffix}.mrc"
            self._process(src, dest, plan, shape, tomo.pixel_size_a, params, tomo.shape_zyx)
            out_paths[key] = str(dest)
        new = tomo.model_copy(update={"path": out_paths["path"], "half1_path": out_paths["half1_path"],
                                      "half2_path": out_paths["half2_path"], "shape_zyx": shape})
        ctx.log(f"{tomo.ts_id}: {tomo.shape_zyx} -> {shape} (z, y, x), {params.output}")
        result = UnitResult()
        result.artifacts.append(ctx.write_record("tomogram", tomo.ts_id, new))
        result.log.extend(ctx.log_lines)
        return result

    @staticmethod
    def _process(src: str, dest, plan, shape, voxel_a: float, params: TomogramPostprocessParams,
                 expected_zyx) -> None:
        data = open_stack(src)
        if data.ndim != 3 or tuple(data.shape) != tuple(expected_zyx):
            raise InputError(f"volume is {tuple(data.shape)} but its record says {tuple(expected_zyx)}",
                             path=src, expected="the MRC the tomogram record describes")
        # Statistics of the kept region, from a subsample (the trimmed block as a lazy view).
        region = data[tuple(slice(p[2], p[2] + p[3]) for p in sorted(plan, key=lambda p: p[0]))]
        stats = volume_stats(region)
        dtype = {"float32": np.float32, "int8": np.int8, "uint8": np.uint8}[params.output]
        d, h, w = shape
        rows = max(1, min(h, int(params.max_slab_mb * 2**20 // max(d * w * 4 * 3, 1))))
        with MrcSlabWriter(dest, shape, voxel_a, dtype=dtype, label="tomoforge tomogram-postprocess") as out:
            for y0 in range(0, h, rows):
                y1 = min(h, y0 + rows)
                slab = torch.from_numpy(np.array(read_reoriented(data, plan, y0, y1), dtype=np.float32))
                if params.output == "float32":
                    if params.normalise == "mean_sd":
                        slab = normalise(slab, stats, invert=params.invert)
                    elif params.invert:
                        slab = -slab
                else:
                    slab = to_8bit(slab, stats, n_sd=params.n_sd, signed=params.output == "int8",
                                   invert=params.invert)
                out.write_slab(y0, y1, slab.numpy())
