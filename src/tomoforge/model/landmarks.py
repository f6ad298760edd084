"""Fiducial (landmark) models: tracked gold beads per view, and their 3D positions once solved."""

from __future__ import annotations

import torch
from pydantic import BaseModel, ConfigDict, Field


class LandmarkBead(BaseModel):
    """One tracked bead: its positions per view (raw, full-size pixels) and, once solved, its 3D position."""

    model_config = ConfigDict(extra="forbid")
    points: list[tuple[int, float, float]] = Field(description="(view index in record order, x_px, y_px)")
    surface: int | None = Field(None, description="0 lower, 1 upper (after a solve)")
    xyz_px: tuple[float, float, float] | None = Field(None, description="3D position about the volume centre")
    residual_mean_px: float | None = None


class LandmarkModel(BaseModel):
    """A fiducial (landmark) model of one tilt series; views are indices into the TiltSeries' images."""

    model_config = ConfigDict(extra="forbid")
    ts_id: str
    image_shape_yx: tuple[int, int]
    pixel_size_a: float
    bead_diameter_px: float
    beads: list[LandmarkBead]
    refined: bool = Field(False, description="Gap-free positions predicted by the solved alignment")
    fid_path: str | None = Field(None, description="The same model as an IMOD .fid binary model")

    def positions(self, n_views: int) -> torch.Tensor:
        """``(v, n, 2)`` float64, NaN where a bead has no point."""
        out = torch.full((n_views, len(self.beads), 2), float("nan"), dtype=torch.float64)
        for j, b in enumerate(self.beads):
            for v, x, y in b.points:
                out[v, j, 0], out[v, j, 1] = x, y
        return out
