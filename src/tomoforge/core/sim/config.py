"""Simulation settings: one flat pydantic record per case, so ``--set KEY=VALUE`` can reach every field.

Units are in the names. Every physical effect has a switch (``*_on``) or an amplitude that can be set to 0.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class SimConfig(BaseModel):
    """Everything that defines a simulated session (apart from the seed)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    name: str = Field("custom", description="Case name (recorded in the truth file)")
    description: str = Field("", description="One line for the docs and the truth file")

    # ----------------------------------------------------------------------------------------- session
    n_tilt_series: int = Field(1, ge=1, le=100, description="Tilt series in the session")
    image_size_px: int = Field(128, ge=32, le=16384, description="Width and height of each (square) image")
    pixel_size_a: float = Field(8.0, ge=0.2, le=50.0, description="Pixel size of frames and stacks (Å)")
    scale: float = Field(1.0, ge=0.25, le=16.0,
                         description="Multiplies image_size_px and divides pixel_size_a (same field of view); "
                                     "scale=8 on hiv-small gives 4k frames at 0.68-Å-like sampling")
    voltage_kv: float = Field(300.0, ge=60, le=1000, description="Accelerating voltage (kV)")
    cs_mm: float = Field(2.7, ge=0, le=10, description="Spherical aberration (mm)")
    amplitude_contrast: float = Field(0.1, ge=0, le=0.5, description="Amplitude contrast fraction")
    magnification: float = Field(53000, gt=0, le=1e7, description="Nominal magnification written to the mdoc")

    # ----------------------------------------------------------------------------------------- tilt scheme
    tilt_scheme: Literal["dose-symmetric", "bidirectional", "custom"] = "dose-symmetric"
    tilt_step_deg: float = Field(3.0, gt=0, le=30, description="Tilt increment (degrees)")
    tilt_max_deg: float = Field(60.0, gt=0, le=80, description="Largest |nominal tilt - pretilt| (degrees)")
    dose_symmetric_group: int = Field(1, ge=1, le=10, description="Views per side before switching (Hagen)")
    bidirectional_start_deg: float = Field(0.0, ge=-80, le=80, description="Start angle of a bidirectional scheme")
    custom_tilts_deg: str = Field("", description="Comma-separated nominal angles in acquisition order")
    pretilt_deg: float = Field(0.0, ge=-30, le=30,
                               description="Lamella pretilt: the scheme is centred here and the specimen slab "
                                           "is inclined by it in the tomogram")

    # ----------------------------------------------------------------------------------------- geometry errors
    tilt_axis_nominal_deg: float = Field(85.3, ge=-180, le=180, description="Tilt axis written to the mdoc")
    tilt_axis_error_deg: float = Field(1.5, ge=0, le=20, description="Max |true - nominal| tilt axis (degrees)")
    tilt_offset_max_deg: float = Field(1.5, ge=0, le=10, description="Max |true - nominal| tilt angle offset")
    stage_shift_rms_px: float = Field(4.0, ge=0, le=500, description="Per-view stage shift, rms (px)")
    view_rotation_rms_deg: float = Field(0.1, ge=0, le=5, description="Per-view in-plane rotation error, rms")
    view_magnification_rms: float = Field(0.001, ge=0, le=0.05, description="Per-view magnification error, rms")

    # ----------------------------------------------------------------------------------------- optics
    ctf_on: bool = Field(True, description="Apply the CTF (off: projected potential only)")
    target_defocus_um: float = Field(3.0, ge=0.0, le=15.0, description="Nominal underfocus (µm, positive)")
    defocus_offset_min_um: float = Field(0.2, ge=0, le=3, description="Min |true series mean - nominal| (µm)")
    defocus_offset_max_um: float = Field(0.5, ge=0, le=3, description="Max |true series mean - nominal| (µm)")
    defocus_scatter_um: float = Field(0.08, ge=0, le=2, description="Per-view defocus scatter, rms (µm)")
    astigmatism_a: float = Field(400.0, ge=0, le=5000, description="Defocus U - V (Å)")
    defocus_gradient_on: bool = Field(True, description="Height-dependent defocus (tilted images, thickness)")
    defocus_handedness: int = Field(1, ge=-1, le=1,
                                    description="+1: defocus = view defocus + height (toward the source)")
    defocus_bin_a: float = Field(400.0, ge=20, le=5000, description="Height bin for the CTF (Å)")
    dose_weighting_on: bool = Field(True, description="Grant & Grigorieff exposure attenuation")

    # ----------------------------------------------------------------------------------------- dose, camera
    dose_per_tilt_e_per_a2: float = Field(3.0, ge=0.01, le=1000, description="Electron dose per view (e/Å²)")
    frames_per_movie: int = Field(4, ge=1, le=2000, description="Frames per movie")
    noise_on: bool = Field(True, description="Poisson counting noise")
    mean_free_path_a: float = Field(3500.0, ge=100, le=1e6, description="Inelastic mean free path (Å), filtered")
    gain_rms: float = Field(0.05, ge=0, le=0.5, description="Pixel gain variation, rms (0 = flat gain)")
    hot_pixels_per_mpx_frame: float = Field(2.0, ge=0, le=1e4, description="X-ray hits per megapixel per frame")
    dark_views: str = Field("", description="Comma-separated acquisition orders of dark (blank) views, "
                                            "TS:ORDER to pick a tilt series (1-based TS)")
    bad_series: str = Field("", description="Comma-separated 1-based indices of wholly bad tilt series")

    # ----------------------------------------------------------------------------------------- motion
    drift_total_px: float = Field(2.0, ge=0, le=500, description="Global drift over a movie (px)")
    local_motion_px: float = Field(0.0, ge=0, le=50, description="Local deformation amplitude at the end (px)")

    # ----------------------------------------------------------------------------------------- specimen
    ice_thickness_a: float = Field(800.0, ge=50, le=10000, description="Ice (or lamella) thickness (Å)")
    beads_per_um2: float = Field(6.0, ge=0, le=5000, description="Gold beads per µm² (both surfaces together)")
    bead_diameter_a: float = Field(100.0, ge=10, le=500, description="Gold bead diameter (Å)")
    bead_surfaces: int = Field(2, ge=1, le=2, description="Beads on the top surface only (1) or both (2)")
    n_rings: int = Field(0, ge=0, le=100000, description="Free C6 rings per tilt series (in the tomogram box)")
    n_vlps: int = Field(0, ge=0, le=1000, description="Virus-like particles per tilt series (tomogram box)")
    vlp_radius_a: float = Field(600.0, ge=100, le=3000, description="Mean VLP (membrane) radius (Å)")
    n_vesicles: int = Field(0, ge=0, le=1000, description="Vesicles per tilt series (tomogram box)")
    vesicle_radius_range_a: str = Field("250,700", description="Min,max vesicle radius (Å)")
    crowding_per_um3: float = Field(2000.0, ge=0, le=1e6, description="Crowding blobs per µm³")
    texture_on: bool = Field(True, description="Amorphous ice / crowding phase texture (gives Thon rings)")
    texture_rms_rad: float = Field(0.06, ge=0, le=2, description="Texture phase rms per pixel for 1000 Å")
    ring_radius_a: float = Field(40.0, ge=10, le=500, description="C6 ring radius (Å)")
    lattice_spacing_a: float = Field(95.0, ge=20, le=1000, description="Hexagonal ring lattice spacing on VLPs")

    # ----------------------------------------------------------------------------------------- outputs
    movie_format: Literal["tiff", "mrc", "eer", "none"] = "tiff"
    eer_raw_per_frame: int = Field(20, ge=1, le=1000,
                                   description="EER: raw (single-electron) frames per simulated frame; "
                                               "group them by this to get the truth's frames back")
    write_stack: bool = Field(False, description="Also write the summed stack (gain-corrected, float32)")
    sort_stack_by_angle: bool = Field(True, description="Stack sections sorted by tilt (DateTime = true order)")
    write_noise_free: bool = Field(False, description="Write truth/<ts>_noisefree.mrc (expected images)")
    truth_binning: int = Field(1, ge=1, le=16, description="Truth-volume binning relative to the images at scale 1 "
                                                                "(multiplied by scale, so the volume keeps its size)")
    volume_thickness_px: int = Field(0, ge=0, le=8192, description="Truth volume depth (0: from the ice)")
    margin_px: int = Field(24, ge=4, le=1024, description="Canvas margin for motion (px)")

    def effective_image_size_px(self) -> int:
        return int(round(self.image_size_px * self.scale))

    def effective_pixel_size_a(self) -> float:
        return self.pixel_size_a / self.scale
