"""export_relion writes a RELION 5 fragment that the RELION readers read back with the project's values."""

from __future__ import annotations

import numpy as np
import pytest

from tomoforge.errors import InputError
from tomoforge.interop.export_relion import export_relion
from tomoforge.io.mrc import read_mrc, read_section
from tomoforge.io.relion import (
    particles_to_coordinates,
    read_motion_star,
    read_optimisation_set,
    read_particles_star,
    read_tilt_series_star,
    read_tomograms_star,
)
from tomoforge.project.store import Project

from interop_project import EXCLUDED_ORDER


def test_tomograms_and_tilt_series_star(tiny, relion_export):
    (tomo,) = read_tomograms_star(relion_export / "tomograms.star")
    assert tomo.tomo_name == "TS_01" and tomo.tilt_series_star == "tilt_series/TS_01.star"
    assert tomo.tilt_series_pixel_size_a == pytest.approx(8.0) and tomo.voltage_kv == pytest.approx(300)
    d, h, w = tiny.truth.volume.shape_zyx
    assert tomo.size_xyz == (w, h, d)
    tilts = read_tilt_series_star(relion_export / tomo.tilt_series_star)
    active = [v for v in tiny.truth.views_by_tilt() if v.acquisition_order != EXCLUDED_ORDER]
    assert len(tilts) == len(active)            # the excluded view's row is left out
    np.testing.assert_allclose([t.nominal_tilt_deg for t in tilts], [v.nominal_tilt_deg for v in active], atol=2e-3)
    np.testing.assert_allclose([t.y_tilt_deg for t in tilts], [v.tilt_deg for v in active], atol=1e-9)
    np.testing.assert_allclose([t.ctf.defocus_u_a for t in tilts], [v.defocus_u_a for v in active], rtol=1e-12)
    np.testing.assert_allclose([t.pre_exposure_e_per_a2 for t in tilts],
                               [v.accumulated_dose_e_per_a2 - v.dose_e_per_a2 for v in active], atol=1e-9)
    # per-view images are the stack's sections
    src = tiny.session / "TS_01.mrc"
    for t, v in zip(tilts[:3], active[:3], strict=True):
        img, px = read_mrc(relion_export / t.micrograph)
        assert px == pytest.approx(8.0)
        assert np.array_equal(img[0], read_section(src, v.stack_section))


def test_motion_stars_and_even_odd(tiny, relion_export):
    (tomo,) = read_tomograms_star(relion_export / "tomograms.star")
    tilts = read_tilt_series_star(relion_export / tomo.tilt_series_star)
    active = [v for v in tiny.truth.views_by_tilt() if v.acquisition_order != EXCLUDED_ORDER]
    noise_free = tiny.session / tiny.truth.noise_free_stack
    for t, v in zip(tilts, active, strict=True):
        m = read_motion_star(relion_export / t.motion_metadata)
        np.testing.assert_allclose(m.shift_xy_px, [[f.shift_x_px, f.shift_y_px] for f in v.frames], atol=1e-12)
        assert list(m.frame_number) == list(range(1, len(v.frames) + 1))
    t, v = tilts[4], active[4]
    even, _ = read_mrc(relion_export / t.even)
    odd, _ = read_mrc(relion_export / t.odd)
    assert np.array_equal(even[0], read_section(noise_free, v.acquisition_order))
    assert np.array_equal(odd[0], read_section(tiny.session / "TS_01.mrc", v.stack_section))


def test_particles_round_trip(tiny, relion_export):
    tomos = {t.tomo_name: t for t in read_tomograms_star(relion_export / "tomograms.star")}
    coords = particles_to_coordinates(read_particles_star(relion_export / "particles.star"), tomos)
    want = np.array([tiny.truth.xyz_from_voxel0_a(r) for r in tiny.truth.rings])
    got = np.array([[p.x_a, p.y_a, p.z_a] for p in coords[0].particles])
    np.testing.assert_allclose(got, want, atol=1e-6)
    opt = read_optimisation_set(relion_export / "optimisation_set.star")
    assert opt["rlnTomoParticlesFile"] == "particles.star"


def test_notes_report_what_is_missing(relion_export):
    notes = (relion_export / "EXPORT_NOTES.txt").read_text()
    assert "magnification" in notes and "postprocess" in notes


def test_empty_project_is_refused(tmp_path):
    with pytest.raises(InputError, match="no finished tilt series"):
        export_relion(Project.create(tmp_path / "p"), tmp_path / "out")
