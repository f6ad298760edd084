"""Microscope and camera settings of a tilt series."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Acquisition(BaseModel):
    """Acquisition values; user overrides win over the mdoc at import."""

    model_config = ConfigDict(extra="forbid")

    voltage_kv: float = Field(300.0, gt=0, description="Accelerating voltage (kV)")
    cs_mm: float = Field(2.7, ge=0, description="Spherical aberration (mm)")
    amplitude_contrast: float = Field(0.1, ge=0, le=1, description="Amplitude contrast fraction")
    pixel_size_a: float = Field(1.0, gt=0, description="Pixel size of the images as stored (Å)")
    tilt_axis_deg: float = Field(0.0, description="Tilt axis angle, CCW from image +Y (degrees)")
    dose_per_tilt_e_per_a2: float = Field(0.0, ge=0, description="Electron dose per tilt image (e/Å²)")
    initial_dose_e_per_a2: float = Field(0.0, ge=0, description="Dose received before the first tilt (e/Å²)")
    magnification: float | None = Field(None, gt=0, description="Nominal magnification")
    frames_per_movie: int | None = Field(None, ge=1, description="Frames (or EER groups) per movie")
