"""Geometry of the simulated views: beads land where core/geometry says; views reconstruct the truth volume."""

import numpy as np
import pytest
import torch
from tests.core.sim.simkit import corr, lowpass, render_series, tiny_config, wedge_filter

from tomoforge.core.geometry import project_points, xf_from_parameters
from tomoforge.core.sim.volume import voxelize


def _bead_centroid(img: np.ndarray, guess_xy, radius_px: float, search: int = 6):
    """Centroid of darkness of a bead: start at the darkest pixel near ``guess``, re-centre twice."""
    bg = float(np.median(img))
    gx, gy = int(round(guess_xy[0])), int(round(guess_xy[1]))
    win = img[gy - search:gy + search + 1, gx - search:gx + search + 1]
    dy, dx = np.unravel_index(np.argmin(win), win.shape)
    cx, cy = float(gx - search + dx), float(gy - search + dy)
    r = radius_px + 1.0
    yy, xx = np.mgrid[0:img.shape[0], 0:img.shape[1]]
    for _ in range(3):
        mask = (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
        w = np.clip(bg - img, 0, None) * mask
        cx, cy = float((w * xx).sum() / w.sum()), float((w * yy).sum() / w.sum())
    return cx, cy


def _bead_errors(plan, spec, views, cfg, tilt_of, xf_of):
    n = cfg.image_size_px
    px = cfg.pixel_size_a
    beads = torch.tensor([b["xyz_a"] for b in spec.records["beads"]], dtype=torch.float64) / px
    r_px = spec.records["beads"][0]["radius_a"] / px
    errs = []
    for v, rv in zip(plan.views, views, strict=True):
        uv = project_points(beads, torch.tensor([tilt_of(v)]), xf_of(v)[None], (n, n))[0].numpy()
        truth_uv = project_points(beads, torch.tensor([v.tilt_deg]), v.xf[None], (n, n))[0].numpy()
        for j, (u, w) in enumerate(truth_uv):
            if not (r_px + 8 < u < n - r_px - 9 and r_px + 8 < w < n - r_px - 9):
                continue
            others = np.delete(truth_uv, j, axis=0)
            if len(others) and np.min(np.hypot(*(others - [u, w]).T)) < 3.2 * r_px:
                continue  # overlapping beads bias a centroid
            cx, cy = _bead_centroid(rv.noise_free, (u, w), r_px)
            errs.append(float(np.hypot(cx - uv[j, 0], cy - uv[j, 1])))
    return np.array(errs)


@pytest.mark.parametrize("seed", [0, 5])
def test_beads_project_where_truth_says_in_every_view(seed):
    cfg = tiny_config(texture_on=False, noise_on=False, hot_pixels_per_mpx_frame=0, n_rings=0,
                      beads_per_um2=1500.0, view_rotation_rms_deg=0.3, view_magnification_rms=0.005)
    plan, spec, _, views = render_series(cfg, seed)
    errs = _bead_errors(plan, spec, views, cfg, lambda v: v.tilt_deg, lambda v: v.xf)
    assert len(errs) >= 2 * len(plan.views), len(errs)
    assert errs.max() < 0.5, (errs.max(), np.median(errs))
    # the same measurement against the nominal geometry (mdoc tilt and axis, no shifts) is far off
    nominal = _bead_errors(plan, spec, views, cfg, lambda v: v.nominal_tilt_deg,
                           lambda v: xf_from_parameters(cfg.tilt_axis_nominal_deg))
    assert np.median(nominal) > 1.0


def test_noise_free_views_reconstruct_the_truth_volume_and_not_its_mirror():
    from tomoforge.core.reconstruct.wbp import reconstruct_wbp

    cfg = tiny_config(ctf_on=False, noise_on=False, texture_on=False, dose_weighting_on=False, beads_per_um2=0,
                      hot_pixels_per_mpx_frame=0, tilt_step_deg=3.0, n_rings=8, crowding_per_um3=4000.0)
    plan, spec, box, views = render_series(cfg, 3)
    # (1 - I) / 2 is the projected phase for an ideal (CTF-free) projection
    stack = torch.tensor(np.stack([(1.0 - rv.noise_free) / 2 for rv in views]))
    tilt = torch.tensor([v.tilt_deg for v in plan.views])
    xf = torch.stack([v.xf for v in plan.views])
    rec = reconstruct_wbp(stack, tilt, xf, box)
    truth = voxelize(spec, box, cfg.pixel_size_a)
    m = 8  # objects outside the box leak into its edges
    inner = (slice(None), slice(m, -m), slice(m, -m))
    rec_l = lowpass(rec, 1.5)[inner]
    truth_l = lowpass(truth, 1.5)[inner]
    # the views cannot hold what the missing wedge removes: compare with the truth seen through the same wedge
    truth_w = lowpass(wedge_filter(truth, float(tilt.min()), float(tilt.max())), 1.5)[inner]
    c = corr(rec_l, truth_w)
    c_mirror = corr(rec_l, torch.flip(truth_w, [0]))
    c_plain = corr(rec_l, truth_l)
    assert c > 0.9, (c, c_mirror, c_plain)
    assert c_plain > 0.7, (c, c_mirror, c_plain)
    assert c_mirror < c - 0.5, (c, c_mirror)


def test_near_complete_tilt_range_reconstructs_the_truth_itself():
    """With ±80° (the wedge nearly closed), the low-passed reconstruction matches the plain truth volume > 0.9,
    and its Z-mirror clearly worse: the simulator's projections and its truth volume agree in geometry."""
    from tomoforge.core.reconstruct.wbp import reconstruct_wbp

    cfg = tiny_config(ctf_on=False, noise_on=False, texture_on=False, dose_weighting_on=False, beads_per_um2=0,
                      hot_pixels_per_mpx_frame=0, tilt_step_deg=2.0, tilt_max_deg=80.0, n_rings=8,
                      crowding_per_um3=4000.0)
    plan, spec, box, views = render_series(cfg, 4)
    stack = torch.tensor(np.stack([(1.0 - rv.noise_free) / 2 for rv in views]))
    tilt = torch.tensor([v.tilt_deg for v in plan.views])
    rec = reconstruct_wbp(stack, tilt, torch.stack([v.xf for v in plan.views]), box)
    truth = voxelize(spec, box, cfg.pixel_size_a)
    inner = (slice(None), slice(8, -8), slice(8, -8))
    rec_l, truth_l = lowpass(rec, 1.5)[inner], lowpass(truth, 1.5)[inner]
    c, c_mirror = corr(rec_l, truth_l), corr(rec_l, torch.flip(truth_l, [0]))
    print(f"correlation {c:.3f}, Z-mirror {c_mirror:.3f}")
    assert c > 0.9, (c, c_mirror)
    assert c_mirror < c - 0.5, (c, c_mirror)
