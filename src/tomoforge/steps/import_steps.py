"""Import steps: movies or stacks with their mdoc (or a filename pattern) into TiltSeries records.

Parsing and every acquisition rule live in ``io.importing``; these classes plan one unit per tilt series,
check the gain orientation, and write the records. ``import`` decides per mdoc between movies and a stack.
"""

from __future__ import annotations

import glob
import time
from pathlib import Path
from typing import Literal

from pydantic import Field

from tomoforge.errors import InputError
from tomoforge.model import Acquisition, TiltSeries
from tomoforge.steps.base import Port, Step, StepParams, Unit, UnitContext, UnitResult

OVERRIDE_KEYS = ("voltage_kv", "cs_mm", "amplitude_contrast", "magnification", "pixel_size_a", "tilt_axis_deg",
                 "dose_per_tilt_e_per_a2", "initial_dose_e_per_a2")


class ImportParams(StepParams):
    mdoc: str | None = Field(None, description="Glob of .mdoc files, e.g. 'DIR/*.mdoc'")
    stack: str | None = Field(None, description="Glob of stacks (.mrc/.st) with a .rawtlt beside each (no mdoc)")
    folder: str | None = Field(None, description="Folder of images for a filename pattern (no mdoc)")
    pattern: str | None = Field(None, description="Filename pattern with {TS} {TO} {TA}, e.g. '{TS}_{TO}_{TA}.mrc'")
    frames_dir: str | None = Field(None, description="Where the movies are (default: the mdoc's folder, then frames/)")
    voltage_kv: float | None = Field(None, gt=0, description="Override: accelerating voltage (kV)")
    cs_mm: float | None = Field(None, ge=0, description="Override: spherical aberration (mm)")
    amplitude_contrast: float | None = Field(None, ge=0, le=1, description="Override: amplitude contrast")
    magnification: float | None = Field(None, gt=0, description="Override: nominal magnification")
    pixel_size_a: float | None = Field(None, gt=0, description="Override: pixel size of the images (Å)")
    tilt_axis_deg: float | None = Field(None, ge=-360, le=360, description="Override: tilt axis, CCW from +Y (deg)")
    dose_per_tilt_e_per_a2: float | None = Field(None, gt=0, description="Override: dose per tilt (e/Å²)")
    initial_dose_e_per_a2: float | None = Field(None, ge=0, description="Override: dose before the first tilt")
    settle_s: float = Field(0.0, ge=0, description="Streaming: import a tilt series only once its mdoc and "
                                                   "frames have not changed for this long (s)")

    def overrides(self) -> dict[str, float]:
        values = {k: getattr(self, k) for k in OVERRIDE_KEYS}
        return {k: v for k, v in values.items() if v is not None}


class ImportMoviesParams(ImportParams):
    gain: str | None = Field(None, description="Gain reference (MRC/TIFF); corrected = raw x gain")
    dark: str | None = Field(None, description="Dark reference, subtracted before the gain")
    gain_rotation: int = Field(0, ge=0, le=3, description="Counter-clockwise quarter turns applied to the gain")
    gain_flip: bool = Field(False, description="Flip the gain left-right after rotating")
    check_gain: bool = Field(True, description="Correlate the gain with the frames over 8 orientations and warn")
    eer_frames_per_group: int | None = Field(None, ge=1, description="EER: raw frames summed per group")
    eer_target_e_per_px: float | None = Field(None, gt=0, description="EER: target dose per group (e/pixel), "
                                                                       "as in seed 003, instead of a frame count")


def _settled(paths: list[Path], settle_s: float) -> bool:
    if settle_s <= 0:
        return True
    now = time.time()
    return all(p.exists() and now - p.stat().st_mtime >= settle_s for p in paths)


def _data_files(mdoc: Path, frames_dir: str | None) -> list[Path] | None:
    """The stack an mdoc describes (``TS_01.mrc.mdoc``) or its movies; None while a movie is missing."""
    from tomoforge.io.importing import resolve_frame_path
    from tomoforge.io.mdoc import read_mdoc

    stack = mdoc.with_suffix("")
    if stack.suffix and stack.is_file():
        return [stack]
    out = []
    for s in read_mdoc(mdoc).z_sections:
        if s.sub_frame_path:
            p = resolve_frame_path(s.sub_frame_path, mdoc.parent, Path(frames_dir) if frames_dir else None)
            if p is None:
                return None
            out.append(p)
    return out


def _plan_sources(step: Step, params: ImportParams) -> list[Unit]:
    from tomoforge.io.importing import expand_mdoc_glob, ts_id_from_mdoc

    if params.mdoc:
        units = []
        for p in expand_mdoc_glob(params.mdoc):
            frames = _data_files(p, params.frames_dir) if params.settle_s > 0 else []
            if frames is None or not _settled([p, *frames], params.settle_s):
                continue  # still being written: a later pass picks it up
            # Size and mtime make a rewritten mdoc a changed unit (re-imported), an unchanged one a no-op.
            st = p.stat()
            units.append(Unit(key=ts_id_from_mdoc(p), data={"mdoc": str(p.resolve()),
                                                            "stat": [st.st_size, st.st_mtime_ns]}))
        return units
    if params.stack:
        paths = sorted(Path(p) for p in glob.glob(params.stack))
        if not paths:
            raise InputError("no stack matches", field="stack", expected=f"files for '{params.stack}'")
        return [Unit(key=ts_id_from_mdoc(p.name), data={"stack": str(p.resolve()),
                                                        "stat": [p.stat().st_size, p.stat().st_mtime_ns]})
                for p in paths]
    if params.folder and params.pattern:
        return [Unit(key="all", data={"folder": str(Path(params.folder).resolve()), "pattern": params.pattern})]
    raise InputError(f"step '{step.name}' needs an mdoc glob, a stack glob, or a folder and a pattern",
                     expected="--set mdoc='DIR/*.mdoc', --set stack='DIR/*.st' or --set folder=DIR "
                              "--set pattern='{TS}_{TO}_{TA}.mrc'")


def _load(params: ImportParams, unit: Unit, kind: str) -> list[TiltSeries]:
    from tomoforge.io import importing

    if "mdoc" in unit.data:
        return [importing.tilt_series_from_mdoc(unit.data["mdoc"], frames_dir=params.frames_dir,
                                                overrides=params.overrides(), kind=kind)]
    if "stack" in unit.data:
        return [importing.tilt_series_from_stack(unit.data["stack"], overrides=params.overrides())]
    acq = Acquisition(**params.overrides())
    return importing.tilt_series_from_pattern(unit.data["folder"], unit.data["pattern"], acq,
                                              as_images=kind == "stack")


def _attach_gain(params: ImportMoviesParams, ts: TiltSeries, ctx: UnitContext) -> None:
    from tomoforge.io import importing

    movies = [im.movie.path for im in ts.images if im.movie is not None]
    if params.gain and movies:
        ts.gain_path = str(Path(params.gain).resolve())
        ts.gain_rotation, ts.gain_flip = params.gain_rotation, params.gain_flip
        if params.check_gain:
            check = importing.check_gain_orientation(ts.gain_path, movies, params.gain_rotation, params.gain_flip)
            if check.message:
                ts.notes.append(check.message)
                ctx.log(f"WARNING: {check.message}")
    if params.dark:
        ts.dark_path = str(Path(params.dark).resolve())
    for im in ts.images:
        if im.movie is not None and im.movie.path.lower().endswith(".eer"):
            im.movie.eer_frames_per_group = _eer_group(params, im.movie.path, ts.acquisition)


def _eer_group(params: ImportMoviesParams, path: str, acq: Acquisition) -> int | None:
    from tomoforge.io.eer import eer_frames_per_group, eer_shape

    if params.eer_frames_per_group:
        return params.eer_frames_per_group
    n_raw = eer_shape(path)[0]
    return eer_frames_per_group(n_raw, acq.dose_per_tilt_e_per_a2, acq.pixel_size_a,
                                params.eer_target_e_per_px or 0.5)


def _metrics(ts: TiltSeries) -> dict[str, float]:
    angles = [im.tilt_angle_deg for im in ts.images]
    return {"views": len(ts.images), "min_tilt_deg": min(angles), "max_tilt_deg": max(angles),
            "pixel_size_a": ts.acquisition.pixel_size_a, "tilt_axis_deg": ts.acquisition.tilt_axis_deg,
            "total_dose_e_per_a2": max(im.accumulated_dose_e_per_a2 for im in ts.images),
            "movies": sum(im.movie is not None and im.image is None for im in ts.images)}


class _ImportBase(Step):
    kind: str = "auto"
    outputs = {"tilt_series": Port(TiltSeries, "One record per tilt series")}

    def plan(self, params, inputs):
        return _plan_sources(self, params)

    def run_unit(self, params, unit: Unit, ctx: UnitContext) -> UnitResult:
        result = UnitResult()
        for ts in _load(params, unit, self.kind):
            if isinstance(params, ImportMoviesParams):
                _attach_gain(params, ts, ctx)
            result.artifacts.append(ctx.write_record("tilt_series", ts.ts_id, ts))
            result.metrics.update(_metrics(ts))
            for note in ts.notes:
                ctx.log(note)
        return result


class ImportMovies(_ImportBase):
    name = "import-movies"
    title = "Import tilt-series movies (every SubFramePath movie must exist)"
    kind: Literal["movies"] = "movies"
    Params = ImportMoviesParams


class ImportTiltSeries(_ImportBase):
    name = "import-tilt-series"
    title = "Import tilt-series stacks (.mrc/.st with .mdoc or .rawtlt)"
    kind: Literal["stack"] = "stack"
    Params = ImportParams


class Import(_ImportBase):
    name = "import"
    title = "Import movies or stacks, deciding per mdoc (a stack beside it wins)"
    kind: Literal["auto"] = "auto"
    Params = ImportMoviesParams
