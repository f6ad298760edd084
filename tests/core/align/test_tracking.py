import numpy as np
import torch
from tests.core.align.synth import shift_error_rms

from tomoforge.core.align.coarse import align_coarse
from tomoforge.core.align.solve import solve_alignment
from tomoforge.core.align.tracking import track_beads


def test_track_and_solve_meets_acceptance(beads_series):
    s = beads_series
    v = len(s.tilt_deg)
    skip = torch.zeros(v, dtype=torch.bool)
    skip[3] = True  # dark view
    psi_prior = s.tilt_axis_deg + 1.5  # the mdoc value is a little off
    co = align_coarse(s.images, s.tilt_deg, psi_prior, skip=skip)
    tr = track_beads(s.images, s.tilt_deg, co.xf, s.bead_diameter_px, skip=skip)
    pos = tr.positions_xy
    assert torch.isnan(pos[3]).all()  # nothing taken from the dark view
    # match tracks to true beads on the seed view
    true = s.beads_raw
    d = torch.cdist(pos[tr.seed_view], true[tr.seed_view])
    match = d.argmin(1)
    err = (pos - true[:, match]).norm(dim=-1).numpy()
    found = np.isfinite(err)
    frac = found[~skip.numpy()].mean(0)
    # no false tracks: every long track stays on its bead (a crossing bead may pull a point or two)
    long = frac >= 0.5
    assert np.nanmedian(err[:, long], axis=0).max() < 0.8
    assert np.mean(err[:, long][found[:, long]] > 2.0) < 0.02
    # >= 90% of the beads visible on the seed view are tracked through >= 80% of views
    size = s.images.shape[-1]
    visible = ((true[tr.seed_view] > 8) & (true[tr.seed_view] < size - 8)).all(1)
    good = set(match[torch.from_numpy(frac >= 0.8)].tolist())
    assert len(good & set(torch.nonzero(visible).flatten().tolist())) >= 0.9 * int(visible.sum())
    sol = solve_alignment(pos, s.tilt_deg, (size, size), psi_prior)
    assert abs(float(sol.tilt_axis_deg[0]) - s.tilt_axis_deg) < 0.3
    assert shift_error_rms(sol.xf, s.xf, s.tilt_deg, ~skip) < 0.5
    assert sol.residual_mean_px < 0.6
    assert not bool(sol.solved_views[3])
