import numpy as np
import torch
from tests.core.align.synth import make_series, shift_error_rms

from tomoforge.core.align.patches import align_patches, axis_spread_deg, level_one_layer, track_patches
from tomoforge.core.align.solve import solve_alignment
from tomoforge.core.geometry import apply_xf, image_center, project_points, rotation_y, xf_from_parameters
from tomoforge.io.mrc import read_mrc
from tomoforge.io.sim_session import load_truth, session_path, simulate_case


def test_patch_alignment_without_fiducials():
    s = make_series(seed=5, size=192, tilt_axis_deg=-52.0, step=4.0, n_beads=0, pretilt_deg=4.0, thickness_px=30.0)
    r = align_patches(s.images, s.tilt_deg, s.tilt_axis_deg + 1.5, n_patches=(5, 5), patch_size=56)
    sol = r.solution
    assert abs(float(sol.tilt_axis_deg.median()) - s.tilt_axis_deg) < 0.5
    assert shift_error_rms(sol.xf, s.xf, s.tilt_deg + 4.0) < 1.0
    assert abs(sol.pretilt_deg - 4.0) < 1.5  # specimen made level: the 4 degree pretilt comes back
    assert r.axis_sd_deg < 0.2 and not r.axis_kept  # thin specimen: the tracks pin the axis
    # the same tracks, asked for a spread they cannot give: the starting axis is kept exactly
    kept = align_patches(s.images, s.tilt_deg, s.tilt_axis_deg + 1.5, n_patches=(5, 5), patch_size=56, n_iter=1,
                         max_axis_sd_deg=0.0, level_specimen=False)
    assert kept.axis_kept and torch.all(kept.solution.tilt_axis_deg == s.tilt_axis_deg + 1.5)


def test_axis_spread_grows_when_tracks_wander_along_the_axis():
    # rigid points seen at +-60 degrees; then each track given its own slow drift along the axis (y), the error
    # a patch that slides between layers makes: the fitted axis then depends on which tracks are drawn
    g = torch.Generator().manual_seed(4)
    n, psi = 40, 30.0
    tilt = torch.arange(-60.0, 61.0, 3.0, dtype=torch.float64)
    pts = torch.cat([torch.rand(n, 2, generator=g, dtype=torch.float64) * 300 - 150,
                     torch.rand(n, 1, generator=g, dtype=torch.float64) * 60 - 30], 1)
    xf = xf_from_parameters(torch.full((len(tilt),), psi, dtype=torch.float64))
    obs = project_points(pts, tilt, xf, (400, 400))
    obs = obs + 0.1 * torch.randn(obs.shape, generator=g, dtype=torch.float64)
    w = torch.ones(obs.shape[:2], dtype=torch.float64)
    tight = axis_spread_deg(obs, tilt, (400, 400), psi, w)
    along = torch.tensor([-np.sin(np.deg2rad(psi)), np.cos(np.deg2rad(psi))])  # the axis direction, raw frame
    slope = torch.randn(n, generator=g, dtype=torch.float64) * 3.0  # px per radian of tilt, per track
    wander = obs + (torch.deg2rad(tilt)[:, None] * slope[None, :])[..., None] * along
    loose = axis_spread_deg(wander, tilt, (400, 400), psi, w)
    assert tight < 0.05
    assert loose > 4 * tight and loose > 0.1


def test_level_one_layer_levels_a_tilted_slab():
    # patch points on a 12 x 12 grid, heights +-30 px in a checkerboard (a slab 60 px thick), the slab tilted
    # 7 degrees about Y; the predictions must not change
    yy, xx = torch.meshgrid(torch.linspace(-150, 150, 12, dtype=torch.float64),
                            torch.linspace(-150, 150, 12, dtype=torch.float64), indexing="ij")
    ii, jj = torch.meshgrid(torch.arange(12), torch.arange(12), indexing="ij")
    zz = torch.where((ii + jj) % 2 == 0, 30.0, -30.0).to(torch.float64)
    pts = torch.stack([xx.ravel(), yy.ravel(), zz.ravel()], 1) @ rotation_y(7.0).T
    tilt = torch.arange(-60.0, 61.0, 6.0, dtype=torch.float64)
    xf = xf_from_parameters(torch.full((len(tilt),), 80.0, dtype=torch.float64))
    obs = project_points(pts, tilt, xf, (400, 400))
    sol = solve_alignment(obs, tilt, (400, 400), 80.0, level_specimen=False)
    lev = level_one_layer(sol)
    assert abs(lev.pretilt_deg - 7.0) < 0.5
    assert abs(lev.thickness_px - 60.0) < 8.0
    assert torch.allclose(project_points(lev.points_xyz, lev.tilt_deg, lev.xf, (400, 400)), obs, atol=1e-3)


def test_patch_tracks_on_a_thick_lamella_follow_rigid_points(tmp_path):
    """Simulated lamella (188 px of crowded ice under 10 degrees pretilt), noise-free, tracked with the true
    geometry as guide: along the axis a track has no parallax, so its truth-frame y must stay put. Chained
    96 x 48 patches drifted 3.4-3.7 px (rms) from a rigid point there; tall patches cut where a step jumps
    stay near 1.2-1.5 px."""
    path = simulate_case("lamella", tmp_path, seed=1, overrides={"write_stack": True, "movie_format": "none",
                                                                  "write_noise_free": True})
    ts = load_truth(path).tilt_series[0]
    views = sorted(ts.views, key=lambda v: v.stack_section)
    stack, _px = read_mrc(session_path(path, ts.noise_free_stack))  # acquisition order, frame-0 geometry
    images = torch.from_numpy(np.array(stack, dtype=np.float32)[[v.acquisition_order for v in views]])
    xf = torch.tensor([v.xf for v in views], dtype=torch.float64)
    nominal = torch.tensor([v.nominal_tilt_deg for v in views], dtype=torch.float64)
    theta = np.deg2rad([v.tilt_deg for v in views])
    tracks, _b = track_patches(images, nominal, xf, n_patches=(7, 3), patch_size=48)
    centre = image_center(tuple(images.shape[-2:]))
    al = (apply_xf(xf, tracks, centre) - centre).numpy()
    rx, ry = [], []
    for j in range(al.shape[1]):
        ok = np.isfinite(al[:, j, 0])
        if ok.sum() < 4:
            continue
        basis = np.stack([np.cos(theta[ok]), np.sin(theta[ok])], 1)
        coef, *_ = np.linalg.lstsq(basis, al[ok, j, 0], rcond=None)
        rx.append(al[ok, j, 0] - basis @ coef)
        ry.append(al[ok, j, 1] - al[ok, j, 1].mean())
    rx, ry = np.concatenate(rx), np.concatenate(ry)
    assert len(ry) > 0.4 * 21 * len(views)  # most of the grid is followed through most views
    assert np.sqrt(np.mean(ry ** 2)) < 2.0
    assert np.sqrt(np.mean(rx ** 2)) < 4.5
