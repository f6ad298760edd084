"""etomo ``.edf`` project files (Java properties ``key=value``): the key settings."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict

from tomoforge.errors import ParseError
from tomoforge.io._text import read_lines, to_float
from tomoforge.io.imod_com import parse_view_list


class EtomoSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dataset_name: str
    revision: str | None = None
    axis_type: str | None = None               # "Single Axis" / "Dual Axis"
    view_type: str | None = None               # "Single View" / "Montage"
    pixel_size_nm: float | None = None
    fiducial_diameter_nm: float | None = None
    image_rotation_a_deg: float | None = None  # tilt axis angle of axis A
    image_rotation_b_deg: float | None = None
    binning: float | None = None
    exclude_views_a: list[int] = []            # 1-based
    exclude_views_b: list[int] = []
    tilt_angle_type_a: str | None = None


def read_edf_properties(path: str | Path) -> dict[str, str]:
    """All ``key=value`` entries; ``#`` and ``!`` lines are comments."""
    out: dict[str, str] = {}
    for i, raw in enumerate(read_lines(path), start=1):
        s = raw.strip()
        if not s or s[0] in "#!":
            continue
        if "=" not in s:
            raise ParseError(f"'{s[:40]}' is not key=value", path=path, line=i)
        k, v = s.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def read_edf(path: str | Path) -> EtomoSettings:
    p = read_edf_properties(path)
    name = p.get("Setup.DatasetName")
    if not name:
        raise ParseError("no Setup.DatasetName", path=path, field="Setup.DatasetName",
                         expected="an etomo .edf file")

    def num(key):
        v = p.get(key, "")
        return to_float(v, path, None, key) if v else None

    # Older revisions (1.2) store the axis-A rotation as Setup.ImageRotation.
    rot_a = num("Setup.ImageRotationA")
    if rot_a is None:
        rot_a = num("Setup.ImageRotation")
    return EtomoSettings(
        dataset_name=name, revision=p.get("Setup.RevisionNumber"), axis_type=p.get("Setup.AxisType"),
        view_type=p.get("Setup.ViewType"), pixel_size_nm=num("Setup.PixelSize"),
        fiducial_diameter_nm=num("Setup.FiducialDiameter"), image_rotation_a_deg=rot_a,
        image_rotation_b_deg=num("Setup.ImageRotationB"), binning=num("Setup.Binning"),
        exclude_views_a=parse_view_list(p.get("Setup.AxisA.ExcludeProjections", ""), path),
        exclude_views_b=parse_view_list(p.get("Setup.AxisB.ExcludeProjections", ""), path),
        tilt_angle_type_a=p.get("Setup.AxisA.TiltAngle.Type"))
