"""A CTF estimate for one image."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class CtfEstimate(BaseModel):
    """Defocus is positive for underfocus. The astigmatism angle is CCW from +X to the U axis."""

    model_config = ConfigDict(extra="forbid")

    defocus_u_a: float = Field(description="Defocus along the major axis (Å, positive = underfocus)")
    defocus_v_a: float = Field(description="Defocus along the minor axis (Å)")
    astigmatism_angle_deg: float = Field(0.0, description="Angle of the U axis, CCW from image +X")
    phase_shift_deg: float = Field(0.0, description="Additional phase shift (degrees)")
    fit_resolution_a: float | None = Field(None, description="Resolution where the fit score drops below 0.75")
    fit_score: float | None = Field(None, description="Cross-correlation of spectrum and fit")

    @property
    def defocus_mean_a(self) -> float:
        return 0.5 * (self.defocus_u_a + self.defocus_v_a)

    @property
    def defocus_um(self) -> float:
        return self.defocus_mean_a / 1e4
