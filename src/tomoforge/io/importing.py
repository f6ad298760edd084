"""Turn what comes off a microscope into ``TiltSeries`` records (pure logic: files in, records out).

Three sources:

- an mdoc (SerialEM or Tomography 5): ``tilt_series_from_mdoc``;
- a folder and a filename pattern such as ``{TS}_{TO}_{TA}.mrc``: ``tilt_series_from_pattern``;
- a stack with a ``.rawtlt``/``.tlt`` file (or an mdoc): ``tilt_series_from_stack``.

Rules (issue 2):

- Every acquisition value the user gives (``overrides``, keys of ``Acquisition``) wins over the mdoc.
- ``SubFramePath`` (often a Windows path) is resolved by its basename in ``frames_dir``, else the mdoc's
  folder, else a ``frames/`` folder beside the mdoc (else the path as written, relative to the mdoc).
- Acquisition order comes from ``DateTime`` (rearranged stacks keep their true order); ties are broken by
  ``ZValue``. When any ``DateTime`` is missing or unreadable the order falls back to ``ZValue``, with a
  warning and a note.
- ``ExposureDose = 0`` or missing needs a user dose per tilt, otherwise InputError naming the mdoc.
- Accumulated dose follows acquisition order: initial dose + doses of the views acquired before + its own.
- An mdoc named ``<stack>.mdoc`` (``TS_01.mrc.mdoc``) beside its stack imports that stack
  (``ImageRef(stack, index=ZValue)``); absent movies are then only noted. When importing movies, a missing
  movie is an InputError naming it.
- The tilt-series id is the mdoc name without ``.mdoc`` and without a stack suffix.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path, PureWindowsPath
from typing import Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict

from tomoforge.core.gain import (
    apply_gain_orientation,
    better_gain_orientation,
    describe_orientation,
    score_gain_orientations,
)
from tomoforge.errors import InputError, ParamError, ParseError
from tomoforge.io.mdoc import MdocFile, MdocSection, read_mdoc
from tomoforge.io.movie import MOVIE_SUFFIXES, movie_shape, read_gain_reference, read_movie
from tomoforge.io.mrc import MRC_SUFFIXES, mrc_header_info
from tomoforge.model.acquisition import Acquisition
from tomoforge.model.tilt_series import ImageRef, MovieRef, TiltImage, TiltSeries

ImportKind = Literal["auto", "movies", "stack"]
STACK_SUFFIXES = (".mrc", ".st", ".mrcs", ".ali")
ACQUISITION_KEYS = tuple(Acquisition.model_fields)


# ---------------------------------------------------------------------------------------------- helpers

def _check_overrides(overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    unknown = sorted(set(given) - set(ACQUISITION_KEYS))
    if unknown:
        raise ParamError(f"unknown acquisition value(s) {', '.join(unknown)}", field=unknown[0],
                         expected="one of " + ", ".join(ACQUISITION_KEYS))
    if "pixel_size_a" in given and float(given["pixel_size_a"]) <= 0:
        raise ParamError(f"pixel size {given['pixel_size_a']}", field="pixel_size_a", expected="> 0 Å")
    return given


def _build_acquisition(values: dict[str, Any], source: str | Path) -> Acquisition:
    try:
        return Acquisition(**values)
    except ValueError as err:  # pydantic ValidationError is a ValueError
        first = err.errors()[0] if hasattr(err, "errors") else {"loc": ("?",), "msg": str(err)}
        raise InputError(f"{first['msg']} (value {first.get('input')!r})", path=source,
                         field=str(first["loc"][0])) from None


def ts_id_from_mdoc(mdoc_path: str | Path) -> str:
    """``TS_01.mrc.mdoc`` -> ``TS_01``; ``Position_12.mdoc`` -> ``Position_12``."""
    name = Path(mdoc_path).name
    if name.lower().endswith(".mdoc"):
        name = name[:-5]
    for suffix in STACK_SUFFIXES + MOVIE_SUFFIXES:
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    return name


def resolve_frame_path(sub_frame_path: str, mdoc_dir: Path, frames_dir: Path | None = None) -> Path | None:
    """Find a movie named in ``SubFramePath`` by basename; None when it is nowhere to be found."""
    name = PureWindowsPath(sub_frame_path).name  # handles both D:\\x\\y.tif and a/b/y.tif
    candidates = []
    if frames_dir is not None:
        candidates.append(Path(frames_dir) / name)
    candidates += [mdoc_dir / name, mdoc_dir / "frames" / name]
    if not PureWindowsPath(sub_frame_path).drive:
        candidates.append(mdoc_dir / sub_frame_path.replace("\\", "/"))
    return next((c for c in candidates if c.is_file()), None)


def acquisition_order_from_mdoc(sections: Sequence[MdocSection], source: str | Path = "") -> tuple[list[int], str | None]:
    """Acquisition rank of each section (same order as ``sections``) and a note when ZValue had to be used."""
    if sections and all(s.date_time is not None for s in sections):
        keys = [(s.date_time, s.index) for s in sections]
        note = None
    else:
        missing = [s.index for s in sections if s.date_time is None]
        keys = [(s.index, 0) for s in sections]
        note = (f"{Path(source).name}: DateTime missing or unreadable for ZValue {missing[:5]}"
                f"{'...' if len(missing) > 5 else ''}; acquisition order taken from ZValue")
    ranked = sorted(range(len(sections)), key=lambda i: keys[i])
    order = [0] * len(sections)
    for rank, i in enumerate(ranked):
        order[i] = rank
    return order, note


def accumulate_dose(doses: Sequence[float], order: Sequence[int], initial_dose: float = 0.0) -> list[float]:
    """Dose up to and including each view, summing in acquisition ``order`` (ranks, 0-based)."""
    by_rank = sorted(range(len(doses)), key=lambda i: order[i])
    acc = [0.0] * len(doses)
    total = float(initial_dose)
    for i in by_rank:
        total += float(doses[i])
        acc[i] = total
    return acc


def _section_dose(s: MdocSection) -> float:
    if s.exposure_dose_e_per_a2:
        return float(s.exposure_dose_e_per_a2)
    if s.frame_doses_and_number:  # FrameDosesAndNumber = dose-per-frame count ...
        return float(sum(d * n for d, n in s.frame_doses_and_number))
    return 0.0


def _find_stack(mdoc_path: Path, mdoc: MdocFile) -> Path | None:
    stem = mdoc_path.with_suffix("") if mdoc_path.suffix.lower() == ".mdoc" else None
    candidates = []
    if stem is not None and stem.suffix.lower() in STACK_SUFFIXES:
        candidates.append(stem)
    if mdoc.image_file:
        candidates.append(mdoc_path.parent / PureWindowsPath(mdoc.image_file).name)
    return next((c for c in candidates if c.is_file()), None)


# ---------------------------------------------------------------------------------------------- mdoc

def tilt_series_from_mdoc(mdoc_path: str | Path, frames_dir: str | Path | None = None,
                          overrides: Mapping[str, Any] | None = None, stack_path: str | Path | None = None,
                          *, kind: ImportKind = "auto", ts_id: str | None = None) -> TiltSeries:
    """Build a TiltSeries from an mdoc (see the module docstring for the rules).

    ``kind``: "movies" needs every SubFramePath movie; "stack" needs the stack (``stack_path`` or the
    ``<stack>.mdoc`` / ``ImageFile`` stack beside the mdoc); "auto" uses a stack when there is one,
    else the movies.
    """
    mdoc_path = Path(mdoc_path)
    given = _check_overrides(overrides)
    mdoc = read_mdoc(mdoc_path)
    notes: list[str] = []
    if mdoc.montage or mdoc.mont_sections:
        raise InputError("this mdoc describes a montage, not a tilt series", path=mdoc_path, field="Montage",
                         expected="a tilt-series mdoc")
    sections = mdoc.z_sections
    if not sections:
        raise InputError("no [ZValue = N] sections", path=mdoc_path,
                         expected="one section per tilt image (a per-movie frame-set mdoc cannot be imported)")
    for s in sections:
        if s.tilt_angle_deg is None:
            raise InputError(f"section [ZValue = {s.index}] has no TiltAngle", path=mdoc_path, line=s.line,
                             field="TiltAngle", expected="a number")

    # --- which images: stack or movies
    stack = Path(stack_path) if stack_path is not None else (_find_stack(mdoc_path, mdoc) if kind != "movies" else None)
    if kind == "stack" and (stack is None or not stack.is_file()):
        raise InputError("no stack found for this mdoc" if stack is None else f"stack {stack} not found",
                         path=mdoc_path, expected="TS.mrc beside TS.mrc.mdoc, the ImageFile, or stack_path")
    if stack is not None and not stack.is_file():
        raise InputError("stack not found", path=stack, expected="an existing MRC/ST stack")
    use_stack = stack is not None and kind != "movies"
    mdoc_dir = mdoc_path.parent
    movies: list[Path | None] = []
    missing: list[str] = []
    for s in sections:
        if not s.sub_frame_path:
            movies.append(None)
            if not use_stack:
                raise InputError(f"section [ZValue = {s.index}] has no SubFramePath", path=mdoc_path, line=s.line,
                                 field="SubFramePath", expected="the movie of each tilt (or import the stack)")
            continue
        found = resolve_frame_path(s.sub_frame_path, mdoc_dir, Path(frames_dir) if frames_dir else None)
        movies.append(found)
        if found is None:
            missing.append(s.sub_frame_name or s.sub_frame_path)
            if not use_stack:
                where = ", ".join(str(p) for p in ([Path(frames_dir)] if frames_dir else [])
                                  + [mdoc_dir, mdoc_dir / "frames"])
                raise InputError(f"movie '{s.sub_frame_name}' of [ZValue = {s.index}] not found in {where}",
                                 path=mdoc_path, line=s.line, field="SubFramePath",
                                 expected="the movie file (set frames_dir to its folder)")
    if use_stack and missing:
        notes.append(f"{len(missing)} of {len(sections)} movies not found (e.g. {missing[0]}); using stack "
                     f"{stack.name}")

    image_shape = None
    if use_stack:
        info = mrc_header_info(stack)
        if info.n_sections != len(sections):
            raise InputError(f"mdoc has {len(sections)} [ZValue] sections but stack {stack} has "
                             f"{info.n_sections} sections", path=mdoc_path, field="ZValue",
                             expected="one section per stack image")
        bad = [s.index for s in sections if not 0 <= s.index < info.n_sections]
        if bad:
            raise InputError(f"ZValue {bad[0]} is outside the stack's {info.n_sections} sections", path=mdoc_path,
                             field="ZValue", expected=f"0..{info.n_sections - 1}")
        image_shape = info.shape_zyx[1:]
    movie_shapes: dict[Path, tuple[int, int, int]] = {}
    for i, path in enumerate(movies):
        if path is None:
            continue
        try:
            movie_shapes[path] = movie_shape(path)
        except ParseError as err:
            if not use_stack:
                raise
            notes.append(f"movie not readable, not attached: {err}")  # the stack is what gets imported
            movies[i] = None
    if not use_stack and movie_shapes:
        shapes = {shp[1:] for shp in movie_shapes.values()}
        if len(shapes) > 1:
            raise InputError(f"movies have different frame shapes {sorted(shapes)}", path=mdoc_path,
                             field="SubFramePath", expected="one frame size per tilt series")
        image_shape = shapes.pop()

    # --- acquisition: mdoc values, then user overrides
    values: dict[str, Any] = {}
    pixel = mdoc.pixel_spacing_a
    if pixel is None:
        pixel = next((s.pixel_spacing_a for s in sections if s.pixel_spacing_a is not None), None)
    if pixel is None and use_stack and info.pixel_size_a > 0:
        pixel = info.pixel_size_a
        notes.append(f"no PixelSpacing in the mdoc; pixel size {pixel:g} Å from the stack header")
    if pixel and not use_stack and mdoc.image_size_xy and image_shape and "pixel_size_a" not in given:
        # the mdoc's PixelSpacing describes its stack (often binned); scale to the movie frames
        width = image_shape[1]
        if width != mdoc.image_size_xy[0] and width > 0:
            scaled = pixel * mdoc.image_size_xy[0] / width
            notes.append(f"PixelSpacing {pixel} Å is for {mdoc.image_size_xy[0]}-px-wide images; movies are "
                         f"{width} px wide, so pixel size {scaled:.4g} Å (give pixel_size_a to be exact)")
            pixel = scaled
    if pixel is not None:
        values["pixel_size_a"] = pixel
    voltage = mdoc.voltage_kv or next((s.voltage_kv for s in sections if s.voltage_kv), None)
    if voltage:
        values["voltage_kv"] = voltage
    if mdoc.tilt_axis_deg is not None:
        values["tilt_axis_deg"] = mdoc.tilt_axis_deg
    else:
        rot = next((s.rotation_angle_deg for s in sections if s.rotation_angle_deg is not None), None)
        if rot is not None:  # SerialEM and Tomo5 headers both show tilt axis = RotationAngle - 90
            values["tilt_axis_deg"] = rot - 90.0
            notes.append(f"no tilt axis title in the mdoc; tilt axis {rot - 90.0:g}° from RotationAngle - 90")
    mag = next((s.magnification for s in sections if s.magnification), None)
    if mag:
        values["magnification"] = mag
    values.update(given)
    if not values.get("pixel_size_a"):
        what = "missing" if pixel is None else f"{pixel:g}"
        raise InputError(f"pixel size is {what} and no pixel_size_a was given", path=mdoc_path,
                         field="PixelSpacing", expected="a pixel size > 0 Å in the mdoc or pixel_size_a")
    for key in ("voltage_kv", "tilt_axis_deg"):
        if key not in values:
            notes.append(f"{key} not in the mdoc nor given; using the default {Acquisition.model_fields[key].default}")

    # --- doses
    if "dose_per_tilt_e_per_a2" in given:
        doses = [float(given["dose_per_tilt_e_per_a2"])] * len(sections)
    else:
        doses = [_section_dose(s) for s in sections]
        zero = [s for s, d in zip(sections, doses, strict=True) if d <= 0]
        if zero:
            raise InputError(f"ExposureDose is 0 or missing in {len(zero)} of {len(sections)} sections "
                             f"(first: ZValue {zero[0].index}); give dose_per_tilt_e_per_a2", path=mdoc_path,
                             line=zero[0].line, field="ExposureDose", expected="a dose per tilt > 0 e/Å²")
        values["dose_per_tilt_e_per_a2"] = sum(doses) / len(doses)
    if "frames_per_movie" not in values:
        if movie_shapes:  # what the files hold (raw frames for EER, where NumSubFrames says 1)
            values["frames_per_movie"] = next(iter(movie_shapes.values()))[0]
        elif sections[0].num_sub_frames and sections[0].num_sub_frames > 1:
            values["frames_per_movie"] = sections[0].num_sub_frames
    acquisition = _build_acquisition(values, mdoc_path)

    order, order_note = acquisition_order_from_mdoc(sections, mdoc_path)
    if order_note:
        warnings.warn(order_note, stacklevel=2)
        notes.append(order_note)
    accumulated = accumulate_dose(doses, order, acquisition.initial_dose_e_per_a2)

    images = []
    for s, rank, dose, acc, movie in zip(sections, order, doses, accumulated, movies, strict=True):
        movie_ref = None
        if movie is not None:
            movie_ref = MovieRef(path=str(movie), n_frames=movie_shapes[movie][0])
        images.append(TiltImage(
            tilt_angle_deg=s.tilt_angle_deg, nominal_tilt_angle_deg=s.tilt_angle_deg, acquisition_order=rank,
            dose_e_per_a2=dose, accumulated_dose_e_per_a2=acc,
            image=ImageRef(path=str(stack), index=s.index) if use_stack else None, movie=movie_ref,
            target_defocus_um=-s.target_defocus_um if s.target_defocus_um is not None else None,
            date_time=s.date_time.isoformat() if s.date_time else s.date_time_text, source_section=s.index,
        ))
    return TiltSeries(ts_id=ts_id or ts_id_from_mdoc(mdoc_path), acquisition=acquisition, images=images,
                      image_shape_yx=image_shape, mdoc_path=str(mdoc_path), notes=notes)


def expand_mdoc_glob(pattern: str | Path) -> list[Path]:
    """``DIR/*.mdoc`` -> sorted paths; InputError when nothing matches or two give the same tilt-series id."""
    pattern = Path(pattern).expanduser()
    paths = sorted(pattern.parent.glob(pattern.name)) if any(c in str(pattern) for c in "*?[") else [pattern]
    paths = [p for p in paths if p.is_file()]
    if not paths:
        raise InputError("no mdoc file matches", path=pattern, expected="e.g. 'DIR/*.mdoc'")
    seen: dict[str, Path] = {}
    for p in paths:
        tid = ts_id_from_mdoc(p)
        if tid in seen:
            raise InputError(f"{seen[tid].name} and {p.name} give the same tilt-series id '{tid}'", path=p.parent,
                             field="mdoc", expected="one mdoc per tilt series")
        seen[tid] = p
    return paths


# ---------------------------------------------------------------------------------------------- pattern

_PLACEHOLDERS = {
    "{TS}": r"(?P<TS>.+)",
    "{TO}": r"(?P<TO>\d+)",
    "{TA}": r"(?P<TA>[-+]?(?:\d+\.?\d*|\.\d+))",
}


def pattern_regex(pattern: str) -> re.Pattern[str]:
    """``{TS}_{TO}_{TA}.mrc`` -> a regex with groups TS, TO, TA; ``*`` and ``?`` are wildcards."""
    if "{TA}" not in pattern or "{TO}" not in pattern:
        raise ParamError(f"pattern '{pattern}' lacks {{TA}} or {{TO}}", field="pattern",
                         expected="a pattern such as {TS}_{TO}_{TA}.mrc with tilt angle {TA} and order {TO}")
    out, i = "", 0
    while i < len(pattern):
        token = next((t for t in _PLACEHOLDERS if pattern.startswith(t, i)), None)
        if token:
            if f"(?P<{token[1:3]}>" in out:
                raise ParamError(f"{token} appears twice in '{pattern}'", field="pattern")
            out += _PLACEHOLDERS[token]
            i += len(token)
        elif pattern[i] == "*":
            out += ".*?"
            i += 1
        elif pattern[i] == "?":
            out += "."
            i += 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out + r"\Z")


def tilt_series_from_pattern(folder: str | Path, pattern: str, acquisition: Acquisition, *,
                             as_images: bool = False) -> list[TiltSeries]:
    """Group files in ``folder`` matching ``pattern`` into tilt series (one per {TS} value).

    {TO} gives the acquisition order (ranked, so 1-based or gapped numbering is fine), {TA} the tilt angle.
    Files are movies, or single images when ``as_images`` (``ImageRef(path, 0)``).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError("folder not found", path=folder, expected="a folder of movies or images")
    if acquisition.dose_per_tilt_e_per_a2 <= 0:
        raise InputError("no dose per tilt for a pattern import", path=folder, field="dose_per_tilt_e_per_a2",
                         expected="a dose per tilt > 0 e/Å²")
    regex = pattern_regex(pattern)
    files = sorted(folder.rglob("*")) if "/" in pattern else sorted(folder.iterdir())
    groups: dict[str, list[tuple[int, float, Path]]] = {}
    for f in files:
        if not f.is_file():
            continue
        m = regex.match(f.relative_to(folder).as_posix())
        if not m:
            continue
        ts = m.groupdict().get("TS") or folder.name
        groups.setdefault(ts, []).append((int(m["TO"]), float(m["TA"]), f))
    if not groups:
        raise InputError(f"no file matches the pattern '{pattern}'", path=folder, field="pattern",
                         expected="file names such as TS_01_001_-3.0.mrc for {TS}_{TO}_{TA}.mrc")
    result = []
    for ts_id in sorted(groups):
        entries = sorted(groups[ts_id])
        orders = [e[0] for e in entries]
        if len(set(orders)) != len(orders):
            dup = next(o for o in orders if orders.count(o) > 1)
            raise InputError(f"tilt series {ts_id}: order {{TO}} = {dup} appears twice", path=folder,
                             field="pattern", expected="one file per acquisition order")
        shapes = {}
        for _, _, f in entries:
            shp = movie_shape(f) if not as_images else mrc_header_info(f).shape_zyx
            shapes[f] = shp
        frame_shapes = {s[1:] for s in shapes.values()}
        if len(frame_shapes) > 1:
            raise InputError(f"tilt series {ts_id}: files have different image sizes {sorted(frame_shapes)}",
                             path=folder, expected="one image size per tilt series")
        dose = acquisition.dose_per_tilt_e_per_a2
        acc = acquisition.initial_dose_e_per_a2
        images = []
        for rank, (_, angle, f) in enumerate(entries):  # entries are sorted by {TO}
            acc += dose
            images.append(TiltImage(
                tilt_angle_deg=angle, nominal_tilt_angle_deg=angle, acquisition_order=rank,
                dose_e_per_a2=dose, accumulated_dose_e_per_a2=acc,
                image=ImageRef(path=str(f), index=0) if as_images else None,
                movie=None if as_images else MovieRef(path=str(f), n_frames=shapes[f][0]),
            ))
        result.append(TiltSeries(ts_id=ts_id, acquisition=acquisition, images=images,
                                 image_shape_yx=frame_shapes.pop()))
    return result


# ---------------------------------------------------------------------------------------------- stack

def read_tilt_angles(path: str | Path) -> list[float]:
    """One angle per line (``.rawtlt``/``.tlt``); blank lines are skipped."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        raise InputError("tilt-angle file not found", path=path, expected="a .rawtlt or .tlt file") from None
    angles = []
    for n, line in enumerate(lines, start=1):
        text = line.strip()
        if not text:
            continue
        try:
            angles.append(float(text.split()[0]))
        except ValueError:
            raise ParseError(f"'{text[:40]}' is not a number", path=path, line=n,
                             expected="one tilt angle per line") from None
    if not angles:
        raise ParseError("no tilt angles", path=path, expected="one tilt angle per line")
    return angles


def tilt_series_from_stack(stack_path: str | Path, acquisition: Acquisition | None = None, *,
                           tilt_file: str | Path | None = None, mdoc_path: str | Path | None = None,
                           overrides: Mapping[str, Any] | None = None,
                           acquisition_order: Sequence[int] | None = None, ts_id: str | None = None) -> TiltSeries:
    """A stack (.mrc/.st) with its tilt angles from ``tilt_file`` (default ``<stem>.rawtlt``) or an mdoc.

    With a tilt file, the acquisition order is the stack order unless ``acquisition_order`` (0-based rank
    of each section) is given; the pixel size comes from ``acquisition`` or else the stack header.
    """
    stack_path = Path(stack_path)
    if mdoc_path is not None:
        return tilt_series_from_mdoc(mdoc_path, overrides=overrides, stack_path=stack_path, kind="stack",
                                     ts_id=ts_id)
    if stack_path.suffix.lower() not in MRC_SUFFIXES:
        raise InputError(f"unknown stack format '{stack_path.suffix}'", path=stack_path,
                         expected="an MRC stack (.mrc, .st, .mrcs)")
    info = mrc_header_info(stack_path)
    tilt_file = Path(tilt_file) if tilt_file is not None else stack_path.with_suffix(".rawtlt")
    angles = read_tilt_angles(tilt_file)
    if len(angles) != info.n_sections:
        raise InputError(f"{len(angles)} tilt angles but stack {stack_path} has {info.n_sections} sections",
                         path=tilt_file, expected="one angle per stack section")
    given = _check_overrides(overrides)
    values = acquisition.model_dump() if acquisition is not None else {}
    values.update(given)
    notes = []
    if "pixel_size_a" not in given and (acquisition is None or "pixel_size_a" not in acquisition.model_fields_set):
        if info.pixel_size_a <= 0:
            raise InputError("pixel size 0 in the stack header and none given", path=stack_path,
                             field="pixel_size_a", expected="a pixel size > 0 Å")
        values["pixel_size_a"] = info.pixel_size_a
    acq = _build_acquisition(values, stack_path)
    if acq.dose_per_tilt_e_per_a2 <= 0:
        raise InputError("no dose per tilt for this stack", path=stack_path, field="dose_per_tilt_e_per_a2",
                         expected="a dose per tilt > 0 e/Å²")
    if acquisition_order is None:
        order = list(range(len(angles)))
        notes.append("acquisition order taken as the stack order")
    else:
        order = list(acquisition_order)
        if sorted(order) != list(range(len(angles))):
            raise ParamError("acquisition_order must be a permutation of 0..n-1", field="acquisition_order")
    doses = [acq.dose_per_tilt_e_per_a2] * len(angles)
    acc = accumulate_dose(doses, order, acq.initial_dose_e_per_a2)
    images = [TiltImage(tilt_angle_deg=a, nominal_tilt_angle_deg=a, acquisition_order=o, dose_e_per_a2=d,
                        accumulated_dose_e_per_a2=c, image=ImageRef(path=str(stack_path), index=i))
              for i, (a, o, d, c) in enumerate(zip(angles, order, doses, acc, strict=True))]
    return TiltSeries(ts_id=ts_id or ts_id_from_mdoc(stack_path.name), acquisition=acq, images=images,
                      image_shape_yx=info.shape_zyx[1:], notes=notes)


# ---------------------------------------------------------------------------------------------- gain

class GainCheck(BaseModel):
    """Outcome of checking a gain's orientation against a sample of movie frames."""

    model_config = ConfigDict(extra="forbid")
    rotation: int
    flip: bool
    scores: list[tuple[int, bool, float]]
    better: tuple[int, bool, float] | None = None
    message: str | None = None


def check_gain_orientation(gain_path: str | Path, movie_paths: Sequence[str | Path], rotation: int = 0,
                           flip: bool = False, *, max_movies: int = 4) -> GainCheck:
    """Correlate the gain with the mean of up to ``max_movies`` movies over the 8 orientations.

    ``message`` is set (one line, naming the gain) when another orientation fits clearly better than
    (rotation, flip); the caller warns with it. A gain whose size fits no orientation raises InputError.
    """
    if not movie_paths:
        raise InputError("no movies to check the gain against", path=gain_path)
    gain = torch.from_numpy(np.array(read_gain_reference(gain_path)))
    picks = [movie_paths[i] for i in np.linspace(0, len(movie_paths) - 1, min(max_movies, len(movie_paths))).astype(int)]
    total = None
    for p in picks:
        frames = read_movie(p)
        s = frames.sum(axis=0, dtype=np.float64)
        total = s if total is None else total + s
    mean = torch.from_numpy(total)
    try:
        scores = score_gain_orientations(gain, mean)
    except InputError as err:  # no orientation has the frames' size
        raise InputError(str(err), path=gain_path) from None
    oriented = tuple(apply_gain_orientation(gain, rotation, flip).shape)
    if oriented != tuple(mean.shape):
        r, f, sc = scores[0]
        raise InputError(f"gain is {oriented[0]}x{oriented[1]} after rotation {rotation} but frames are "
                         f"{mean.shape[0]}x{mean.shape[1]}; best fit: gain_rotation={r} gain_flip={f} "
                         f"(correlation {sc:.2f})", path=gain_path, field="gain_rotation")
    better = better_gain_orientation(scores, rotation, flip, n_pixels=min(mean.numel(), 1024 * 1024))
    message = None
    if better is not None:
        chosen = next((sc for r, f, sc in scores if r == rotation % 4 and f == bool(flip)), float("nan"))
        message = (f"{gain_path}: gain_rotation={better[0]} gain_flip={better[1]} "
                   f"({describe_orientation(better[0], better[1])}) fits the frames better than the chosen "
                   f"gain_rotation={rotation} gain_flip={bool(flip)} (correlation {better[2]:.2f} vs {chosen:.2f})")
    return GainCheck(rotation=rotation, flip=bool(flip), scores=scores, better=better, message=message)


__all__ = ["GainCheck", "accumulate_dose", "check_gain_orientation", "expand_mdoc_glob", "acquisition_order_from_mdoc", "pattern_regex", "read_tilt_angles",
           "resolve_frame_path", "tilt_series_from_mdoc", "tilt_series_from_pattern", "tilt_series_from_stack",
           "ts_id_from_mdoc"]
