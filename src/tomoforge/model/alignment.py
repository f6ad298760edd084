"""The outcome of an alignment, per view, for reports and curation."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class AlignmentReport(BaseModel):
    """Residuals and solved geometry of one tilt series' alignment (views in tilt-angle order)."""

    model_config = ConfigDict(extra="forbid")
    ts_id: str
    method: str = Field(description="fiducials or patches")
    tilt_deg: list[float] = Field(description="Refined tilt angle per view")
    residual_px: list[float | None] = Field(description="Mean residual per view (px of the tilt series); "
                                                        "None where the view had no observations")
    residual_mean_nm: float
    residual_sd_nm: float
    tilt_axis_deg: float
    pretilt_deg: float
    thickness_nm: float = Field(description="Extent of the beads/patches along Z (a lower bound for patches)")
    points: int = Field(description="Beads or patches used")
