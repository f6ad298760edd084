from tests.core.align.synth import make_series, shift_error_rms

from tomoforge.core.align.patches import align_patches


def test_patch_alignment_without_fiducials():
    s = make_series(seed=5, size=192, tilt_axis_deg=-52.0, step=4.0, n_beads=0, pretilt_deg=4.0, thickness_px=30.0)
    r = align_patches(s.images, s.tilt_deg, s.tilt_axis_deg + 1.5, n_patches=(5, 5), patch_size=56)
    sol = r.solution
    assert abs(float(sol.tilt_axis_deg.median()) - s.tilt_axis_deg) < 0.5
    assert shift_error_rms(sol.xf, s.xf, s.tilt_deg + 4.0) < 1.0
    assert abs(sol.pretilt_deg - 4.0) < 1.5  # specimen made level: the 4 degree pretilt comes back
