"""Import steps for IMOD, RELION 5, AreTomo and Warp results: round trips through the exports and refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tomoforge.errors import InputError, ParseError
from tomoforge.interop.export_imod import export_imod
from tomoforge.interop.export_relion import export_relion
from tomoforge.interop.views import rigid_part, transforms
from tomoforge.io.aretomo import aln_from_alignment, write_aln
from tomoforge.model import TiltSeries
from tomoforge.project.runner import run_step
from tomoforge.steps.import_external import (
    EXTERNAL_IMPORT_STEPS,
    ImportAretomo,
    ImportImod,
    ImportRelion,
    ImportWarp,
)

from interop_project import EXCLUDED_ORDER, build_tiny_project


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return build_tiny_project(tmp_path_factory.mktemp("import_external"))


def _record(project, job_id) -> TiltSeries:
    (art,) = project.artifacts(job_id, "tilt_series")
    return TiltSeries.model_validate(json.loads(project.resolve(art.uri).read_text()))


def _run(tiny, step, params):
    """Run an import step on the plain imported tilt series (no alignment, no CTF)."""
    job = run_step(tiny.project, step, params, {"tilt_series": [(tiny.import_job, "tilt_series")]})
    assert job.status == "done"
    return _record(tiny.project, job.id)


def test_registry_list():
    assert [c.name for c in EXTERNAL_IMPORT_STEPS] == ["import-imod", "import-relion", "import-aretomo", "import-warp"]


def test_imod_round_trip(tiny, tmp_path):
    ref = _record(tiny.project, tiny.truth_job)
    export_imod(tiny.project, tmp_path, job=tiny.truth_job)
    got = _run(tiny, ImportImod, {"dir": str(tmp_path)})
    assert [im.acquisition_order for im in got.images] == [im.acquisition_order for im in ref.images]
    assert (transforms(got)[..., :2] - transforms(ref)[..., :2]).abs().max() < 1e-7
    assert (transforms(got)[..., 2] - transforms(ref)[..., 2]).abs().max() < 6e-4
    np.testing.assert_allclose([im.tilt_angle_deg for im in got.images], [im.tilt_angle_deg for im in ref.images],
                               atol=5e-4)
    np.testing.assert_allclose([im.ctf.defocus_u_a for im in got.images], [im.ctf.defocus_u_a for im in ref.images],
                               atol=0.51)
    np.testing.assert_allclose([im.ctf.astigmatism_angle_deg for im in got.images],
                               [im.ctf.astigmatism_angle_deg for im in ref.images], atol=0.006)
    assert [im.excluded for im in got.images] == [im.excluded for im in ref.images]
    assert any(im.excluded for im in got.images)
    assert abs(got.acquisition.tilt_axis_deg - tiny.truth.acquisition.tilt_axis_deg) < 0.5


def test_imod_stack_in_another_order_matches_by_rawtlt(tiny, tmp_path):
    """An IMOD stack in acquisition order: views are matched through the .rawtlt angles."""
    ref = _record(tiny.project, tiny.truth_job)
    (folder,) = export_imod(tiny.project, tmp_path, job=tiny.truth_job)
    order = np.argsort([im.acquisition_order for im in ref.images])
    from tomoforge.io.imod import read_tilt_angles, read_xf, write_tilt_angles, write_xf

    write_xf(folder / "TS_01.xf", read_xf(folder / "TS_01.xf")[order])
    for ext in ("tlt", "rawtlt"):
        write_tilt_angles(folder / f"TS_01.{ext}", read_tilt_angles(folder / f"TS_01.{ext}")[order], decimals=3)
    (folder / "TS_01.defocus").unlink()
    (folder / "tilt.com").unlink()
    got = _run(tiny, ImportImod, {"dir": str(tmp_path)})
    assert (transforms(got) - transforms(ref)).abs().max() < 6e-4


def test_relion_round_trip(tiny, tmp_path):
    ref = _record(tiny.project, tiny.truth_job)
    export_relion(tiny.project, tmp_path, job=tiny.truth_job)
    got = _run(tiny, ImportRelion, {"tomograms": str(tmp_path / "tomograms.star")})
    keep = [k for k, im in enumerate(ref.images) if not im.excluded]
    assert [k for k, im in enumerate(got.images) if im.excluded] == \
        [k for k, im in enumerate(ref.images) if im.acquisition_order == EXCLUDED_ORDER]
    # RELION 5 keeps the rotation and where the volume centre lands; the magnification is dropped
    want = rigid_part(transforms(ref))[keep]
    assert (transforms(got)[keep] - want).abs().max() < 1e-9
    np.testing.assert_allclose([got.images[k].tilt_angle_deg for k in keep],
                               [ref.images[k].tilt_angle_deg for k in keep], atol=1e-12)
    for k in keep:
        assert got.images[k].ctf == ref.images[k].ctf


def test_aretomo_dark_frame_becomes_excluded(tiny, tmp_path):
    ref = _record(tiny.project, tiny.truth_job)
    xf = rigid_part(transforms(ref))
    keep = [k for k in range(ref.n_views) if k != 3]
    aln = aln_from_alignment(xf[keep], [ref.images[k].tilt_angle_deg for k in keep],
                             raw_size_xyz=(128, 128, ref.n_views), sections=keep,
                             dark_frames=[(0, 3, ref.images[3].tilt_angle_deg)])
    write_aln(tmp_path / "TS_01.aln", aln)
    got = _run(tiny, ImportAretomo, {"dir": str(tmp_path)})
    assert got.images[3].excluded and got.images[3].transform is None
    assert (transforms(got)[keep] - xf[keep]).abs().max() < 2e-3    # .aln prints shifts to 0.001 px
    np.testing.assert_allclose([got.images[k].tilt_angle_deg for k in keep],
                               [ref.images[k].tilt_angle_deg for k in keep], atol=5e-3)


def _warp_xml(ref: TiltSeries, use_last: bool = True) -> str:
    angles = [im.nominal_tilt_angle_deg for im in ref.images]
    pre = [im.accumulated_dose_e_per_a2 - im.dose_e_per_a2 + 0.25 for im in ref.images]
    use = ["True"] * (len(angles) - 1) + ["True" if use_last else "False"]
    nodes = "".join(f'<Node X="0" Y="0" Z="{k}" Value="{im.ctf.defocus_mean_a / 1e4:.6f}" />'
                    for k, im in enumerate(ref.images))
    return (f'<TiltSeries AreAnglesInverted="False"><Angles>{chr(10).join(f"{a:.3f}" for a in angles)}</Angles>'
            f'<Dose>{chr(10).join(f"{d:.4f}" for d in pre)}</Dose><UseTilt>{chr(10).join(use)}</UseTilt>'
            '<CTF><Param Name="PixelSize" Value="8" /><Param Name="DefocusDelta" Value="0.05" />'
            '<Param Name="DefocusAngle" Value="30" /></CTF>'
            f'<GridCTF Width="1" Height="1" Depth="{len(angles)}">{nodes}</GridCTF></TiltSeries>')


def test_warp_ctf_dose_and_use_tilt(tiny, tmp_path):
    ref = _record(tiny.project, tiny.truth_job)
    (tmp_path / "TS_01.xml").write_text(_warp_xml(ref, use_last=False))
    got = _run(tiny, ImportWarp, {"dir": str(tmp_path)})
    np.testing.assert_allclose([(im.ctf.defocus_u_a + im.ctf.defocus_v_a) / 2 for im in got.images],
                               [im.ctf.defocus_mean_a for im in ref.images], atol=0.01)
    np.testing.assert_allclose([im.ctf.defocus_u_a - im.ctf.defocus_v_a for im in got.images], 500.0, atol=1e-6)
    np.testing.assert_allclose([im.accumulated_dose_e_per_a2 for im in got.images],
                               [im.accumulated_dose_e_per_a2 + 0.25 for im in ref.images], atol=1e-3)
    assert got.images[-1].excluded and not any(im.excluded for im in got.images[:-1])
    assert all(im.transform is None for im in got.images)


# ------------------------------------------------------------------------------------------- refusals


def test_xf_with_wrong_view_count_is_refused_before_a_job_exists(tiny, tmp_path):
    (folder,) = export_imod(tiny.project, tmp_path, job=tiny.truth_job)
    lines = (folder / "TS_01.xf").read_text().splitlines()
    (folder / "TS_01.xf").write_text("\n".join(lines[:-1]) + "\n")
    (folder / "TS_01.rawtlt").unlink()
    n_jobs = len(tiny.project.jobs())
    with pytest.raises(InputError) as err:
        run_step(tiny.project, ImportImod, {"dir": str(tmp_path)},
                 {"tilt_series": [(tiny.import_job, "tilt_series")]})
    msg = str(err.value)
    assert "TS_01.xf" in msg and f"{len(lines) - 1} views in the file" in msg and f"has {len(lines)}" in msg
    assert "\n" not in msg
    assert len(tiny.project.jobs()) == n_jobs


def test_xf_shorter_than_rawtlt_is_a_parse_error(tiny, tmp_path):
    (folder,) = export_imod(tiny.project, tmp_path, job=tiny.truth_job)
    lines = (folder / "TS_01.xf").read_text().splitlines()
    (folder / "TS_01.xf").write_text("\n".join(lines[:-2]) + "\n")
    with pytest.raises(ParseError, match="TS_01.xf.*19 views in the file but the stack has 21"):
        run_step(tiny.project, ImportImod, {"dir": str(tmp_path)},
                 {"tilt_series": [(tiny.import_job, "tilt_series")]})


def test_defocus_naming_more_views_than_the_stack_is_refused(tiny, tmp_path):
    (folder,) = export_imod(tiny.project, tmp_path, job=tiny.truth_job)
    text = (folder / "TS_01.defocus").read_text().rstrip("\n") + "\n22\t22\t63.00\t63.00\t3000.0\t3000.0\t0.00\n"
    (folder / "TS_01.defocus").write_text(text)
    with pytest.raises(InputError, match="names view 22 but the stack has 21"):
        run_step(tiny.project, ImportImod, {"dir": str(tmp_path)},
                 {"tilt_series": [(tiny.import_job, "tilt_series")]})


def test_rawtlt_angle_without_a_view_is_refused(tiny, tmp_path):
    (folder,) = export_imod(tiny.project, tmp_path, job=tiny.truth_job)
    from tomoforge.io.imod import read_tilt_angles, write_tilt_angles

    raw = read_tilt_angles(folder / "TS_01.rawtlt")
    raw[0] = -70.0
    write_tilt_angles(folder / "TS_01.rawtlt", raw, decimals=3)
    with pytest.raises(InputError, match=r"line 1 \(-70°\) matches no view of tilt series TS_01"):
        run_step(tiny.project, ImportImod, {"dir": str(tmp_path)},
                 {"tilt_series": [(tiny.import_job, "tilt_series")]})


def test_missing_files_and_unknown_tomogram_are_refused(tiny, tmp_path):
    with pytest.raises(InputError, match="no IMOD files for tilt series TS_01"):
        run_step(tiny.project, ImportImod, {"dir": str(tmp_path)},
                 {"tilt_series": [(tiny.import_job, "tilt_series")]})
    export_relion(tiny.project, tmp_path, job=tiny.truth_job)
    star = tmp_path / "tomograms.star"
    star.write_text(star.read_text().replace("TS_01 ", "TS_99 "))
    with pytest.raises(InputError, match="TS_01 is not in the tomograms STAR"):
        run_step(tiny.project, ImportRelion, {"tomograms": str(star)},
                 {"tilt_series": [(tiny.import_job, "tilt_series")]})


def test_relion_real_project_alignment(realdata, tmp_path):
    """RELION 5's own Tomograms job for EMPIAR-10164 TS_01 imported onto the 41 views of the real mdoc: the
    40 views RELION kept get its alignment (converting back gives RELION's columns), the other is excluded."""
    from tomoforge.core.geometry import xf_rotation_deg
    from tomoforge.io.mdoc import read_mdoc
    from tomoforge.io.relion import imod_to_relion5, read_tilt_series_star
    from tomoforge.model import Acquisition, TiltImage
    from tomoforge.project.store import Project

    from interop_project import add_job

    rel = realdata / "relion" / "relion5_EMPIAR-10164_project"
    mdoc = read_mdoc(realdata / "mdoc" / "serialem_EMPIAR-10164_TS_01.mrc.mdoc")
    ts = TiltSeries(ts_id="TS_01", acquisition=Acquisition(pixel_size_a=1.35), image_shape_yx=(3710, 3838),
                    images=[TiltImage(tilt_angle_deg=s.tilt_angle_deg, acquisition_order=k)
                            for k, s in enumerate(mdoc.z_sections)])
    project = Project.create(tmp_path / "p")
    job = add_job(project, "fake-import", [("tilt_series", "TS_01", ts)])
    run = run_step(project, ImportRelion, {"tomograms": str(rel / "Tomograms" / "job006" / "tomograms.star")},
                   {"tilt_series": [(job, "tilt_series")]})
    got = _record(project, run.id)
    rows = read_tilt_series_star(rel / "Tomograms" / "job006" / "tilt_series" / "TS_01.star")
    keep = [im for im in got.images if not im.excluded]
    assert len(keep) == len(rows) == 40 and sum(im.excluded for im in got.images) == 1
    rows = sorted(rows, key=lambda r: r.nominal_tilt_deg)
    xf = torch.tensor([im.transform.as_rows() for im in keep], dtype=torch.float64)
    np.testing.assert_allclose(xf_rotation_deg(xf).numpy(), [r.z_rot_deg for r in rows], atol=1e-9)
    np.testing.assert_allclose([im.tilt_angle_deg for im in keep], [r.y_tilt_deg for r in rows], atol=1e-12)
    back = imod_to_relion5(xf, [im.tilt_angle_deg for im in keep], image_size_xy=(3838, 3710),
                           volume_size_xyz=(4000, 4000, 2000), pixel_size_a=1.35)
    np.testing.assert_allclose(back.x_shift_a, [r.x_shift_a for r in rows], atol=1e-6)
    np.testing.assert_allclose(back.y_shift_a, [r.y_shift_a for r in rows], atol=1e-6)
    assert [im.ctf for im in keep] == [r.ctf for r in rows]
    assert abs(got.acquisition.tilt_axis_deg - 85.0) < 0.5


@pytest.mark.parametrize("name", ["aretomo_TS_121_v1.0.aln", "aretomo_local_darkframes.aln"])
def test_aretomo_real_files(realdata, tmp_path, name):
    """Real .aln files onto a tilt series with the raw stack's views: v1.0 (no RawSize) is matched by TILT and
    agrees with AreTomo's own -OutImod .xf; the v2 file with dark frames is matched by section."""
    import shutil

    from tomoforge.io.aretomo import aln_to_xf, read_aln
    from tomoforge.io.imod import read_xf
    from tomoforge.model import Acquisition, TiltImage
    from tomoforge.project.store import Project

    from interop_project import add_job

    src = realdata / "aretomo" / name
    aln = read_aln(src)
    angles = sorted([float(t) for t in aln.tilt_deg] + [t for _, _, t in aln.dark_frames])
    ts = TiltSeries(ts_id="TS_01", acquisition=Acquisition(pixel_size_a=2.0), image_shape_yx=(4096, 4096),
                    images=[TiltImage(tilt_angle_deg=a, acquisition_order=k) for k, a in enumerate(angles)])
    project = Project.create(tmp_path / "p")
    job = add_job(project, "fake-import", [("tilt_series", "TS_01", ts)])
    shutil.copyfile(src, tmp_path / "TS_01.aln")
    run = run_step(project, ImportAretomo, {"dir": str(tmp_path)}, {"tilt_series": [(job, "tilt_series")]})
    got = _record(project, run.id)
    assert sum(im.excluded for im in got.images) == len(aln.dark_frames)
    kept = [im for im in got.images if not im.excluded]
    xf = torch.tensor([im.transform.as_rows() for im in kept], dtype=torch.float64)
    order = np.argsort(aln.tilt_deg, kind="stable")
    assert (xf - aln_to_xf(aln)[order]).abs().max() < 1e-12
    np.testing.assert_allclose([im.tilt_angle_deg for im in kept], aln.tilt_deg[order])
    if "v1.0" in name:
        ref = read_xf(realdata / "aretomo" / "aretomo_TS_121_OutImod.xf")[order]
        assert (xf[..., :2] - ref[..., :2]).abs().max() < 6e-4 and (xf[..., 2] - ref[..., 2]).abs().max() < 6e-3
