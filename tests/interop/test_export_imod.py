"""export_imod writes files the IMOD readers read back with the project's values."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tomoforge.errors import InputError
from tomoforge.interop.export_imod import export_imod
from tomoforge.io.ctffind import read_ctffind
from tomoforge.io.defocus import read_defocus
from tomoforge.io.imod import read_tilt_angles, read_xf
from tomoforge.io.imod_com import read_newst_com, read_tilt_com
from tomoforge.io.mrc import mrc_header_info, read_mrc, read_section
from tomoforge.project.store import Project

from interop_project import EXCLUDED_ORDER


def test_files_read_back(tiny, imod_export):
    (folder,) = imod_export
    views = tiny.truth.views_by_tilt()
    n = len(views)
    assert folder.name == "TS_01"
    info = mrc_header_info(folder / "TS_01.st")
    assert info.shape_zyx == (n, 128, 128) and info.pixel_size_a == pytest.approx(8.0)
    # the stack holds the views as stored, in tilt order: section k = source stack section of view k
    src = tiny.session / "TS_01.mrc"
    for k, v in enumerate(views):
        assert np.array_equal(read_section(folder / "TS_01.st", k), read_section(src, v.stack_section))
    raw = read_tilt_angles(folder / "TS_01.rawtlt", n_views=n)
    np.testing.assert_allclose(raw, [v.nominal_tilt_deg for v in views], atol=2e-3)
    tlt = read_tilt_angles(folder / "TS_01.tlt", n_views=n)
    np.testing.assert_allclose(tlt, [v.tilt_deg for v in views], atol=5e-4)
    xf = read_xf(folder / "TS_01.xf", n_views=n)
    truth_xf = torch.tensor([v.xf for v in views], dtype=torch.float64)
    assert (xf[..., :2] - truth_xf[..., :2]).abs().max() < 1e-7
    assert (xf[..., 2] - truth_xf[..., 2]).abs().max() < 6e-4
    df = read_defocus(folder / "TS_01.defocus", n_views=n)
    assert df.version == 3
    per = df.per_view(n)
    np.testing.assert_allclose([c.defocus_u_a for c in per], [v.defocus_u_a for v in views], atol=0.51)
    np.testing.assert_allclose([c.defocus_v_a for c in per], [v.defocus_v_a for v in views], atol=0.51)
    ct = read_ctffind(folder / "TS_01_ctffind.txt")
    assert [r.micrograph for r in ct.rows] == list(range(1, n + 1))
    np.testing.assert_allclose([r.ctf.defocus_u_a for r in ct.rows], [v.defocus_u_a for v in views], atol=1e-5)


def test_excluded_view_stays_in_stack_and_is_listed(tiny, imod_export):
    (folder,) = imod_export
    views = tiny.truth.views_by_tilt()
    k = next(i for i, v in enumerate(views) if v.acquisition_order == EXCLUDED_ORDER)
    com = read_tilt_com(folder / "tilt.com")
    assert com.exclude_views == [k + 1]
    assert mrc_header_info(folder / "TS_01.st").shape_zyx[0] == len(views)
    assert com.tilt_file == "TS_01.tlt" and com.input_projections == "TS_01.ali"
    assert com.full_image_xy == (128, 128)
    assert com.thickness_px == tiny.truth.volume.shape_zyx[0]      # tomogram depth x binning 1
    newst = read_newst_com(folder / "newst.com")
    assert newst.transform_file == "TS_01.xf" and newst.input_file == "TS_01.st" and newst.bin_by == 1


def test_tomogram_copied_with_pixel_size(tiny, imod_export):
    (folder,) = imod_export
    data, px = read_mrc(folder / "TS_01_rec.mrc")
    src, _ = read_mrc(tiny.session / tiny.truth.volume.path)
    assert data.shape == tuple(tiny.truth.volume.shape_zyx) and px == pytest.approx(8.0)
    assert np.array_equal(data, src)


def test_empty_project_is_refused(tmp_path):
    proj = Project.create(tmp_path / "empty")
    with pytest.raises(InputError) as err:
        export_imod(proj, tmp_path / "out")
    assert "no finished tilt series" in str(err.value) and "\n" not in str(err.value)


def test_unknown_job_is_refused(tiny, tmp_path):
    with pytest.raises(InputError, match="no job 999"):
        export_imod(tiny.project, tmp_path / "out", job=999)


def test_fiducial_model_round_trip(tiny, tmp_path):
    """Bead tracks (the truth beads projected into every view) written as .fid read back point for point."""
    from tomoforge.io.imod_model import fiducial_points, read_model, write_fiducials

    from interop_project import truth_bead_positions

    _, views, xy = truth_bead_positions(tiny.truth, in_field=True)
    tracks = [np.column_stack([xy[:, b].numpy(), np.arange(len(views))]) for b in range(xy.shape[1])]
    path = write_fiducials(tmp_path / "TS_01.fid", tracks, (128, 128, len(views)))
    model = read_model(path)
    assert model.image_size_xyz == (128, 128, len(views))
    got = fiducial_points(model)
    assert len(got) == len(tracks)
    for g, t in zip(got, tracks, strict=True):
        # IMOD model coordinates put pixel centres at i + 0.5 in x and y; sections stay integers
        np.testing.assert_allclose(g, t + [0.5, 0.5, 0.0], atol=1e-4)     # float32 in the file


def test_imod_tilt_reproduces_tomoforge_reconstruction(tiny, imod_export):
    """With IMOD installed, newst.com + tilt.com rebuild the tomogram: correlation >= 0.95 with tomoforge's."""
    import shutil
    import subprocess

    if not (shutil.which("submfg") and shutil.which("tilt") and shutil.which("newstack")):
        pytest.skip("IMOD (submfg, newstack, tilt) is not installed on this machine")
    from tomoforge.core.reconstruct.wbp import reconstruct_wbp

    (folder,) = imod_export
    for com in ("newst.com", "tilt.com"):
        subprocess.run(["submfg", com], cwd=folder, check=True, capture_output=True, timeout=300)
    imod, _ = read_mrc(folder / "TS_01_full_rec.mrc")          # PERPENDICULAR: (y, z, x)
    imod = np.transpose(imod, (1, 0, 2))
    stack, _ = read_mrc(folder / "TS_01.st")
    com = read_tilt_com(folder / "tilt.com")
    excl = torch.zeros(stack.shape[0], dtype=torch.bool)
    excl[[v - 1 for v in com.exclude_views]] = True
    ours = reconstruct_wbp(torch.from_numpy(stack), torch.as_tensor(read_tilt_angles(folder / "TS_01.tlt")),
                           read_xf(folder / "TS_01.xf"), imod.shape, exclude=excl).numpy()
    r = np.corrcoef(imod.ravel(), ours.ravel())[0, 1]
    assert r >= 0.95, r


def test_tilt_com_carries_the_tomograms_z_shift_and_x_tilt(tiny, tmp_path):
    """IMOD's tilt must rebuild the tomogram the project made: SHIFT (x, z) in unbinned pixels, XAXISTILT."""
    from tomoforge.interop.collect import collect_for_export
    from tomoforge.interop.export_imod import export_series_imod

    (ex,) = collect_for_export(tiny.project, tiny.truth_job)
    ex.tomogram = ex.tomogram.model_copy(update={"z_shift_px": 12.5, "x_tilt_deg": -2.25})
    com = read_tilt_com(export_series_imod(ex, tmp_path / "TS_01") / "tilt.com")
    assert com.shift_xz == (0.0, 12.5) and com.x_axis_tilt_deg == -2.25
