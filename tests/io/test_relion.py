"""RELION 5 files read with values checked, round trips, and the IMOD <-> RELION 5 geometry checked by
projecting points through both descriptions (half-pixel centre difference included)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tomoforge.core.geometry import image_center, project_points, xf_from_parameters
from tomoforge.errors import ParseError
from tomoforge.io import relion

P = "relion/relion5_EMPIAR-10164_project"


# ----------------------------------------------------------------------------------------- geometry

def _scene(image_xy=(928, 960), vol_xyz=(928, 960, 300), x_tilt=0.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    tilts = torch.arange(-60.0, 61.0, 3.0, dtype=torch.float64)
    psi = 85.0 + 0.3 * torch.randn(len(tilts), generator=g, dtype=torch.float64)
    shifts = 20 * torch.randn(len(tilts), 2, generator=g, dtype=torch.float64)
    xf = xf_from_parameters(psi, shifts)
    pts = torch.stack([torch.rand(50, generator=g, dtype=torch.float64) * (n - 40) - (n - 40) / 2
                       for n in vol_xyz], -1)                          # relative to the (N-1)/2 centre
    return tilts, xf, pts, image_xy, vol_xyz, x_tilt


def _project_relion(mats, pts, vol_xyz):
    vox = pts + image_center(tuple(reversed(vol_xyz)))                   # 0-based voxel coordinates
    h = torch.cat([vox, torch.ones(len(vox), 1, dtype=torch.float64)], -1)
    return torch.einsum("vij,nj->vni", mats, h)[..., :2]


@pytest.mark.parametrize("sizes", [((928, 960), (928, 960, 300)), ((927, 961), (927, 961, 301)),
                                   ((1024, 1000), (1000, 1024, 250))])
@pytest.mark.parametrize("x_tilt", [0.0, 1.7])
def test_imod_and_relion_project_the_same(sizes, x_tilt):
    tilts, xf, pts, _, _, _ = _scene(*sizes, x_tilt=x_tilt)
    image_xy, vol_xyz = sizes
    truth = project_points(pts, tilts, xf, (image_xy[1], image_xy[0]), x_tilt_deg=x_tilt)  # raw pixels
    ali = relion.imod_to_relion5(xf, tilts, image_size_xy=image_xy, volume_size_xyz=vol_xyz,
                                 pixel_size_a=1.35, x_tilt_deg=x_tilt)
    mats = relion.relion5_projection_matrices(ali, image_size_xy=image_xy, volume_size_xyz=vol_xyz,
                                              pixel_size_a=1.35)
    got = _project_relion(mats, pts, vol_xyz)
    assert (got - truth).abs().max() < 1e-9
    assert np.allclose(ali.z_rot_deg, [float(a) for a in relion.xf_rotation_deg(xf)])
    assert np.allclose(ali.y_tilt_deg, tilts.numpy())


def test_naive_conversion_is_half_a_pixel_off():
    tilts, xf, pts, image_xy, vol_xyz, _ = _scene()
    truth = project_points(pts, tilts, xf, (image_xy[1], image_xy[0]))
    ali = relion.imod_to_relion5(xf, tilts, image_size_xy=image_xy, volume_size_xyz=vol_xyz, pixel_size_a=1.0)
    naive = relion.invert_xf(xf)[:, :, 2]                               # -A^-1 d without centre terms
    ali.x_shift_a, ali.y_shift_a = naive[:, 0].numpy(), naive[:, 1].numpy()
    mats = relion.relion5_projection_matrices(ali, image_size_xy=image_xy, volume_size_xyz=vol_xyz,
                                              pixel_size_a=1.0)
    err = (_project_relion(mats, pts, vol_xyz) - truth).norm(dim=-1)
    assert err.min() > 0.3 and err.max() < 1.5      # image (0.5, 0.5) plus the rotated volume offset


@pytest.mark.parametrize("sizes", [((928, 960), (928, 960, 300)), ((927, 961), (927, 961, 301))])
def test_imod_relion_round_trip(sizes, tmp_path):
    tilts, xf, _, image_xy, vol_xyz, _ = _scene(*sizes, x_tilt=0.8)
    kw = dict(image_size_xy=image_xy, volume_size_xyz=vol_xyz, pixel_size_a=2.7)
    ali = relion.imod_to_relion5(xf, tilts, x_tilt_deg=0.8, **kw)
    # through a STAR file: shortest-repr floats read back bit-exact
    tilts_rec = [relion.RelionTilt(micrograph=f"ts_{k:03d}.mrc", x_tilt_deg=float(ali.x_tilt_deg[k]),
                                   y_tilt_deg=float(ali.y_tilt_deg[k]), z_rot_deg=float(ali.z_rot_deg[k]),
                                   x_shift_a=float(ali.x_shift_a[k]), y_shift_a=float(ali.y_shift_a[k]))
                 for k in range(len(tilts))]
    relion.write_tilt_series_star(tmp_path / "TS.star", "TS", tilts_rec)
    back = relion.alignment_from_tilts(relion.read_tilt_series_star(tmp_path / "TS.star"))
    assert np.array_equal(back.x_shift_a, ali.x_shift_a) and np.array_equal(back.z_rot_deg, ali.z_rot_deg)
    xf2, t2, a2 = relion.relion5_to_imod(back, **kw)
    assert (xf2 - xf).abs().max() < 1e-9 and np.allclose(t2, tilts.numpy()) and np.allclose(a2, 0.8)


def test_projection_matrix_decomposition():
    tilts, xf, pts, image_xy, vol_xyz, _ = _scene(x_tilt=2.0)
    kw = dict(image_size_xy=image_xy, volume_size_xyz=vol_xyz, pixel_size_a=1.7)
    ali = relion.imod_to_relion5(xf, tilts, x_tilt_deg=2.0, **kw)
    mats = relion.relion5_projection_matrices(ali, **kw)
    dec = relion.projection_matrices_to_relion5(mats, **kw)
    for f in ("x_tilt_deg", "y_tilt_deg", "z_rot_deg", "x_shift_a", "y_shift_a"):
        np.testing.assert_allclose(getattr(dec, f), getattr(ali, f), atol=1e-9)


def test_real_alignment_is_imod_like(realdata):
    tilts = relion.read_tilt_series_star(realdata / P / "AlignTiltSeries/job005/tilt_series/TS_01.star")
    ali = relion.alignment_from_tilts(tilts)
    nominal = np.array([t.nominal_tilt_deg for t in tilts])
    assert len(tilts) == 40 and np.all(np.abs(ali.y_tilt_deg - nominal) < 2.0)
    assert np.all(np.abs(ali.z_rot_deg - 85.0) < 1.0) and np.all(ali.x_tilt_deg == 0)
    assert (ali.x_shift_a[0], ali.y_shift_a[0]) == (34.845611, 108.499417)
    # the same values go back to an IMOD .xf whose rotation is the tilt axis
    xf, _, _ = relion.relion5_to_imod(ali, image_size_xy=(4000, 4000), volume_size_xyz=(4000, 4000, 2000),
                                      pixel_size_a=1.35)
    assert np.allclose(relion.xf_rotation_deg(xf).numpy(), ali.z_rot_deg)
    with pytest.raises(ParseError, match="rlnTomoXTilt"):
        relion.alignment_from_tilts(relion.read_tilt_series_star(realdata / P / "Import/job001/tilt_series/TS_01.star"))


# ----------------------------------------------------------------------------------------- files

def test_tomograms_star(realdata, tmp_path):
    t = relion.read_tomograms_star(realdata / P / "Tomograms/job006/tomograms.star")
    assert [x.tomo_name for x in t] == ["TS_01", "TS_03", "TS_43", "TS_45", "TS_54"]
    a = t[0]
    assert (a.voltage_kv, a.cs_mm, a.amplitude_contrast, a.original_pixel_size_a, a.hand) == (300, 2.7, 0.1, 0.675, -1)
    assert a.tilt_series_pixel_size_a == 1.35 and a.binning == pytest.approx(7.407407)
    assert a.size_xyz == (4000, 4000, 2000)
    assert a.half1.endswith("TS_01_half1.mrc") and a.half2.endswith("TS_01_half2.mrc")
    assert a.etomo_directive == "AlignTiltSeries/job005/external/TS_01/TS_01.edf"
    d = relion.read_tomograms_star(realdata / P / "Denoise/job008/tomograms.star")
    assert d[0].denoised is not None
    f = relion.read_tomograms_star(realdata / "relion/relion5_aligntiltseries_aretomo/tomograms.star")
    assert len(f) == 14 and f[0].size_xyz == (4092, 4092, 1392) and f[0].extra["rlnTomoZRot"] == "96.243103"
    relion.write_tomograms_star(tmp_path / "tomograms.star", t)
    assert relion.read_tomograms_star(tmp_path / "tomograms.star") == t


@pytest.mark.parametrize("rel, n, has_ctf, has_ali", [
    (P + "/Import/job001/tilt_series/TS_01.star", 41, False, False),
    (P + "/MotionCorr/job002/tilt_series/TS_01.star", 41, False, False),
    (P + "/CtfFind/job003/tilt_series/TS_01.star", 41, True, False),
    (P + "/ExcludeTiltImages/job004/tilt_series/TS_01.star", 40, True, False),
    (P + "/AlignTiltSeries/job005/tilt_series/TS_01.star", 40, True, True),
    (P + "/Tomograms/job006/tilt_series/TS_01.star", 40, True, True),
    (P + "/CtfRefine/job027/tilt_series/TS_01.star", 40, True, True),
    (P + "/Polish/job030/tilt_series/TS_01.star", 40, True, True),
    ("relion/relion5_200kV_tomo200528/Tomograms/job009/tilt_series/tomo200528_107.star", 35, True, True),
])
def test_tilt_series_stars(realdata, tmp_path, rel, n, has_ctf, has_ali):
    tilts = relion.read_tilt_series_star(realdata / rel)
    assert len(tilts) == n
    assert all((t.ctf is not None) == has_ctf for t in tilts)
    assert all((t.z_rot_deg is not None) == has_ali for t in tilts)
    if "EMPIAR" in rel:
        t57 = next(t for t in tilts if t.movie == "frames/TS_01_038_-57.0.mrc")
        assert t57.frame_count == 8 and t57.nominal_tilt_deg == pytest.approx(-56.9985)
        assert t57.pre_exposure_e_per_a2 == 114.0 and t57.nominal_defocus_um == -4.0
    if has_ctf and "Ctf" in rel and "Refine" not in rel:
        assert tilts[0].ctf.defocus_u_a > 10000 and tilts[0].even is not None and tilts[0].odd is not None
    relion.write_tilt_series_star(tmp_path / "x.star", "X", tilts)
    back = relion.read_tilt_series_star(tmp_path / "x.star", "X")
    for a, b in zip(tilts, back, strict=True):
        da, db = a.model_dump(), b.model_dump()
        da["extra"].pop("rlnCtfAstigmatism", None)
        db["extra"].pop("rlnCtfAstigmatism", None)
        assert da == db


def test_motion_star(realdata, tmp_path):
    m = relion.read_motion_star(realdata / P / "MotionCorr/job002/frames/TS_03_019_-30_0.star")
    assert m.general["rlnMicrographMovieName"] == "frames/TS_03_019_-30.0.mrc"
    assert m.frame_number.tolist() == list(range(1, 9))
    np.testing.assert_array_equal(m.shift_xy_px[1], [0.112983, 0.161374])
    assert m.hot_pixels_xy.shape == (3899, 2) and m.hot_pixels_xy[0].tolist() == [1211.0, 0.0]
    relion.write_motion_star(tmp_path / "m.star", m)
    b = relion.read_motion_star(tmp_path / "m.star")
    assert np.array_equal(b.shift_xy_px, m.shift_xy_px) and np.array_equal(b.hot_pixels_xy, m.hot_pixels_xy)
    assert b.general == m.general


def test_particles_2d_stack(realdata, tmp_path):
    parts = relion.read_particles_star(realdata / P / "Extract/job020/particles.star")
    assert parts.are_2d_stacks and len(parts.particles) == 9442 and parts.optics[0]["rlnImageSize"] == "192"
    vis = relion.parse_visible_frames(parts.particles.column("rlnTomoVisibleFrames")[0])
    assert len(vis) == 40 and sum(vis) == 17
    tomos = {t.tomo_name: t for t in relion.read_tomograms_star(realdata / P / "Tomograms/job006/tomograms.star")}
    coords = relion.particles_to_coordinates(parts, tomos)
    c1 = next(c for c in coords if c.ts_id == "TS_01")
    assert sum(len(c.particles) for c in coords) == 9442
    p0 = c1.particles[0]
    assert p0.x_a == pytest.approx(1776.506664 + 2000 * 1.35) and p0.z_a == pytest.approx(1135.301351 + 1000 * 1.35)
    assert p0.half_set == 2
    relion.write_particles_star(tmp_path / "p.star", coords, tomos)
    again = relion.particles_to_coordinates(relion.read_particles_star(tmp_path / "p.star"), tomos)
    for ca, cb in zip(coords, again, strict=True):
        for a, b in zip(ca.particles, cb.particles, strict=True):
            assert (a.x_a, a.y_a, a.z_a, a.half_set) == pytest.approx((b.x_a, b.y_a, b.z_a, b.half_set), abs=1e-9)
            assert (a.rot_deg, a.tilt_deg, a.psi_deg) == pytest.approx((b.rot_deg, b.tilt_deg, b.psi_deg), abs=1e-6)


def test_particles_other_variants(realdata):
    w = relion.read_particles_star(realdata / "relion/warptools_export/particles_2Dstacks.star")
    assert w.are_2d_stacks and len(w.particles) == 40 and len(w.optics) == 4
    assert relion.parse_visible_frames(w.particles.column("rlnTomoVisibleFrames")[0]).count(0) == 3
    c = relion.particles_to_coordinates(w, pixel_size_a=12.0)
    assert len(c) == 4 and c[0].particles[0].x_a == pytest.approx(494.521 * 12)
    a = relion.read_particles_star(realdata / P / "Picks/job019/annotations/TS_54_particles.star")
    assert not a.are_2d_stacks and len(a.particles) == 1418
    s = relion.read_particles_star(realdata / P / "Picks/job009/annotations/TS_01_spheres.star")
    assert len(s.particles) == 9 and s.particles.floats("rlnSphereRadius")[0] == pytest.approx(43.95504)
    p = relion.read_particles_star(realdata / P / "Picks/job019/particles.star")
    assert len(p.particles) == 9442


def test_optimisation_sets_postprocess_pipeline_jobs(realdata, tmp_path):
    o = relion.read_optimisation_set(realdata / P / "Polish/job030/optimisation_set.star")
    assert o["rlnTomoTrajectoriesFile"] == "Polish/job030/motion.star"
    assert relion.read_optimisation_set(realdata / P / "Picks/job019/optimisation_set.star")[
        "rlnTomoParticlesFile"] == "Picks/job019/particles.star"
    for rel in ("Class3D/job017/run_it025_optimisation_set.star", "CtfRefine/job027/optimisation_set.star",
                "Extract/job020/optimisation_set.star"):
        assert "rlnTomoTomogramsFile" in relion.read_optimisation_set(realdata / P / rel)
    w = relion.read_optimisation_set(realdata / "relion/warptools_export/optimisation_set.star")
    assert w["rlnTomoTomogramsFile"].endswith("_tomograms.star")
    relion.write_optimisation_set(tmp_path / "o.star", o)
    assert relion.read_optimisation_set(tmp_path / "o.star") == o
    pp = relion.read_postprocess(realdata / P / "PostProcess/job022/postprocess.star")
    assert pp.final_resolution_a == pytest.approx(5.082353) and len(pp.resolution_a) == 97
    assert pp.fsc_corrected[1] == pytest.approx(0.9992)
    relion.write_postprocess(tmp_path / "pp.star", pp.final_resolution_a, half1="h1.mrc", half2="h2.mrc",
                             postprocessed_map="pp.mrc", resolution_a=pp.resolution_a, fsc_corrected=pp.fsc_corrected)
    b = relion.read_postprocess(tmp_path / "pp.star")
    assert b.final_resolution_a == pp.final_resolution_a and np.array_equal(b.fsc_corrected, pp.fsc_corrected)
    pl = relion.read_pipeline(realdata / P / "default_pipeline.star")
    assert pl.job_counter == 84 and len(pl.processes) == 80 and pl.processes[0]["type"] == "relion.importtomo"
    assert len(pl.input_edges) == 150 and len(pl.nodes) == 263
    for rel, label in (("AlignTiltSeries/job005/job.star", "relion.aligntiltseries"),
                       ("Class3D/job017/job.star", "relion.class3d"),
                       ("Extract/job020/job.star", "relion.pseudosubtomo"),
                       ("Import/job001/job.star", "relion.importtomo"),
                       ("Tomograms/job006/job.star", "relion.reconstructtomograms")):
        jt, opts = relion.read_job_star(realdata / P / rel)
        assert jt.startswith(label) and opts
    jt, opts = relion.read_job_star(realdata / "relion/relion5_job002_job.star")
    assert jt == "relion.motioncorr.own"
    for rel in ("AlignTiltSeries/job005/aligned_tilt_series.star", "CtfFind/job003/tilt_series_ctf.star",
                "ExcludeTiltImages/job004/selected_tilt_series.star", "Import/job001/tilt_series.star",
                "MotionCorr/job002/corrected_tilt_series.star", "CtfRefine/job027/tomograms.star",
                "Polish/job030/tomograms.star"):
        rows = relion.read_tomograms_star(realdata / P / rel)
        assert [r.tomo_name for r in rows] == ["TS_01", "TS_03", "TS_43", "TS_45", "TS_54"]
    t9 = relion.read_tomograms_star(realdata / "relion/relion5_200kV_tomo200528/Tomograms/job009/tomograms.star")
    assert t9[0].tilt_series_pixel_size_a == pytest.approx(1.724) and t9[0].binning == pytest.approx(8.12065)


def test_relion4_single_particle_stars(realdata):
    from tomoforge.io.star import read_star

    c = read_star(realdata / "relion/relion4_ctffind_TS_01_micrographs_ctf.star").block("micrographs")
    assert len(c) == 41 and c.floats("rlnDefocusU").min() > 0
    m = read_star(realdata / "relion/relion4_motioncorr_TS_01_corrected_micrographs.star").block("micrographs")
    assert len(m) == 41 and m.has("rlnAccumMotionTotal")


def test_warptools_projection_matrices(realdata):
    tomos = relion.read_projection_matrix_tomograms(realdata / "relion/warptools_export/tomograms_projmatrices.star")
    assert [t.name for t in tomos] == ["Unt_083.tomostar", "Unt_050.tomostar", "Unt_076.tomostar",
                                       "Unt_088.tomostar"]
    t = tomos[0]
    assert t.matrices.shape == (37, 4, 4) and t.globals["rlnTomoFrameCount"] == "37"
    np.testing.assert_allclose(t.matrices[0, 0], [0.10915412, -0.99366254, 0.026835253, 0])
    np.testing.assert_allclose(t.matrices[0, 3], [0, 0, 0, 1])
    r = t.matrices[:, :3, :3]
    assert np.abs(r @ r.transpose(0, 2, 1) - np.eye(3)).max() < 1e-5   # pure rotations
    assert t.ctf[0].defocus_u_a == pytest.approx(33350.7) and t.pre_exposure_e_per_a2[0] == pytest.approx(92.019)


def test_missing_columns_are_parse_errors(tmp_path):
    p = tmp_path / "particles.star"
    p.write_text("data_particles\nloop_\n_rlnTomoName #1\n_rlnAngleRot #2\nTS_01 10\n")
    with pytest.raises(ParseError, match="no particle coordinates") as e:
        relion.read_particles_star(p)
    assert str(p) in str(e.value)
    q = tmp_path / "tomograms.star"
    q.write_text("data_global\nloop_\n_rlnVoltage #1\n300\n")
    with pytest.raises(ParseError, match="no column '_rlnTomoName'"):
        relion.read_tomograms_star(q)


def test_third_route_through_files(tmp_path):
    """Beads projected through exported IMOD files (.xf/.tlt) and through exported RELION 5 STARs land on
    the same raw pixels as the ground truth (within the files' printed precision, far below 0.5 px)."""
    from tomoforge.io import imod

    tilts, xf, beads, image_xy, vol_xyz, _ = _scene((927, 960), (927, 960, 301), seed=4)
    tilts = tilts + 0.37 * torch.sin(tilts)                                # not round numbers
    truth = project_points(beads, tilts, xf, (image_xy[1], image_xy[0]))
    imod.write_xf(tmp_path / "TS.xf", xf)
    imod.write_tlt(tmp_path / "TS.tlt", tilts.numpy(), decimals=3)
    pix = 2.1
    ali = relion.imod_to_relion5(xf, tilts, image_size_xy=image_xy, volume_size_xyz=vol_xyz, pixel_size_a=pix)
    rows = [relion.RelionTilt(micrograph=f"TS_{k:03d}.mrc", x_tilt_deg=float(ali.x_tilt_deg[k]),
                              y_tilt_deg=float(ali.y_tilt_deg[k]), z_rot_deg=float(ali.z_rot_deg[k]),
                              x_shift_a=float(ali.x_shift_a[k]), y_shift_a=float(ali.y_shift_a[k]))
            for k in range(len(tilts))]
    relion.write_tilt_series_star(tmp_path / "TS.star", "TS", rows)
    relion.write_tomograms_star(tmp_path / "tomograms.star", [relion.RelionTomogram(
        tomo_name="TS", tilt_series_star="TS.star", tilt_series_pixel_size_a=pix, size_xyz=vol_xyz)])
    # IMOD route
    via_imod = project_points(beads, torch.as_tensor(imod.read_tlt(tmp_path / "TS.tlt")),
                              imod.read_xf(tmp_path / "TS.xf"), (image_xy[1], image_xy[0]))
    # RELION route, using only what the STAR files say
    tomo = relion.read_tomograms_star(tmp_path / "tomograms.star")[0]
    back = relion.alignment_from_tilts(relion.read_tilt_series_star(tmp_path / tomo.tilt_series_star))
    mats = relion.relion5_projection_matrices(back, image_size_xy=image_xy, volume_size_xyz=tomo.size_xyz,
                                              pixel_size_a=tomo.tilt_series_pixel_size_a)
    via_relion = _project_relion(mats, beads, tomo.size_xyz)
    assert (via_relion - truth).norm(dim=-1).max() < 1e-9
    err_imod = (via_imod - truth).norm(dim=-1).max()
    assert err_imod < 0.05 and (via_imod - via_relion).norm(dim=-1).max() < 0.5


def test_relion_euler_matrix_is_relions_formula():
    """RELION's Euler_angles2matrix written out (euler.cpp); it maps particle to tomogram coordinates and is
    the transpose of tomoforge's matrix of the same numbers."""
    from math import cos, radians, sin

    from tomoforge.core.geometry import euler_zyz_to_matrix

    rot, tilt, psi = 37.0, 71.0, -122.0
    ca, sa = cos(radians(rot)), sin(radians(rot))
    cb, sb = cos(radians(tilt)), sin(radians(tilt))
    cg, sg = cos(radians(psi)), sin(radians(psi))
    a = torch.tensor([[cg * cb * ca - sg * sa, cg * cb * sa + sg * ca, -cg * sb],
                      [-sg * cb * ca - cg * sa, -sg * cb * sa + cg * ca, sg * sb],
                      [sb * ca, sb * sa, cb]], dtype=torch.float64)
    torch.testing.assert_close(relion.relion_matrix(rot, tilt, psi), a)
    torch.testing.assert_close(euler_zyz_to_matrix(rot, tilt, psi).T, a)
    back = relion.relion_angles_from_matrix(a)
    torch.testing.assert_close(relion.relion_matrix(*back), a)


def test_particle_orientation_composes_subtomogram(tmp_path):
    from tomoforge.core.geometry import euler_zyz_to_matrix

    p = tmp_path / "particles.star"
    p.write_text("data_particles\nloop_\n_rlnTomoName #1\n_rlnCoordinateX #2\n_rlnCoordinateY #3\n"
                 "_rlnCoordinateZ #4\n_rlnAngleRot #5\n_rlnAngleTilt #6\n_rlnAnglePsi #7\n"
                 "_rlnTomoSubtomogramRot #8\n_rlnTomoSubtomogramTilt #9\n_rlnTomoSubtomogramPsi #10\n"
                 "TS 1 2 3 10 20 30 -50 60 70\n")
    c = relion.particles_to_coordinates(relion.read_particles_star(p), pixel_size_a=1.0)[0].particles[0]
    got = euler_zyz_to_matrix(c.rot_deg, c.tilt_deg, c.psi_deg)
    want = relion.relion_matrix(-50, 60, 70) @ relion.relion_matrix(10, 20, 30)
    torch.testing.assert_close(got, want)


def test_conversion_sign_against_relions_own_imod_import(realdata):
    """EMPIAR-10164 TS_01 aligned by IMOD (batchruntomo .xf) and by RELION 5's AlignTiltSeries (IMOD wrapper):
    separate runs, so values differ a little, but the converted shifts must follow RELION's view by view with
    the same sign and scale (a flipped convention would give a negative slope)."""
    from tomoforge.io import imod

    xf = imod.read_xf(realdata / "imod/batchruntomo_220728_TS_01/xf_file.xf")[1:]   # view 1 is excluded in RELION
    ali = relion.alignment_from_tilts(relion.read_tilt_series_star(
        realdata / P / "AlignTiltSeries/job005/tilt_series/TS_01.star"))
    ours = relion.imod_to_relion5(xf, ali.y_tilt_deg, image_size_xy=(3710, 3838), volume_size_xyz=(3710, 3838, 1000),
                                  pixel_size_a=1.35)
    for a, b in ((ours.x_shift_a, ali.x_shift_a), (ours.y_shift_a, ali.y_shift_a)):
        slope = np.polyfit(a, b, 1)[0]
        assert np.corrcoef(a, b)[0, 1] > 0.99 and 0.85 < slope < 1.1
    assert np.all(np.abs(ours.z_rot_deg - ali.z_rot_deg) < 1.0)
