"""``motion-correct``: align the frames of every tilt movie and sum them into a tilt-series stack.

Per tilt series: gain (and dark) correction with the series' gain orientation, defect pixels, full-frame
alignment (and optionally the patch model), sums over the chosen frame range, binned by Fourier cropping,
optionally dose weighted, and optionally even/odd halves as two more tilt series. The per-frame shifts go
into a TSV table and one RELION motion STAR per view (data_general + data_global_shift).

Shifts everywhere are the content displacement of a frame relative to the first aligned frame, in movie
pixels (before binning), RELION's ``rlnMicrographShiftX/Y`` sense: the frame is corrected by moving it
back by that amount.

Bad input is refused in ``plan`` (before anything is written or registered): a gain reference whose size
does not fit the frames (with a rotation hint when a quarter turn would fit), frames of unequal shape in a
movie, and a frame range past the end of a movie.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from pydantic import Field, model_validator

from tomoforge.core.binning import output_shape
from tomoforge.core.dose import frame_dose_weights
from tomoforge.core.gain import apply_gain_orientation, check_gain_shape
from tomoforge.core.motion import (
    apply_gain,
    correct_defects,
    defect_mask_from_coordinates,
    defects_from_gain,
    estimate_global_shifts,
    estimate_patch_motion,
    frame_indices,
    frame_outliers,
    sum_frames,
)
from tomoforge.errors import InputError, ParseError
from tomoforge.io.atomic import write_text_atomic
from tomoforge.io.movie import movie_shape, read_gain_reference, read_movie
from tomoforge.io.star import write_star
from tomoforge.model import TiltImage, TiltSeries
from tomoforge.model.motion import MotionShifts
from tomoforge.steps._views import stack_name, with_images, write_stack
from tomoforge.steps.base import Port, Resources, Step, StepParams, Unit, UnitContext, UnitResult


class MotionCorrectParams(StepParams):
    first_frame: int = Field(0, ge=0, description="First frame to align (0-based)")
    last_frame: int | None = Field(None, ge=0, description="Last frame to align (0-based, inclusive; empty: last)")
    sum_first_frame: int | None = Field(None, ge=0, description="First frame to sum (empty: the align range)")
    sum_last_frame: int | None = Field(None, ge=0, description="Last frame to sum (empty: the align range)")
    bin_factor: float = Field(1.0, ge=1.0, le=16.0, description="Fourier-crop binning (2 for super-resolution)")
    b_factor_a2: float = Field(150.0, ge=0, description="B-factor weighting the correlations (Å²)")
    patches_x: int = Field(0, ge=0, le=20, description="Patches along x for local motion (0: full frame only)")
    patches_y: int = Field(0, ge=0, le=20, description="Patches along y for local motion")
    patch_b_factor_a2: float = Field(500.0, ge=0, description="B-factor for the patch alignment (Å²)")
    max_shift_px: float | None = Field(None, gt=0, description="Largest shift searched per iteration (movie px)")
    dose_weighting: bool = Field(False, description="Weight frames by the exposure filter (Grant & Grigorieff)")
    split_even_odd: bool = Field(False, description="Also sum even and odd frames into two more tilt series")
    defects_file: str | None = Field(None, description="Text file of defect pixels, one 'x y' per line (0-based)")
    max_cc_size: int = Field(1024, ge=64, description="Correlate on a Fourier-cropped copy at most this size")
    outlier_sd: float | None = Field(10.0, gt=0, description="Replace single-frame pixels this many SDs above "
                                                            "their frame (X-ray hits) before aligning and summing")

    @model_validator(mode="after")
    def _patches_both_or_none(self) -> MotionCorrectParams:
        if bool(self.patches_x) != bool(self.patches_y):
            raise ValueError("set both patches_x and patches_y (or neither)")
        return self


def _read_defects(path: str) -> list[tuple[int, int]]:
    pts = []
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as err:
        raise ParseError(f"cannot read: {err.strerror}", path=path) from None
    for i, line in enumerate(lines, 1):
        text = line.split("#")[0].strip()
        if not text:
            continue
        parts = text.replace(",", " ").split()
        try:
            x, y = int(float(parts[0])), int(float(parts[1]))
        except (ValueError, IndexError):
            raise ParseError(f"bad defect line {line!r}", path=path, line=i, expected="'x y' pixel coordinates") from None
        pts.append((x, y))
    return pts


def _stack_only(ts: TiltSeries) -> bool:
    """A tilt series imported from a stack without its movies: motion correction passes it through."""
    return all(im.movie is None and im.image is not None for im in ts.images)


def _movie_views(ts: TiltSeries) -> list[TiltImage]:
    missing = [im for im in ts.images if im.movie is None]
    if missing:
        raise InputError(f"tilt series {ts.ts_id} has views without a movie (e.g. {missing[0].tilt_angle_deg:g}°)",
                         expected="tilt series imported with import-movies")
    return ts.in_acquisition_order()


def _frame_count(im: TiltImage) -> tuple[int, int, int]:
    n, h, w = movie_shape(im.movie.path)
    group = im.movie.eer_frames_per_group
    if group and im.movie.path.lower().endswith(".eer"):
        n = n // group
    return n, h, w


def _ranges(params: MotionCorrectParams, n: int, path: str) -> tuple[list[int], list[int]]:
    try:
        align = frame_indices(n, params.first_frame, params.last_frame)
        s0 = params.first_frame if params.sum_first_frame is None else params.sum_first_frame
        s1 = params.last_frame if params.sum_last_frame is None and params.sum_first_frame is None \
            else params.sum_last_frame
        summed = frame_indices(n, s0, s1)
    except ValueError as err:
        raise InputError(str(err), path=path, field="last_frame",
                         expected=f"frames within 0..{n - 1}") from None
    return align, summed


class MotionCorrect(Step):
    name = "motion-correct"
    title = "Align and sum tilt movies (full frame or patches), with gain, binning, dose weighting, even/odd"
    Params = MotionCorrectParams
    inputs = {"tilt_series": Port(TiltSeries, "Tilt series of movies (import-movies)")}
    outputs = {"tilt_series": Port(TiltSeries, "Motion-corrected tilt series"),
               "shifts": Port(MotionShifts, "Per-frame shifts, TSV table and RELION motion STAR files"),
               "even": Port(TiltSeries, "Sums of even frames", optional=True),
               "odd": Port(TiltSeries, "Sums of odd frames", optional=True)}
    resources = Resources(cores=2, mem_gb=8.0)

    def plan(self, params: MotionCorrectParams, inputs) -> list[Unit]:
        units = super().plan(params, inputs)
        for unit in units:
            ts = unit.one("tilt_series").load(TiltSeries)
            if _stack_only(ts):
                continue
            shape = None
            for im in _movie_views(ts):
                n, h, w = _frame_count(im)  # unequal frame shapes raise ParseError here
                _ranges(params, n, im.movie.path)
                if shape is not None and (h, w) != shape:
                    raise InputError(f"movie is {h}x{w} but other movies of {ts.ts_id} are {shape[0]}x{shape[1]}",
                                     path=im.movie.path, expected="one frame size per tilt series")
                shape = (h, w)
            if ts.gain_path and shape is not None:
                gain = read_gain_reference(ts.gain_path)
                try:
                    check_gain_shape(tuple(gain.shape), shape, ts.gain_rotation)
                except InputError as err:
                    raise InputError(str(err), path=ts.gain_path) from None
            if params.defects_file:
                _read_defects(params.defects_file)
        return units

    def run_unit(self, params: MotionCorrectParams, unit: Unit, ctx: UnitContext) -> UnitResult:
        ts: TiltSeries = unit.one("tilt_series").load(TiltSeries)  # type: ignore[assignment]
        if _stack_only(ts):
            ctx.log("no movies (imported from a stack): passed through unchanged")
            return UnitResult(artifacts=[ctx.write_record("tilt_series", ts.ts_id, ts)],
                              metrics={"passed_through": 1.0})
        acq = ts.acquisition
        px = acq.pixel_size_a
        gain = torch.from_numpy(np.array(read_gain_reference(ts.gain_path))) if ts.gain_path else None
        dark = torch.from_numpy(np.array(read_gain_reference(ts.dark_path))) if ts.dark_path else None
        views = _movie_views(ts)  # acquisition order
        sums, evens, odds, shifts_xy, fit_rms, movie_shapes = {}, {}, {}, [], [], []
        n_hits = 0
        defect_mask = None
        align_idx = summed_idx = []
        for im in views:
            frames = torch.from_numpy(np.array(read_movie(im.movie.path, im.movie.eer_frames_per_group)))
            n, h, w = frames.shape
            align_idx, summed_idx = _ranges(params, n, im.movie.path)
            frames = apply_gain(frames, gain, rotation=ts.gain_rotation, flip=ts.gain_flip, dark=dark)
            if defect_mask is None:
                defect_mask = torch.zeros((h, w), dtype=torch.bool)
                if gain is not None:
                    defect_mask |= defects_from_gain(apply_gain_orientation(gain, ts.gain_rotation, ts.gain_flip))
                if params.defects_file:
                    defect_mask |= defect_mask_from_coordinates((h, w), _read_defects(params.defects_file))
            frames = correct_defects(frames, defect_mask)
            if params.outlier_sd is not None:
                hits = frame_outliers(frames, params.outlier_sd)
                if bool(hits.any()):
                    frames = correct_defects(frames, hits)
                    n_hits += int(hits.sum())
            shifts = torch.zeros(n, 2)
            shifts[align_idx] = estimate_global_shifts(frames[align_idx], pixel_size_a=px,
                                                       b_factor_a2=params.b_factor_a2,
                                                       max_shift_px=params.max_shift_px,
                                                       max_cc_size=params.max_cc_size)
            # frames outside the align range keep the nearest aligned frame's shift
            shifts[: align_idx[0]] = shifts[align_idx[0]]
            shifts[align_idx[-1] + 1:] = shifts[align_idx[-1]]
            deformation = None
            if params.patches_x and params.patches_y:
                model = estimate_patch_motion(frames, shifts, n_patches_yx=(params.patches_y, params.patches_x),
                                              pixel_size_a=px, b_factor_a2=params.patch_b_factor_a2,
                                              max_shift_px=params.max_shift_px)
                deformation = model
                fit_rms.append(model.rms_fit_residual_px)
            weights = None
            if params.dose_weighting:
                ho, wo = output_shape((h, w), params.bin_factor)
                dose_frame = im.dose_e_per_a2 / n
                weights = frame_dose_weights((ho, wo), px * h / ho, n, dose_frame, im.pre_exposure_e_per_a2,
                                             voltage_kv=acq.voltage_kv)
            out = sum_frames(frames, shifts=shifts, deformation=deformation, indices=summed_idx,
                             bin_factor=params.bin_factor, dose_weights=weights,
                             split_even_odd=params.split_even_odd)
            key = im.acquisition_order
            sums[key], evens[key], odds[key] = out.total, out.even, out.odd
            shifts_xy.append(shifts.flip(-1))
            movie_shapes.append((n, h, w))
            scale_yx = out.scale_yx
            ctx.log(f"view {im.tilt_angle_deg:+.1f}°: total motion "
                    f"{float((shifts[1:] - shifts[:-1]).norm(dim=-1).sum()):.2f} px")
        new_px = px * scale_yx[1]
        out_shape = tuple(sums[views[0].acquisition_order].shape)
        order = [im.acquisition_order for im in ts.images]  # the record's (angle) order
        new_acq = acq.model_copy(update={"pixel_size_a": new_px})
        base = {"acquisition": new_acq, "image_shape_yx": out_shape, "dose_filtered": ts.dose_filtered or
                params.dose_weighting}
        result = UnitResult()
        refs = write_stack(stack_name(ctx.out_dir, ts.ts_id), torch.stack([sums[k] for k in order]), new_px)
        corrected = with_images(ts, refs, **base)
        if params.split_even_odd:
            e_refs = write_stack(stack_name(ctx.out_dir, ts.ts_id, "_EVN"), torch.stack([evens[k] for k in order]),
                                 new_px)
            o_refs = write_stack(stack_name(ctx.out_dir, ts.ts_id, "_ODD"), torch.stack([odds[k] for k in order]),
                                 new_px)
            corrected = with_images(corrected, e_refs, which="even")
            corrected = with_images(corrected, o_refs, which="odd")
            result.artifacts.append(ctx.write_record("even", ts.ts_id, with_images(ts, e_refs, **base),
                                                     name=f"{ts.ts_id}.even.json"))
            result.artifacts.append(ctx.write_record("odd", ts.ts_id, with_images(ts, o_refs, **base),
                                                     name=f"{ts.ts_id}.odd.json"))
        result.artifacts.append(ctx.write_record("tilt_series", ts.ts_id, corrected))
        table, stars = _write_shift_files(ctx.out_dir, ts, views, shifts_xy, movie_shapes, align_idx, params, px)
        record = MotionShifts(ts_id=ts.ts_id, pixel_size_a=px, table_path=str(table), star_paths=stars,
                              shifts_xy_px=[s.tolist() for s in shifts_xy], frames_aligned=align_idx,
                              frames_summed=summed_idx, patch_fit_rms_px=fit_rms)
        result.artifacts.append(ctx.write_record("shifts", ts.ts_id, record))
        total = [float((s[1:] - s[:-1]).norm(dim=-1).sum()) for s in shifts_xy]
        result.metrics.update({"views": len(views), "mean_total_motion_px": float(np.mean(total)),
                               "max_total_motion_px": float(np.max(total)), "pixel_size_a": new_px,
                               "frame_outliers_replaced": n_hits})
        if fit_rms:
            result.metrics["mean_patch_fit_rms_px"] = float(np.mean(fit_rms))
        return result


def _write_shift_files(out_dir: Path, ts: TiltSeries, views: list[TiltImage], shifts_xy: list[torch.Tensor],
                       movie_shapes: list[tuple[int, int, int]], align_idx: list[int], params: MotionCorrectParams,
                       px: float) -> tuple[Path, list[str]]:
    lines = ["ts_id\tacquisition_order\ttilt_angle_deg\tframe\tshift_x_px\tshift_y_px"]
    stars = []
    for im, s, (n, h, w) in zip(views, shifts_xy, movie_shapes, strict=True):
        for f, (x, y) in enumerate(s.tolist()):
            lines.append(f"{ts.ts_id}\t{im.acquisition_order}\t{im.tilt_angle_deg:.3f}\t{f}\t{x:.4f}\t{y:.4f}")
        star = out_dir / "motion" / f"{Path(im.movie.path).stem}.star"
        general = {"rlnImageSizeX": int(w), "rlnImageSizeY": int(h), "rlnImageSizeZ": int(n),
                   "rlnMicrographMovieName": im.movie.path, "rlnMicrographBinning": float(params.bin_factor),
                   "rlnMicrographOriginalPixelSize": float(px),
                   "rlnMicrographDoseRate": float(im.dose_e_per_a2 / max(1, n)),
                   "rlnMicrographPreExposure": float(im.pre_exposure_e_per_a2),
                   "rlnVoltage": float(ts.acquisition.voltage_kv),
                   "rlnMicrographStartFrame": int(align_idx[0] + 1), "rlnMotionModelVersion": 0}
        rel = s - s[align_idx[0]]
        shift_loop = {"rlnMicrographFrameNumber": list(range(1, n + 1)),
                      "rlnMicrographShiftX": [float(v) for v in rel[:, 0]],
                      "rlnMicrographShiftY": [float(v) for v in rel[:, 1]]}
        write_star(star, [("general", general), ("global_shift", shift_loop)])
        stars.append(str(star))
    table = out_dir / f"{ts.ts_id}_shifts.tsv"
    write_text_atomic(table, "\n".join(lines) + "\n")
    return table, stars
