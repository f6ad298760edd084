"""3D coordinates with orientation, and particles. Picks carry their provenance (copick style)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Particle(BaseModel):
    """A position in Å from the tomogram's (0,0,0) voxel centre, with ZYZ Euler angles (degrees)."""

    model_config = ConfigDict(extra="forbid")
    x_a: float
    y_a: float
    z_a: float
    rot_deg: float = 0.0
    tilt_deg: float = 0.0
    psi_deg: float = 0.0
    score: float | None = None
    half_set: int | None = Field(None, ge=1, le=2)


class Coordinates3D(BaseModel):
    """Picks in one tomogram."""

    model_config = ConfigDict(extra="forbid")
    ts_id: str
    particles: list[Particle]
    box_size_px: int | None = Field(None, ge=1)
    pixel_size_a: float = Field(gt=0, description="Pixel size the tomogram was picked at")
    user_id: str = "tomoforge"
    session_id: str = "0"
    method: str = Field("import", description="How they were picked (provenance)")


class Particles(BaseModel):
    """Particles over several tomograms, for subtomogram averaging."""

    model_config = ConfigDict(extra="forbid")
    coordinates: list[Coordinates3D]
    symmetry: str = "C1"
