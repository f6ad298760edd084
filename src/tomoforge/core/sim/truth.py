"""The ground-truth record of a simulated session (``truth/truth.json``); docs/simulator.md explains it.

Positions are in Å from the centre of the tomogram volume (X, Y, Z; Z toward the electron source), the
origin of core/geometry.project_points (divide by the pixel size to use it). To get Å from the centre of voxel
(0, 0, 0) as model.Particle uses, add ``(N - 1) / 2 * voxel_size_a`` per axis (``TruthVolume.shape_zyx``).
Orientations are ZYZ Euler angles (core/geometry.euler_zyz_to_matrix): particle frame to tomogram frame.
Paths are relative to the session folder (the parent of ``truth/``).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1


class _Rec(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FrameTruth(_Rec):
    index: int = Field(ge=0)
    shift_x_px: float = Field(description="Content displacement of this frame relative to frame 0 (raw px)")
    shift_y_px: float
    pre_exposure_e_per_a2: float = Field(description="Exposure before this frame starts (e/Å²)")


class ViewTruth(_Rec):
    acquisition_order: int = Field(ge=0, description="0-based order of acquisition")
    nominal_tilt_deg: float = Field(description="Tilt written to the mdoc")
    tilt_deg: float = Field(description="True specimen tilt (nominal + series offset)")
    xf: list[list[float]] = Field(description="2x3 raw->aligned transform (.xf sense, core/geometry.py)")
    tilt_axis_deg: float = Field(description="True tilt axis of this view (series axis + per-view error)")
    magnification: float = Field(description="Scale of the xf (1 = nominal)")
    defocus_u_a: float = Field(description="Defocus U at the raw image centre, specimen mid-plane (Å)")
    defocus_v_a: float
    astigmatism_angle_deg: float = Field(description="U axis, CCW from image +X")
    defocus_at_volume_centre_a: float = Field(description="Mean defocus where the volume centre projects (Å)")
    dose_e_per_a2: float = Field(description="Exposure of this view (0 for a dark view's specimen)")
    accumulated_dose_e_per_a2: float = Field(description="Exposure up to and including this view")
    transmission: float = Field(description="Mean relative intensity (ice absorption, dark views)")
    mean_counts_per_px: float = Field(description="Expected gain-corrected counts per pixel per frame of the "
                                                  "blank beam: dose per frame x pixel area x transmission")
    mean_relative_intensity: float = Field(description="Mean expected intensity of the image relative to the "
                                                       "blank beam (specimen absorption and contrast)")
    dark: bool = False
    excluded: bool = False
    exclude_reason: str | None = None
    movie: str | None = Field(None, description="Movie file, relative to the session folder")
    stack_section: int | None = Field(None, description="0-based section in the stack")
    date_time: str = Field(description="DateTime written to the mdoc")
    frames: list[FrameTruth] = Field(default_factory=list)
    local_motion_control_px: list | None = Field(
        None, description="(frames, 2, g, g) dx,dy control grid spanning the raw image corner to corner "
                          "(bicubic): frame f shows at p what frame 0 had at p - shift_f - local_f(p)")
    hot_pixels: list[list[float]] = Field(default_factory=list, description="[frame, y, x, counts]")


class ObjectTruth(_Rec):
    kind: str = Field(description="bead, ring, vlp or vesicle")
    xyz_a: list[float] = Field(description="(X, Y, Z) in Å from the tomogram volume centre")
    in_volume: bool = Field(description="Inside the truth-volume box")
    radius_a: float | None = None
    rot_deg: float | None = None
    tilt_deg: float | None = None
    psi_deg: float | None = None
    surface: str | None = None
    on_vlp: int | None = None
    n_rings: int | None = None


class TruthVolume(_Rec):
    path: str
    shape_zyx: tuple[int, int, int]
    voxel_size_a: float
    units: str = "V above vitreous ice (voxel average)"


class AcquisitionTruth(_Rec):
    voltage_kv: float
    cs_mm: float
    amplitude_contrast: float
    pixel_size_a: float
    image_size_yx: tuple[int, int]
    frames_per_movie: int
    dose_per_tilt_e_per_a2: float
    dose_per_frame_e_per_a2: float
    magnification_nominal: float
    tilt_axis_nominal_deg: float = Field(description="Written to the mdoc")
    tilt_axis_deg: float = Field(description="True mean tilt axis")
    tilt_angle_offset_deg: float = Field(description="True tilt - nominal tilt")
    target_defocus_um: float = Field(description="Nominal underfocus (µm, positive; the mdoc has -this)")
    defocus_mean_um: float = Field(description="True mean defocus of the series (µm)")
    defocus_handedness: int = Field(description="+1: defocus of a point = view defocus + its height")
    ice_thickness_a: float
    pretilt_deg: float
    tilt_scheme: str


class TiltSeriesTruth(_Rec):
    ts_id: str
    mdoc: str
    stack: str | None = None
    excluded: bool = False
    exclude_reason: str | None = None
    acquisition: AcquisitionTruth
    views: list[ViewTruth] = Field(description="In acquisition order")
    beads: list[ObjectTruth] = Field(default_factory=list)
    rings: list[ObjectTruth] = Field(default_factory=list)
    vlps: list[ObjectTruth] = Field(default_factory=list)
    vesicles: list[ObjectTruth] = Field(default_factory=list)
    volume: TruthVolume
    noise_free_stack: str | None = Field(
        None, description="Expected images, relative intensity (expected counts per frame = value x the view's "
                          "mean_counts_per_px), frame-0 geometry, "
                          "exposure attenuation at the view's mid-exposure, acquisition order")

    def views_by_tilt(self) -> list[ViewTruth]:
        return sorted(self.views, key=lambda v: v.nominal_tilt_deg)

    def xyz_from_voxel0_a(self, obj: ObjectTruth) -> list[float]:
        """Position of ``obj`` in Å from the centre of voxel (0, 0, 0) of the truth volume (model.Particle)."""
        d, h, w = self.volume.shape_zyx
        half = [(w - 1) / 2, (h - 1) / 2, (d - 1) / 2]
        return [c + hv * self.volume.voxel_size_a for c, hv in zip(obj.xyz_a, half, strict=True)]


class SimTruth(_Rec):
    schema_version: int = SCHEMA_VERSION
    case: str
    seed: int
    config: dict
    gain_reference: str | None = Field(None, description="gain-corrected frame = raw frame * gain")
    ring_map: TruthVolume | None = Field(None, description="C6 ring reference map, symmetry axis along Z")
    tilt_series: list[TiltSeriesTruth]

    def series(self, ts_id: str) -> TiltSeriesTruth:
        for ts in self.tilt_series:
            if ts.ts_id == ts_id:
                return ts
        raise KeyError(ts_id)
