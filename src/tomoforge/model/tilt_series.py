"""Tilt images and tilt series.

A ``TiltSeries`` keeps its images sorted by tilt angle. Each image carries its own acquisition order,
accumulated dose and exclusion flag, so no index ever has to be re-derived after views are dropped.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tomoforge.model.acquisition import Acquisition
from tomoforge.model.ctf import CtfEstimate


class ImageRef(BaseModel):
    """One 2D image: section ``index`` (0-based) of an MRC/ST stack at ``path``."""

    model_config = ConfigDict(extra="forbid")
    path: str
    index: int = Field(0, ge=0)


class MovieRef(BaseModel):
    """A movie of frames (MRC, TIFF or EER) for one tilt image."""

    model_config = ConfigDict(extra="forbid")
    path: str
    n_frames: int | None = Field(None, ge=1)
    eer_frames_per_group: int | None = Field(None, ge=1, description="EER raw frames summed per group")


class Transform2D(BaseModel):
    """An IMOD ``.xf`` row: raw to aligned about the image centre (docs/conventions.md)."""

    model_config = ConfigDict(extra="forbid")
    a11: float = 1.0
    a12: float = 0.0
    a21: float = 0.0
    a22: float = 1.0
    dx_px: float = 0.0
    dy_px: float = 0.0

    def as_rows(self) -> list[list[float]]:
        return [[self.a11, self.a12, self.dx_px], [self.a21, self.a22, self.dy_px]]

    @classmethod
    def from_rows(cls, rows) -> Transform2D:
        (a11, a12, dx), (a21, a22, dy) = rows
        return cls(a11=float(a11), a12=float(a12), a21=float(a21), a22=float(a22), dx_px=float(dx), dy_px=float(dy))


class TiltImage(BaseModel):
    """One view of a tilt series."""

    model_config = ConfigDict(extra="forbid")

    tilt_angle_deg: float = Field(description="Tilt angle (nominal, or refined once aligned)")
    nominal_tilt_angle_deg: float | None = Field(None, description="Tilt angle as acquired")
    acquisition_order: int = Field(ge=0, description="0-based position in the acquisition sequence")
    dose_e_per_a2: float = Field(0.0, ge=0, description="Dose of this view alone (e/Å²)")
    accumulated_dose_e_per_a2: float = Field(0.0, ge=0, description="Dose up to and including this view")
    excluded: bool = False
    exclude_reason: str | None = None
    image: ImageRef | None = Field(None, description="The 2D image, once there is one")
    movie: MovieRef | None = Field(None, description="The movie it came from, if any")
    even: ImageRef | None = None
    odd: ImageRef | None = None
    transform: Transform2D | None = Field(None, description="Alignment (.xf sense), metadata only")
    ctf: CtfEstimate | None = None
    target_defocus_um: float | None = Field(None, description="Nominal defocus from the mdoc (µm, positive)")
    date_time: str | None = None
    source_section: int | None = Field(None, description="ZValue of the view in its mdoc")

    @property
    def pre_exposure_e_per_a2(self) -> float:
        """Dose received before this view (RELION's rlnMicrographPreExposure)."""
        return self.accumulated_dose_e_per_a2 - self.dose_e_per_a2


class TiltSeries(BaseModel):
    """A tilt series: its acquisition and its views, sorted by tilt angle."""

    model_config = ConfigDict(extra="forbid")

    ts_id: str = Field(min_length=1)
    acquisition: Acquisition
    images: list[TiltImage]
    image_shape_yx: tuple[int, int] | None = Field(None, description="(h, w) of the images in pixels")
    gain_path: str | None = None
    dark_path: str | None = None
    gain_rotation: int = Field(0, ge=0, le=3, description="Counter-clockwise quarter turns applied to the gain")
    gain_flip: bool = Field(False, description="Flip the gain about its vertical axis (after rotation)")
    dose_filtered: bool = False
    ctf_corrected: bool = False
    excluded: bool = Field(False, description="The whole tilt series is excluded")
    exclude_reason: str | None = None
    mdoc_path: str | None = None
    notes: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _sorted_by_angle(self) -> TiltSeries:
        angles = [im.tilt_angle_deg for im in self.images]
        if angles != sorted(angles):
            self.images = sorted(self.images, key=lambda im: im.tilt_angle_deg)
        return self

    @property
    def n_views(self) -> int:
        return len(self.images)

    def active(self) -> list[TiltImage]:
        """The views that are not excluded, in tilt-angle order."""
        return [im for im in self.images if not im.excluded]

    def in_acquisition_order(self) -> list[TiltImage]:
        return sorted(self.images, key=lambda im: im.acquisition_order)


class TiltSeriesSet(BaseModel):
    """A set of tilt series (what an import step produces)."""

    model_config = ConfigDict(extra="forbid")
    tilt_series: list[TiltSeries]

    def ids(self) -> list[str]:
        return [ts.ts_id for ts in self.tilt_series]
