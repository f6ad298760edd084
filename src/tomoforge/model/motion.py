"""Per-frame shifts of the movies of a tilt series."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class MotionShifts(BaseModel):
    """Per-frame shifts of every movie of a tilt series (also written as TSV and RELION STAR files)."""

    model_config = ConfigDict(extra="forbid")
    ts_id: str
    pixel_size_a: float = Field(description="Movie pixel size: the unit of the shifts is this pixel")
    table_path: str
    star_paths: list[str] = Field(description="RELION motion STAR per view, in acquisition order")
    shifts_xy_px: list[list[list[float]]] = Field(description="[view in acquisition order][frame] = [x, y]")
    frames_aligned: list[int]
    frames_summed: list[int]
    patch_fit_rms_px: list[float] = Field(default_factory=list)
