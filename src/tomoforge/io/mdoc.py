"""SerialEM / Tomography 5 ``.mdoc`` files: a tolerant parser and a writer in SerialEM's own syntax.

Writer (for simulators and tests)::

    write_mdoc(path, header_fields, sections, *, titles=None, tilt_axis_deg=None, crlf=True) -> Path

- ``header_fields``: mapping written first as ``Key = value`` lines, e.g.
  ``{"PixelSpacing": 5.4, "Voltage": 300, "ImageFile": "TS_01.mrc", "ImageSize": (924, 958), "DataMode": 1}``.
- ``sections``: one mapping per ``[ZValue = i]`` section, in file order (i = position in the list unless the
  mapping has a ``"ZValue"`` key). Typical keys: ``TiltAngle``, ``ExposureDose``, ``PixelSpacing``,
  ``Defocus``, ``TargetDefocus``, ``RotationAngle``, ``Magnification``, ``SubFramePath``
  (e.g. ``r"X:\\frames\\TS_01_000_0.0.tif"``), ``NumSubFrames``, ``DateTime`` (a ``datetime`` is written as
  ``30-Nov-15  15:26:23``), ``FrameDosesAndNumber`` ((dose, n) or [(dose, n), ...]), ``PriorRecordDose``.
  A value of ``None`` omits the key; tuples/lists are written space separated; floats with ``%g`` (7 digits).
- ``titles``: text of ``[T = ...]`` lines; default is a SerialEM-like banner with the current date.
- ``tilt_axis_deg``: adds SerialEM's ``[T =     Tilt axis angle = X, binning = 1  spot = 8  camera = 0]``.
- ``crlf``: SerialEM runs on Windows and writes CRLF line endings; ``False`` writes LF.
The file is written atomically.

Parser::

    read_mdoc(path) -> MdocFile

handles CRLF, ``[T = ...]`` and bare ``T = ...`` title lines, ``[ZValue]``, ``[FrameSet]`` and ``[MontSection]``
sections, Tomo5 ``NaN`` and empty values, trailing spaces and Windows ``SubFramePath`` values.
Typed values that are ``NaN`` or empty become ``None``; the raw text stays in ``fields``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path, PureWindowsPath
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tomoforge.errors import ParseError
from tomoforge.io.atomic import atomic_path

SECTION_KINDS = ("ZValue", "FrameSet", "MontSection")
_DATE_FORMATS = ("%d-%b-%y %H:%M:%S", "%d-%b-%Y %H:%M:%S", "%Y-%b-%d %H:%M:%S", "%Y-%m-%d %H:%M:%S",
                 "%d-%b-%y %H:%M", "%d-%b-%Y %H:%M")
_TILT_AXIS_RE = re.compile(r"(?:tilt\s*axis\s*angle|TiltAxisAngle)\s*=\s*([-+]?\d*\.?\d+(?:[eE][-+]?\d+)?)",
                           re.IGNORECASE)


# ---------------------------------------------------------------------------------------------- writing

def format_mdoc_datetime(value: datetime) -> str:
    """SerialEM's ``30-Nov-15  15:26:23`` (two spaces between date and time)."""
    return value.strftime("%d-%b-%y  %H:%M:%S")


def _format_value(value: Any) -> str:
    if isinstance(value, datetime):
        return format_mdoc_datetime(value)
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return "NaN" if math.isnan(value) else f"{value:.7g}"
    if isinstance(value, (list, tuple)):
        return " ".join(_format_value(v) for v in value)
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):  # numpy / torch scalars
        return _format_value(value.item())
    return str(value)


def _kv_lines(fields: Mapping[str, Any]) -> list[str]:
    lines = []
    for key, value in fields.items():
        if value is None:
            continue
        if key == "FrameDosesAndNumber" and value and isinstance(value[0], (list, tuple)):
            value = [x for pair in value for x in pair]
        lines.append(f"{key} = {_format_value(value)}")
    return lines


def write_mdoc(path: str | Path, header_fields: Mapping[str, Any], sections: Sequence[Mapping[str, Any]], *,
               titles: Sequence[str] | None = None, tilt_axis_deg: float | None = None,
               crlf: bool = True) -> Path:
    """Write a SerialEM-style tilt-series mdoc (see the module docstring); returns the path."""
    lines = _kv_lines(header_fields)
    lines.append("")
    if titles is None:
        stamp = format_mdoc_datetime(datetime.now())
        titles = [f"SerialEM: tomoforge simulated microscope                 {stamp}    "]
    for title in titles:
        lines += [f"[T = {title}]", ""]
    if tilt_axis_deg is not None:
        lines += [f"[T =     Tilt axis angle = {_format_value(float(tilt_axis_deg))}, binning = 1  spot = 8  "
                  f"camera = 0]", ""]
    for i, section in enumerate(sections):
        section = dict(section)
        z = section.pop("ZValue", i)
        lines.append(f"[ZValue = {z}]")
        lines += _kv_lines(section)
        lines.append("")
    newline = "\r\n" if crlf else "\n"
    return _write_bytes_atomic(path, newline.join(lines) + newline)


def _write_bytes_atomic(path: str | Path, text: str) -> Path:
    # bytes, so that CRLF is written exactly on every platform
    with atomic_path(path) as tmp:
        tmp.write_bytes(text.encode("utf-8"))
    return Path(path)


# ---------------------------------------------------------------------------------------------- records

class MdocSection(BaseModel):
    """One ``[ZValue]``, ``[FrameSet]`` or ``[MontSection]`` block. Doses in e/Å², defocus in µm."""

    model_config = ConfigDict(extra="forbid")

    kind: str = Field(description="ZValue, FrameSet or MontSection (or another bracket key)")
    index: int = Field(description="The number in the section header")
    line: int = Field(description="1-based line of the header in the file")
    fields: dict[str, str] = Field(default_factory=dict, description="Raw values, stripped")

    tilt_angle_deg: float | None = None
    exposure_dose_e_per_a2: float | None = None
    prior_record_dose_e_per_a2: float | None = None
    dose_rate: float | None = None
    pixel_spacing_a: float | None = None
    magnification: float | None = None
    defocus_um: float | None = Field(None, description="SerialEM Defocus (µm, negative = underfocus)")
    target_defocus_um: float | None = Field(None, description="TargetDefocus (µm, negative = underfocus)")
    rotation_angle_deg: float | None = None
    exposure_time_s: float | None = None
    binning: float | None = None
    camera_length: float | None = None
    voltage_kv: float | None = None
    sub_frame_path: str | None = Field(None, description="As written (may be a Windows path)")
    num_sub_frames: int | None = None
    frame_doses_and_number: list[tuple[float, int]] = Field(default_factory=list)
    date_time: datetime | None = None
    date_time_text: str | None = None
    stage_position: tuple[float, float] | None = None
    stage_z: float | None = None
    image_shift: tuple[float, float] | None = None
    min_max_mean: tuple[float, float, float] | None = None
    piece_coordinates: tuple[float, ...] | None = None
    channel_name: str | None = None

    @property
    def z_value(self) -> int | None:
        return self.index if self.kind == "ZValue" else None

    @property
    def sub_frame_name(self) -> str | None:
        """Basename of ``SubFramePath``, whatever the OS that wrote it."""
        if not self.sub_frame_path:
            return None
        return PureWindowsPath(self.sub_frame_path).name  # splits on both \\ and /


class MdocFile(BaseModel):
    """A parsed mdoc: global fields, ``[T = ...]`` titles and sections in file order."""

    model_config = ConfigDict(extra="forbid")

    path: str
    global_fields: dict[str, str] = Field(default_factory=dict)
    titles: list[str] = Field(default_factory=list)
    sections: list[MdocSection] = Field(default_factory=list)
    crlf: bool = False

    pixel_spacing_a: float | None = None
    voltage_kv: float | None = None
    image_file: str | None = None
    image_size_xy: tuple[int, int] | None = None
    data_mode: int | None = None
    montage: bool = False
    tilt_axis_deg: float | None = Field(None, description="From a 'Tilt axis angle' / 'TiltAxisAngle' title")

    @property
    def z_sections(self) -> list[MdocSection]:
        return [s for s in self.sections if s.kind == "ZValue"]

    @property
    def frame_sets(self) -> list[MdocSection]:
        return [s for s in self.sections if s.kind == "FrameSet"]

    @property
    def mont_sections(self) -> list[MdocSection]:
        return [s for s in self.sections if s.kind == "MontSection"]


# ---------------------------------------------------------------------------------------------- parsing

def _numbers(text: str, path: Path, line: int, key: str) -> list[float]:
    out = []
    for tok in text.split():
        try:
            out.append(float(tok))
        except ValueError:
            raise ParseError(f"cannot read '{text}'", path=path, line=line, field=key,
                             expected="numbers separated by spaces") from None
    return out


def _float(text: str | None, path: Path, line: int, key: str) -> float | None:
    if text is None or text == "":
        return None
    vals = _numbers(text, path, line, key)
    if not vals or math.isnan(vals[0]):
        return None
    return vals[0]


def _tuple(text: str | None, n: int | None, path: Path, line: int, key: str) -> tuple[float, ...] | None:
    if not text:
        return None
    vals = _numbers(text, path, line, key)
    if n is not None and len(vals) < n:
        raise ParseError(f"'{text}' has {len(vals)} numbers", path=path, line=line, field=key,
                         expected=f"{n} numbers")
    return tuple(vals[:n] if n is not None else vals)


def parse_mdoc_datetime(text: str) -> datetime | None:
    """Parse SerialEM's ``30-Nov-15  15:26:23`` (and a few variants); ``None`` when unrecognised."""
    norm = " ".join(text.split())
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(norm, fmt)
        except ValueError:
            continue
    return None


def _typed_section(kind: str, index: int, line: int, fields: dict[str, str], lines: dict[str, int],
                   path: Path) -> MdocSection:
    def f(key: str) -> float | None:
        return _float(fields.get(key), path, lines.get(key, line), key)

    def t(key: str, n: int | None) -> tuple[float, ...] | None:
        return _tuple(fields.get(key), n, path, lines.get(key, line), key)

    fdn: list[tuple[float, int]] = []
    if fields.get("FrameDosesAndNumber"):
        vals = _numbers(fields["FrameDosesAndNumber"], path, lines["FrameDosesAndNumber"], "FrameDosesAndNumber")
        if len(vals) % 2:
            raise ParseError("odd number of values", path=path, line=lines["FrameDosesAndNumber"],
                             field="FrameDosesAndNumber", expected="pairs of 'dose count'")
        fdn = [(vals[i], int(vals[i + 1])) for i in range(0, len(vals), 2)]
    nsub = f("NumSubFrames")
    dt_text = fields.get("DateTime") or None
    return MdocSection(
        kind=kind, index=index, line=line, fields=fields,
        tilt_angle_deg=f("TiltAngle"), exposure_dose_e_per_a2=f("ExposureDose"),
        prior_record_dose_e_per_a2=f("PriorRecordDose"), dose_rate=f("DoseRate"),
        pixel_spacing_a=f("PixelSpacing"), magnification=f("Magnification"), defocus_um=f("Defocus"),
        target_defocus_um=f("TargetDefocus"), rotation_angle_deg=f("RotationAngle"),
        exposure_time_s=f("ExposureTime"), binning=f("Binning"), camera_length=f("CameraLength"),
        voltage_kv=f("Voltage"), sub_frame_path=fields.get("SubFramePath") or None,
        num_sub_frames=int(nsub) if nsub is not None else None, frame_doses_and_number=fdn,
        date_time=parse_mdoc_datetime(dt_text) if dt_text else None, date_time_text=dt_text,
        stage_position=t("StagePosition", 2), stage_z=f("StageZ"), image_shift=t("ImageShift", 2),
        min_max_mean=t("MinMaxMean", 3), piece_coordinates=t("PieceCoordinates", None),
        channel_name=fields.get("ChannelName") or None,
    )


def parse_mdoc_text(text: str, path: str | Path = "<mdoc>") -> MdocFile:
    """Parse mdoc text; ``path`` is used in error messages and recorded in the result."""
    path = Path(path)
    crlf = "\r\n" in text
    global_fields: dict[str, str] = {}
    titles: list[str] = []
    raw_sections: list[tuple[str, int, int, dict[str, str], dict[str, int]]] = []
    current: dict[str, str] = global_fields
    current_lines: dict[str, int] = {}
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip().lstrip("\ufeff")
        if not line:
            continue
        if line.startswith("[") and line.endswith("]"):
            inner = line[1:-1]
            key, sep, value = inner.partition("=")
            key, value = key.strip(), value.strip()
            if not sep or not key:
                raise ParseError(f"bad section header '{line}'", path=path, line=lineno,
                                 expected="'[Key = value]'")
            if key == "T":
                titles.append(value)
                continue
            try:
                index = int(float(value))
            except ValueError:
                raise ParseError(f"section number '{value}' is not a number", path=path, line=lineno,
                                 field=key, expected="an integer") from None
            current, current_lines = {}, {}
            raw_sections.append((key, index, lineno, current, current_lines))
            continue
        key, sep, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key:
            raise ParseError(f"cannot read line '{line[:60]}'", path=path, line=lineno, expected="'Key = value'")
        if key == "T":
            titles.append(value)
            continue
        current[key] = value
        current_lines[key] = lineno

    sections = [_typed_section(k, i, ln, flds, lns, path) for k, i, ln, flds, lns in raw_sections]
    tilt_axis = None
    for title in titles:
        m = _TILT_AXIS_RE.search(title)
        if m:
            tilt_axis = float(m.group(1))
    if tilt_axis is None and global_fields.get("TiltAxisAngle"):
        tilt_axis = _float(global_fields["TiltAxisAngle"], path, 0, "TiltAxisAngle")
    size = _tuple(global_fields.get("ImageSize"), 2, path, 0, "ImageSize")
    mode = _float(global_fields.get("DataMode"), path, 0, "DataMode")
    montage = _float(global_fields.get("Montage"), path, 0, "Montage")
    return MdocFile(
        path=str(path), global_fields=global_fields, titles=titles, sections=sections, crlf=crlf,
        pixel_spacing_a=_float(global_fields.get("PixelSpacing"), path, 0, "PixelSpacing"),
        voltage_kv=_float(global_fields.get("Voltage"), path, 0, "Voltage"),
        image_file=global_fields.get("ImageFile") or None,
        image_size_xy=(int(size[0]), int(size[1])) if size else None,
        data_mode=int(mode) if mode is not None else None,
        montage=bool(montage), tilt_axis_deg=tilt_axis,
    )


def read_mdoc(path: str | Path) -> MdocFile:
    """Read and parse an mdoc file. Raises ParseError naming the file (and line) on bad content."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ParseError("file not found", path=path, expected="an existing .mdoc file") from None
    except OSError as err:
        raise ParseError(f"cannot read: {err.strerror}", path=path) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    if "\x00" in text:
        raise ParseError("binary content", path=path, expected="a text .mdoc file")
    return parse_mdoc_text(text, path)


__all__ = ["MdocFile", "MdocSection", "format_mdoc_datetime", "parse_mdoc_datetime", "parse_mdoc_text",
           "read_mdoc", "write_mdoc"]
