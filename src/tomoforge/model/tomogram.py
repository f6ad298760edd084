"""A reconstructed tomogram."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Tomogram(BaseModel):
    """A volume file in X,Y,Z orientation (docs/conventions.md); arrays are (z, y, x)."""

    model_config = ConfigDict(extra="forbid")
    ts_id: str
    path: str
    pixel_size_a: float = Field(gt=0)
    shape_zyx: tuple[int, int, int]
    binning: float = Field(1.0, gt=0, description="Relative to the tilt-series images")
    half1_path: str | None = None
    half2_path: str | None = None
    ctf_corrected: bool = False
    method: str = Field("wbp", description="Reconstruction method, for provenance")
    z_shift_px: float = Field(0.0, description="IMOD SHIFT in Z used, in pixels of the tilt-series images "
                                               "(positive moved the specimen up); maps voxels back to views")
    x_tilt_deg: float = Field(0.0, description="X-axis tilt used (IMOD XAXISTILT)")
