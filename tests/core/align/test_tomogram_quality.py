"""Issue 6 acceptance, fiducial route: a tomogram reconstructed with the solved alignment correlates with the truth
volume at >= 95% of the correlation the true alignment gives.

Case: the simulator's ``tiny`` (192 px, 8 A/px, 21 views +-60 deg, CTF, noise, drifting frames summed, beads on
both ice surfaces, rings and crowding), two seeds, tilt axes 60 and -30 degrees. Pipeline: ``align_coarse`` ->
``track_beads`` -> ``solve_alignment`` (as tests/core/align/test_simulated.py), then WBP with the solved ``xf`` and
the solved (levelled) tilt angles. Truth: the simulator's ``xf`` corrected to the frame-sum's mean frame shift
(``simcase.load_sim_case``) and the true tilt angles.

Fairness (tests/core/align/tomo_quality.py): both tomograms are compared with the truth seen through the same
missing wedge, low-passed (Gaussian sigma 1.5 voxels), after the best sub-voxel 3D translation of each is removed
by rebuilding it with the matching per-view shifts; the solved alignment cannot know where the truth box is (its
beads are centred), and that is the only freedom granted. Its tilt offset (levelling) is not searched.

The measure can fail: the same comparison, translation search included, gives 0.68 of the true correlation for
the true alignment spoiled by 3 px rms random shifts per view and axis (seed 2) and 0.88 for the solved one with
its tilt axis turned by 2 degrees (seed 3); both are asserted < 0.92. On seed 2 the 95% line sits near 1 px rms
random shifts (0.5 px: 0.987, 1 px: 0.950, 1.5 px: 0.892) or a 1.3 degree axis error (0.5: 0.990, 1: 0.963);
reconstructing with the nominal angles (no levelling, 1.3 degree offset) gives 0.966, coarse alignment 0.81.
The correlation without the beads (voxels within 2 voxels of a bead left out: beads are strong and are what the
fiducial solve fits) is checked too, so the protein-like content is aligned, not just the beads.
Measured (seed 2 / 3): true 0.944 / 0.936, solved 0.944 / 0.935, ratio 0.9997 / 0.9995; without the beads
0.999 / 0.9995; before removing the translation (2.7 / 4.7 voxels) the solved tomogram gave 0.74 / 0.57.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tests.core.align.simcase import load_sim_case
from tests.core.align.tomo_quality import tomogram_quality, wedge_reference
from tests.core.sim.simkit import corr

from tomoforge.core.align.coarse import align_coarse
from tomoforge.core.align.solve import solve_alignment
from tomoforge.core.align.tracking import track_beads
from tomoforge.core.geometry import xf_from_parameters
from tomoforge.io.mrc import read_mrc
from tomoforge.io.sim_session import session_path

MARGIN = 12  # voxels left out at the X/Y edges of the box (specimen outside the box leaks in)


def _bead_free(ts, shape, px: float) -> torch.Tensor:
    """``(d, h, w)`` mask: False within (radius + 2 voxels) of a bead centre, the X/Y margin False too."""
    d, h, w = shape
    keep = torch.zeros(shape, dtype=torch.bool)
    keep[:, MARGIN:-MARGIN, MARGIN:-MARGIN] = True
    for b in ts.beads:
        centre = [c / px + (n - 1) / 2 for c, n in zip(b.xyz_a, (w, h, d), strict=True)][::-1]  # z, y, x
        r = b.radius_a / px + 2.0
        lo = [max(0, int(np.floor(q - r))) for q in centre]
        hi = [min(n, int(np.ceil(q + r)) + 1) for q, n in zip(centre, shape, strict=True)]
        if any(l0 >= h0 for l0, h0 in zip(lo, hi, strict=True)):
            continue
        zz, yy, xx = torch.meshgrid(*(torch.arange(l0, h0, dtype=torch.float64) for l0, h0 in zip(lo, hi, strict=True)),
                                    indexing="ij")
        near = (zz - centre[0]) ** 2 + (yy - centre[1]) ** 2 + (xx - centre[2]) ** 2 <= r * r
        keep[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]] &= ~near
    return keep


def _spoil(kind: str, seed: int, c: dict, sol) -> tuple[torch.Tensor, torch.Tensor]:
    """(tilt_deg, xf) of a deliberately wrong alignment: the true one with 3 px rms random shifts per view and
    axis, or the solved one with its tilt axis turned by 2 degrees."""
    if kind == "jitter":
        g = torch.Generator().manual_seed(seed)
        xf = c.xf.clone()
        xf[:, :, 2] += 3.0 * torch.randn(xf.shape[0], 2, generator=g, dtype=torch.float64)
        return c.tilt_deg, xf
    return sol.tilt_deg, xf_from_parameters(sol.tilt_axis_deg + 2.0, sol.shifts_xy, sol.magnification)


@pytest.mark.parametrize("seed,axis,spoil", [(2, 60.0, "jitter"), (3, -30.0, "axis")])
def test_solved_fiducial_alignment_reconstructs_as_well_as_the_truth(tmp_path, seed, axis, spoil):
    c = load_sim_case(tmp_path, seed, axis)
    ts, images, skip = c.ts, -c.images, c.excluded  # dark objects: negate to correlate positively
    truth_vol, vpx = read_mrc(session_path(tmp_path / "truth" / "truth.json", ts.volume.path))
    assert tuple(truth_vol.shape[1:]) == tuple(images.shape[-2:]) and vpx == pytest.approx(c.pixel_size_a)
    truth = torch.from_numpy(np.array(truth_vol, dtype=np.float64))
    ref = wedge_reference(truth, c.tilt_deg[~skip])
    shape = tuple(images.shape[-2:])

    co = align_coarse(c.images, c.nominal_deg, axis, skip=skip)
    tr = track_beads(c.images, c.nominal_deg, co.xf, ts.beads[0].radius_a * 2 / c.pixel_size_a, skip=skip)
    sol = solve_alignment(tr.positions_xy, c.nominal_deg, shape, axis)

    true_q = tomogram_quality(images, c.tilt_deg, c.xf, ref, exclude=skip, margin=MARGIN)
    sol_q = tomogram_quality(images, sol.tilt_deg, sol.xf, ref, exclude=skip, margin=MARGIN)
    bad_q = tomogram_quality(images, *_spoil(spoil, seed, c, sol), ref, exclude=skip, margin=MARGIN)

    free = _bead_free(ts, tuple(ref.shape), c.pixel_size_a)
    free_true, free_sol = corr(true_q.tomogram[free], ref[free]), corr(sol_q.tomogram[free], ref[free])
    ratio, bad = sol_q.corr / true_q.corr, bad_q.corr / true_q.corr
    print(f"seed {seed} axis {axis}: true {true_q.corr:.4f} (shift {np.round(true_q.shift_zyx_vox, 2)}), "
          f"solved {sol_q.corr:.4f} (before gauge {sol_q.corr_before:.4f}, shift {np.round(sol_q.shift_zyx_vox, 2)}),"
          f" ratio {ratio:.4f}; without beads {free_true:.4f} / {free_sol:.4f} = {free_sol / free_true:.4f}; "
          f"spoiled ({spoil}) {bad:.4f}")
    # the truth box is found for the true alignment (its gauge is the truth's)
    assert max(abs(s) for s in true_q.shift_zyx_vox) < 0.3
    assert true_q.corr > 0.8  # the comparison itself is meaningful
    assert ratio >= 0.95
    assert free_sol / free_true >= 0.95
    # the measure is sensitive: a spoiled alignment falls clearly short
    assert bad < 0.92
