"""export imod writes the newest LandmarkModel as <TS>.fid, its views renumbered to the sections of <TS>.st."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tomoforge.interop.export_imod import export_imod
from tomoforge.io.imod_model import fiducial_points, read_model
from tomoforge.io.mrc import mrc_header_info
from tomoforge.model import TiltSeries
from tomoforge.model.landmarks import LandmarkBead, LandmarkModel
from tomoforge.project.store import Project

from interop_project import add_job


def _landmarks(ts: TiltSeries, rng: np.random.Generator, n_beads: int) -> LandmarkModel:
    """Random bead tracks on ``ts``'s views (record order), each bead missing a few views."""
    h, w = ts.image_shape_yx
    beads = []
    for _ in range(n_beads):
        views = sorted(rng.choice(len(ts.images), size=len(ts.images) - 3, replace=False).tolist())
        beads.append(LandmarkBead(points=[(v, float(rng.uniform(5, w - 5)), float(rng.uniform(5, h - 5)))
                                          for v in views]))
    return LandmarkModel(ts_id=ts.ts_id, image_shape_yx=(h, w), pixel_size_a=ts.acquisition.pixel_size_a,
                         bead_diameter_px=4.0, beads=beads)


def test_fid_from_newest_landmark_model(tiny, tmp_path):
    art = tiny.project.artifacts(tiny.truth_job, "tilt_series")[0]
    ts = TiltSeries.model_validate(json.loads(tiny.project.resolve(art.uri).read_text()))
    n = len(ts.images)
    # the fiducial model was made on a tilt series without its two lowest-tilt views: its view k is not section k
    dropped = {im.acquisition_order for im in ts.images[:2]}
    source = ts.model_copy(update={"images": [im for im in ts.images if im.acquisition_order not in dropped]})
    rng = np.random.default_rng(7)
    older, newest = _landmarks(source, rng, 4), _landmarks(source, rng, 6)

    project = Project.create(tmp_path / "p")
    src_job = add_job(project, "import", [("tilt_series", ts.ts_id, source)])
    add_job(project, "truth-align", [("tilt_series", ts.ts_id, ts)])
    src_art = project.artifacts(src_job, "tilt_series")[0].id
    for lm in (older, newest):
        job = add_job(project, "fiducial-model", [("landmarks", ts.ts_id, lm)])
        project.record_edges(job, [(src_art, "tilt_series")])

    (folder,) = export_imod(project, tmp_path / "out")
    assert mrc_header_info(folder / "TS_01.st").shape_zyx[0] == n
    model = read_model(folder / "TS_01.fid")
    assert model.image_size_xyz == (128, 128, n)
    assert model.pixel_size == pytest.approx(ts.acquisition.pixel_size_a / 10) and model.units == -9
    section = {im.acquisition_order: k for k, im in enumerate(ts.images)}
    got = fiducial_points(model)
    assert len(got) == len(newest.beads)
    for g, bead in zip(got, newest.beads, strict=True):
        want = np.array([(x + 0.5, y + 0.5, section[source.images[v].acquisition_order])
                         for v, x, y in bead.points])
        np.testing.assert_allclose(g, want, atol=1e-4)           # float32 in the file
        # and the point sits on the section showing the same view as the model's view
        for (v, _, _), z in zip(bead.points, g[:, 2], strict=True):
            assert ts.images[int(z)].acquisition_order == source.images[v].acquisition_order
        assert int(g[:, 2].min()) >= 2                           # never on the views the model did not have
