"""After ``workflow run default`` on the simulator's tiny case, ``export imod`` and ``export relion`` need no
options and write complete folders (runs the real workflow once for the module, ~20-40 s)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from tomoforge.io.ctffind import read_ctffind
from tomoforge.io.defocus import read_defocus
from tomoforge.io.imod import read_tilt_angles, read_xf
from tomoforge.io.imod_com import read_tilt_com
from tomoforge.io.imod_model import fiducial_points, read_model
from tomoforge.io.mrc import mrc_header_info, read_section
from tomoforge.io.relion import read_tilt_series_star, read_tomograms_star
from tomoforge.model import TiltSeries, Tomogram
from tomoforge.model.landmarks import LandmarkModel
from tomoforge.project.store import Project


@dataclass
class Exported:
    project: Project
    imod: Path                 # DIR/TS_01
    relion: Path               # DIR2
    ts: TiltSeries             # the newest tilt-series record (alignment, CTF, exclusions)
    raw: TiltSeries            # the newest record with unfiltered images
    landmarks: LandmarkModel   # the newest fiducial model
    tomogram: Tomogram


def _cli(*args: str) -> str:
    from tomoforge.cli import app

    res = CliRunner().invoke(app, list(args))
    assert res.exit_code == 0, f"tomoforge {' '.join(args)}:\n{res.output}\n{res.exception!r}"
    return res.output


def _newest(project: Project, type_name: str, record, accept=lambda rec: True):
    """The newest done job's record of that type (by job id), scanning the project directly."""
    found = None
    for j in project.jobs():
        if j.status != "done":
            continue
        for art in project.artifacts(j.id):
            if art.type == type_name:
                rec = record.model_validate(json.loads(project.resolve(art.uri).read_text()))
                if accept(rec):
                    found = rec
    assert found is not None, f"no {type_name} in the project"
    return found


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Exported:
    root = tmp_path_factory.mktemp("after_default")
    _cli("simulate", "tiny", str(root / "sim"), "--seed", "2")
    _cli("workflow", "run", "default", "-p", str(root / "P"), "--set", f"import.mdoc={root / 'sim'}/*.mdoc")
    _cli("export", "imod", "-p", str(root / "P"), "-o", str(root / "D"))
    _cli("export", "relion", "-p", str(root / "P"), "-o", str(root / "D2"))
    project = Project(root / "P")
    ts = _newest(project, "TiltSeries", TiltSeries)
    return Exported(project=project, imod=root / "D" / ts.ts_id, relion=root / "D2", ts=ts,
                    raw=_newest(project, "TiltSeries", TiltSeries,
                                lambda r: not (r.dose_filtered or r.ctf_corrected)),
                    landmarks=_newest(project, "LandmarkModel", LandmarkModel),
                    tomogram=_newest(project, "Tomogram", Tomogram))


def test_imod_folder_is_complete(exported):
    name, n = exported.ts.ts_id, len(exported.ts.images)
    for suffix in (".st", ".rawtlt", ".tlt", ".xf", ".defocus", "_ctffind.txt", ".fid", "_rec.mrc"):
        assert (exported.imod / f"{name}{suffix}").is_file(), suffix
    assert (exported.imod / "tilt.com").is_file() and (exported.imod / "newst.com").is_file()
    assert mrc_header_info(exported.imod / f"{name}.st").shape_zyx == (n, *exported.ts.image_shape_yx)
    tlt = read_tilt_angles(exported.imod / f"{name}.tlt", n_views=n)
    np.testing.assert_allclose(tlt, [im.tilt_angle_deg for im in exported.ts.images], atol=1e-3)
    xf = read_xf(exported.imod / f"{name}.xf", n_views=n)
    assert xf.shape == (n, 2, 3) and (xf[..., :2, :2] - torch.eye(2)).abs().max() > 1e-3   # aligned, not identity
    with_ctf = [im for im in exported.ts.images if im.ctf is not None]
    assert len(read_ctffind(exported.imod / f"{name}_ctffind.txt").rows) == len(with_ctf) > 0
    per = read_defocus(exported.imod / f"{name}.defocus", n_views=n).per_view(n)
    np.testing.assert_allclose([c.defocus_u_a for c, im in zip(per, exported.ts.images, strict=True) if im.ctf],
                               [im.ctf.defocus_u_a for im in with_ctf], atol=0.51)
    assert mrc_header_info(exported.imod / f"{name}_rec.mrc").shape_zyx == tuple(exported.tomogram.shape_zyx)


def test_imod_stack_holds_unfiltered_images(exported):
    """The workflow dose-filters and CTF-corrects; IMOD gets the images from before both (it applies them)."""
    assert exported.ts.dose_filtered and exported.ts.ctf_corrected     # else this test checks nothing
    raw = {im.acquisition_order: im.image for im in exported.raw.images}
    st = exported.imod / f"{exported.ts.ts_id}.st"
    for k, im in enumerate(exported.ts.images):
        ref = raw[im.acquisition_order]
        assert np.array_equal(read_section(st, k), read_section(ref.path, ref.index)), k
        filtered = read_section(im.image.path, im.image.index)
        assert not np.array_equal(read_section(st, k), filtered), k


def test_tilt_com_excludes_the_excluded_views(exported):
    excluded = [k + 1 for k, im in enumerate(exported.ts.images) if im.excluded]
    assert excluded, "the tiny case should have an excluded view (else EXCLUDELIST is untested)"
    com = read_tilt_com(exported.imod / "tilt.com")
    assert com.exclude_views == excluded
    assert com.tilt_file == f"{exported.ts.ts_id}.tlt"


def test_fid_matches_newest_landmark_model(exported):
    lm, ts = exported.landmarks, exported.ts
    model = read_model(exported.imod / f"{ts.ts_id}.fid")
    h, w = ts.image_shape_yx
    assert model.image_size_xyz == (w, h, len(ts.images))
    assert model.pixel_size == pytest.approx(ts.acquisition.pixel_size_a / 10, rel=1e-6)
    got = fiducial_points(model)
    assert len(got) == len(lm.beads) >= 3
    for g, bead in zip(got, lm.beads, strict=True):
        # the align step's records keep the views in tilt order, so model view v is stack section v
        want = np.array([(x + 0.5, y + 0.5, v) for v, x, y in sorted(bead.points)])
        np.testing.assert_allclose(g, want, atol=1e-3)


def test_relion_folder_is_complete(exported):
    ts = exported.ts
    (tomo,) = read_tomograms_star(exported.relion / "tomograms.star")
    assert tomo.tomo_name == ts.ts_id and tomo.tilt_series_star == f"tilt_series/{ts.ts_id}.star"
    assert tomo.size_xyz is not None and tomo.tomogram is not None and Path(tomo.tomogram).is_file()
    tilts = read_tilt_series_star(exported.relion / tomo.tilt_series_star)
    kept = [im for im in ts.images if not im.excluded]
    assert len(tilts) == len(kept) < len(ts.images)
    nominal = [im.nominal_tilt_angle_deg if im.nominal_tilt_angle_deg is not None else im.tilt_angle_deg
               for im in kept]
    np.testing.assert_allclose([t.nominal_tilt_deg for t in tilts], nominal, atol=2e-3)
    np.testing.assert_allclose([t.ctf.defocus_u_a for t in tilts], [im.ctf.defocus_u_a for im in kept], atol=0.51)
    raw = {im.acquisition_order: im.image for im in exported.raw.images}
    for t, im in zip(tilts, kept, strict=True):
        path = exported.relion / t.micrograph
        ref = raw[im.acquisition_order]
        assert np.array_equal(read_section(path, 0), read_section(ref.path, ref.index)), t.micrograph
