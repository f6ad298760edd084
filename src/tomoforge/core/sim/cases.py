"""Named simulation cases. Sizes are chosen so the default workflow runs in minutes on 2 CPU cores;
``scale`` (``--set scale=8``) gives full-size frames with the same field of view.
"""

from __future__ import annotations

from tomoforge.core.sim.config import SimConfig

CASES: dict[str, SimConfig] = {
    "tiny": SimConfig(
        name="tiny", description="Unit-test size: one 128x128 tilt series, 21 views (6° steps), 4 frames",
        image_size_px=128, pixel_size_a=8.0, tilt_step_deg=6.0, frames_per_movie=4, ice_thickness_a=600.0,
        n_rings=6, beads_per_um2=800.0, crowding_per_um3=3000.0, write_noise_free=True, write_stack=True,
        margin_px=16, stage_shift_rms_px=3.0, drift_total_px=2.0),
    "hiv-small": SimConfig(
        name="hiv-small", description="Like the HIV small dataset (EMPIAR-10164 TS_01) on a laptop: one tilt "
                                      "series of virus-like particles with gold beads, 41 views, 8 frames",
        image_size_px=512, pixel_size_a=6.0, frames_per_movie=8, ice_thickness_a=1500.0, n_vlps=6,
        vlp_radius_a=600.0, beads_per_um2=120.0, crowding_per_um3=300.0, truth_binning=2, local_motion_px=0.5,
        target_defocus_um=4.0, drift_total_px=3.0, stage_shift_rms_px=6.0),
    "exosome": SimConfig(
        name="exosome", description="Five tilt series of vesicles with gold beads; TS_02 has a dark view, TS_04 "
                                    "is wholly bad (thick ice, large jumps and drift)",
        n_tilt_series=5, image_size_px=384, pixel_size_a=8.0, frames_per_movie=4, ice_thickness_a=1200.0,
        n_vesicles=6, vesicle_radius_range_a="250,700", beads_per_um2=120.0, crowding_per_um3=500.0,
        dark_views="2:24", bad_series="4", truth_binning=2, target_defocus_um=3.5),
    "lamella": SimConfig(
        name="lamella", description="A FIB-milled lamella: no fiducials, 10° pretilt, ±50° around it, "
                                    "crowded cytoplasm with membranes",
        image_size_px=384, pixel_size_a=8.0, frames_per_movie=4, ice_thickness_a=1500.0, pretilt_deg=10.0,
        tilt_max_deg=51.0, beads_per_um2=0.0, n_vesicles=2, vesicle_radius_range_a="400,900", n_rings=30,
        crowding_per_um3=6000.0, truth_binning=2, target_defocus_um=4.0),
    "particles": SimConfig(
        name="particles", description="C6 rings at known poses for subtomogram averaging: two tilt series at "
                                      "4 Å/px",
        n_tilt_series=2, image_size_px=256, pixel_size_a=4.0, frames_per_movie=4, ice_thickness_a=600.0,
        n_rings=60, beads_per_um2=500.0, crowding_per_um3=1000.0, target_defocus_um=2.5, write_stack=True,
        texture_rms_rad=0.04),
}


def list_cases() -> list[str]:
    """Names of the built-in cases."""
    return list(CASES)
