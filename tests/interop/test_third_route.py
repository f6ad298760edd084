"""Issue 8 acceptance, 'third route': the simulated tilt series exported to IMOD and to RELION 5 form must put
the simulator's beads where the simulator put them (within 0.5 px), each read back with the io readers."""

from __future__ import annotations

import numpy as np
import torch

from tomoforge.core.geometry import project_points
from tomoforge.io.imod import read_tilt_angles, read_xf
from tomoforge.io.mrc import read_mrc
from tomoforge.io.relion import (
    alignment_from_tilts,
    read_tilt_series_star,
    read_tomograms_star,
    relion5_projection_matrices,
)

from interop_project import truth_bead_positions


def test_imod_geometry_projects_beads_onto_truth(tiny, imod_export):
    (folder,) = imod_export
    beads, views, truth_xy = truth_bead_positions(tiny.truth)
    assert len(beads) >= 10
    xf = read_xf(folder / "TS_01.xf", n_views=len(views))
    tlt = torch.as_tensor(read_tilt_angles(folder / "TS_01.tlt", n_views=len(views)))
    got = project_points(beads, tlt, xf, (128, 128))
    err = (got - truth_xy).norm(dim=-1)
    assert float(err.max()) < 0.5, float(err.max())
    assert float(err.max()) < 0.02      # only the files' rounding remains


def test_relion_geometry_projects_beads_onto_truth(tiny, relion_export):
    beads, views, truth_xy = truth_bead_positions(tiny.truth)
    (tomo,) = read_tomograms_star(relion_export / "tomograms.star")
    tilts = read_tilt_series_star(relion_export / tomo.tilt_series_star)
    ali = alignment_from_tilts(tilts)
    m = relion5_projection_matrices(ali, image_size_xy=(128, 128), volume_size_xyz=tomo.size_xyz,
                                    pixel_size_a=tomo.tilt_series_pixel_size_a)
    # RELION voxel coordinates: 0-based, so a point p from tomoforge's centre (N-1)/2 sits at p + (N-1)/2
    vox = beads + torch.tensor([(n - 1) / 2 for n in tomo.size_xyz], dtype=torch.float64)
    hom = torch.cat([vox, torch.ones(len(vox), 1, dtype=torch.float64)], -1)
    got = torch.einsum("vij,nj->vni", m, hom)[..., :2]
    by_angle = {round(v.nominal_tilt_deg, 1): k for k, v in enumerate(views)}
    rows = [by_angle[round(t.nominal_tilt_deg, 1)] for t in tilts]
    want = truth_xy[rows]
    inside = ((want >= 0) & (want <= 127)).all(-1)          # beads in the raw images
    assert int(inside.sum()) >= 5 * len(rows)
    err = (got - want).norm(dim=-1)[inside]
    # RELION 5 has no magnification: the truth's per-view scale (~1e-3) is the only error left
    assert float(err.max()) < 0.5, float(err.max())


def test_beads_are_dark_where_the_exported_geometry_puts_them(tiny, imod_export):
    """The stack and its .xf/.tlt belong together: gold beads are dark at the projected positions, and
    not when the sections are taken in another order."""
    (folder,) = imod_export
    beads, views, _ = truth_bead_positions(tiny.truth, in_field=True)
    assert len(beads) >= 4
    stack, _ = read_mrc(folder / "TS_01.st")
    xf = read_xf(folder / "TS_01.xf")
    tlt = torch.as_tensor(read_tilt_angles(folder / "TS_01.tlt"))
    pos = project_points(beads, tlt, xf, (128, 128)).round().long()

    def contrast(order):
        vals = []
        for k, j in enumerate(order):
            img = stack[j]
            for x, y in pos[k].tolist():
                if 2 <= x < 126 and 2 <= y < 126:
                    vals.append((img[y, x] - img.mean()) / img.std())
        return float(np.mean(vals))

    good = contrast(range(len(views)))
    shuffled = contrast(list(range(len(views)))[::-1])
    assert good < -0.5 and good < shuffled - 0.4, (good, shuffled)
