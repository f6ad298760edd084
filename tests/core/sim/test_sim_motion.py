"""Beam-induced motion: the frames move as the truth says, globally and locally."""

import numpy as np
import pytest
import torch
from tests.core.sim.simkit import render_series, tiny_config
from tests.core.sim.test_sim_projection import _bead_centroid

from tomoforge.core.geometry import project_points
from tomoforge.core.sim.motion import drift_profile, global_drift_px, local_field_px


def test_drift_starts_at_zero_and_has_the_requested_size():
    rng = np.random.default_rng(0)
    assert drift_profile(5)[0] == 0 and drift_profile(5)[-1] == pytest.approx(1.0)
    lengths = [np.hypot(*global_drift_px(8, 4.0, rng)[-1]) for _ in range(200)]
    assert 3.0 < np.mean(lengths) < 5.0


@pytest.mark.parametrize("seed", [0, 1])
def test_beads_move_as_the_truth_drift_and_local_field_say(seed):
    """Frame f shows at raw position p what frame 0 had at p - global_f - local_f(p) (docs/simulator.md)."""
    cfg = tiny_config(texture_on=False, noise_on=False, hot_pixels_per_mpx_frame=0, beads_per_um2=3000.0,
                      n_rings=0, crowding_per_um3=0.0, tilt_scheme="custom", custom_tilts_deg="0", image_size_px=256,
                      drift_total_px=3.0, local_motion_px=1.5, dose_weighting_on=False, gain_rms=0.0)
    plan, spec, _, views = render_series(cfg, seed)
    view, rv = plan.views[0], views[0]
    n = cfg.image_size_px
    r_px = spec.records["beads"][0]["radius_a"] / cfg.pixel_size_a
    beads = torch.tensor([b["xyz_a"] for b in spec.records["beads"]], dtype=torch.float64) / cfg.pixel_size_a
    uv0 = project_points(beads, torch.tensor([view.tilt_deg]), view.xf[None], (n, n))[0].numpy()
    last = len(rv.frames) - 1
    field = local_field_px(view.local_control_px[last], n, 0).numpy()  # (2, n, n) on raw pixels
    g = view.frame_shifts_px[last]
    errs, local = [], []
    for j, (u, w) in enumerate(uv0):
        if not (r_px + 10 < u < n - r_px - 11 and r_px + 10 < w < n - r_px - 11):
            continue
        others = np.delete(uv0, j, axis=0)
        if len(others) and np.min(np.hypot(*(others - [u, w]).T)) < 3.2 * r_px:
            continue
        q = _bead_centroid(rv.frames[0], (u, w), r_px)
        iy, ix = int(round(q[1] + g[1])), int(round(q[0] + g[0]))
        guess = (q[0] + g[0] + field[0, iy, ix], q[1] + g[1] + field[1, iy, ix])
        p = _bead_centroid(rv.frames[last], guess, r_px, search=3)
        d = (_bilinear(field[0], p), _bilinear(field[1], p))
        errs.append(np.hypot(p[0] - d[0] - g[0] - q[0], p[1] - d[1] - g[1] - q[1]))
        local.append(np.hypot(*d))
    assert len(errs) >= 3
    assert max(local) > 0.5  # the local part is really there
    assert max(errs) < 0.1, (errs, local)
    print(f"beads {len(errs)}, max error {max(errs):.3f} px, local up to {max(local):.2f} px")


def _bilinear(img: np.ndarray, xy) -> float:
    x, y = xy
    x0, y0 = int(np.floor(x)), int(np.floor(y))
    fx, fy = x - x0, y - y0
    return float((1 - fy) * ((1 - fx) * img[y0, x0] + fx * img[y0, x0 + 1])
                 + fy * ((1 - fx) * img[y0 + 1, x0] + fx * img[y0 + 1, x0 + 1]))
