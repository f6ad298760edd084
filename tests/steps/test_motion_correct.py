"""motion-correct on the simulator's tiny case: drift against the truth, outputs, STAR files, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from tomoforge.errors import InputError, ParamError, ParseError
from tomoforge.io.mrc import read_mrc, read_section, write_mrc
from tomoforge.io.relion import read_motion_star
from tomoforge.io.sim_session import session_path
from tomoforge.io.star import read_star
from tomoforge.steps.motion_correct import MotionCorrect

from preprocess_project import SimProject


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    return SimProject(tmp_path_factory.mktemp("mc"), seed=0)


def test_shifts_match_truth_and_outputs_keep_bookkeeping(sim):
    job = sim.run(MotionCorrect, {"split_even_odd": True}, sim.imported.id)
    assert job.status == "done"
    before = sim.records(sim.imported.id)["TS_01"]
    after = sim.records(job.id)["TS_01"]
    angles = [im.tilt_angle_deg for im in after.images]
    assert angles == sorted(angles)
    assert [(im.acquisition_order, im.dose_e_per_a2, im.accumulated_dose_e_per_a2) for im in after.images] == \
        [(im.acquisition_order, im.dose_e_per_a2, im.accumulated_dose_e_per_a2) for im in before.images]
    assert [im.image.index for im in after.images] == list(range(len(angles)))
    assert after.image_shape_yx == (128, 128)

    (shifts,) = sim.raw(job.id, "shifts")
    truth = sim.truth.series("TS_01")
    errs = []
    for view, est in zip(truth.views, shifts["shifts_xy_px"], strict=True):  # both in acquisition order
        t = np.array([[f.shift_x_px, f.shift_y_px] for f in view.frames])
        e = np.array(est) - np.array(est).mean(0) - (t - t.mean(0))
        errs.append(np.sqrt((e ** 2).sum(-1).mean()))
    assert np.sqrt(np.mean(np.square(errs))) <= 0.3, errs

    # RELION per-micrograph motion STAR: frame 1 at zero, shifts as in the table
    star = read_star(shifts["star_paths"][3])
    loop = star.block("global_shift")
    assert list(loop.ints("rlnMicrographFrameNumber")) == [1, 2, 3, 4]
    xs = loop.floats("rlnMicrographShiftX")
    assert xs[0] == 0 and np.allclose(xs, np.array(shifts["shifts_xy_px"][3])[:, 0] - shifts["shifts_xy_px"][3][0][0],
                                      atol=1e-6)
    assert star.block("general").int_value("rlnImageSizeZ") == 4
    motion = read_motion_star(shifts["star_paths"][3])  # the RELION reader of io/relion.py agrees
    assert motion.shift_xy_px.shape == (4, 2) and np.allclose(motion.shift_xy_px[:, 0], xs)

    # even/odd halves: separate tilt series; together they make the sum
    even, odd = sim.records(job.id, "even")["TS_01"], sim.records(job.id, "odd")["TS_01"]
    im_e, im_o, im_t = even.images[5].image, odd.images[5].image, after.images[5].image
    total = read_section(im_t.path, im_t.index)
    both = read_section(im_e.path, im_e.index) + read_section(im_o.path, im_o.index)
    assert np.allclose(both, total, atol=1e-3 * np.abs(total).max())
    assert after.images[5].even == im_e and after.images[5].odd == im_o

    # the corrected sum correlates with the noise-free truth better than the plain sum
    clean, _ = read_mrc(session_path(sim.truth_path, truth.noise_free_stack))
    from tomoforge.io.movie import read_gain_reference, read_movie
    gain = read_gain_reference(session_path(sim.truth_path, sim.truth.gain_reference))
    gains = []
    for k, view in enumerate(truth.views):
        if view.dark:
            continue
        plain = (read_movie(session_path(sim.truth_path, view.movie)) * gain).sum(0)
        im = next(i for i in after.images if i.acquisition_order == view.acquisition_order)
        corr = read_section(im.image.path, im.image.index)
        c = clean[k][8:-8, 8:-8].ravel()
        gains.append(np.corrcoef(corr[8:-8, 8:-8].ravel(), c)[0, 1] - np.corrcoef(plain[8:-8, 8:-8].ravel(), c)[0, 1])
    assert np.mean(gains) > 0.0 and np.min(gains) > -0.01, gains


def test_binning_and_frame_range(sim):
    job = sim.run(MotionCorrect, {"bin_factor": 2, "first_frame": 1, "last_frame": 3}, sim.imported.id)
    ts = sim.records(job.id)["TS_01"]
    assert ts.image_shape_yx == (64, 64)
    assert ts.acquisition.pixel_size_a == pytest.approx(2 * sim.records(sim.imported.id)["TS_01"].acquisition.pixel_size_a)
    (shifts,) = sim.raw(job.id, "shifts")
    assert shifts["frames_aligned"] == [1, 2, 3] and shifts["frames_summed"] == [1, 2, 3]


def test_patch_model_and_dose_weighting(sim):
    job = sim.run(MotionCorrect, {"patches_x": 2, "patches_y": 2, "dose_weighting": True}, sim.imported.id)
    ts = sim.records(job.id)["TS_01"]
    assert ts.dose_filtered  # dose-weighted sums are dose filtered
    assert job.metrics["mean_patch_fit_rms_px"] < 0.5
    with pytest.raises(ParamError, match="patches_x and patches_y"):
        sim.run(MotionCorrect, {"patches_x": 2}, sim.imported.id)


def test_frame_range_past_the_end_is_refused_before_any_job(sim):
    n_jobs = len(sim.project.jobs())
    with pytest.raises(InputError, match="frame range 0..9 does not fit a movie of 4 frames"):
        sim.run(MotionCorrect, {"last_frame": 9}, sim.imported.id)
    with pytest.raises(InputError, match="frame range 2..1"):
        sim.run(MotionCorrect, {"first_frame": 2, "last_frame": 1}, sim.imported.id)
    assert len(sim.project.jobs()) == n_jobs  # refused in planning: no job, nothing registered


def test_wrong_gain_and_unequal_frames_are_refused(tmp_path):
    import tifffile

    from tomoforge.project.runner import resolve_inputs, run_step
    from tomoforge.project.store import Project
    from tomoforge.steps.import_steps import ImportMovies

    from sessions import make_session

    make_session(tmp_path / "data", "tif", shape=(3, 40, 48))
    write_mrc(tmp_path / "gain.mrc", np.ones((48, 40), np.float32), 1.5)  # transposed
    proj = Project.create(tmp_path / "p")
    imp = run_step(proj, ImportMovies, {"mdoc": f"{tmp_path}/data/*.mdoc", "gain": str(tmp_path / "gain.mrc"),
                                        "check_gain": False})
    n_jobs = len(proj.jobs())
    with pytest.raises(InputError, match="gain_rotation=1 or 3"):
        run_step(proj, MotionCorrect, {}, resolve_inputs(proj, MotionCorrect, [str(imp.id)]))
    assert len(proj.jobs()) == n_jobs

    imp2 = run_step(proj, ImportMovies, {"mdoc": f"{tmp_path}/data/*.mdoc"})
    movie = sorted((tmp_path / "data" / "frames").glob("*.tif"))[2]
    with tifffile.TiffWriter(movie) as tw:  # frames of unequal shape within one movie
        tw.write(np.zeros((40, 48), np.uint8))
        tw.write(np.zeros((40, 40), np.uint8))
    n_jobs = len(proj.jobs())
    with pytest.raises(ParseError, match=movie.name):
        run_step(proj, MotionCorrect, {}, resolve_inputs(proj, MotionCorrect, [str(imp2.id)]))
    assert len(proj.jobs()) == n_jobs


def test_stack_only_tilt_series_pass_through(tmp_path):
    """The default preset runs motion correction only for movies: a stack import goes through unchanged."""
    import numpy as np

    from tomoforge.io.mrc import write_mrc
    from tomoforge.model import TiltSeries
    from tomoforge.project.runner import resolve_inputs, run_step
    from tomoforge.project.store import Project
    from tomoforge.steps.import_steps import ImportTiltSeries
    from tomoforge.steps.motion_correct import MotionCorrect

    write_mrc(tmp_path / "TS_05.st", np.ones((3, 16, 16), np.float32), 2.0)
    (tmp_path / "TS_05.rawtlt").write_text("-10\n0\n10\n")
    proj = Project.create(tmp_path / "p")
    imp = run_step(proj, ImportTiltSeries, {"stack": str(tmp_path / "TS_05.st"), "dose_per_tilt_e_per_a2": 2})
    mc = run_step(proj, MotionCorrect, {}, resolve_inputs(proj, MotionCorrect, [str(imp.id)]))
    (out,) = proj.artifacts(mc.id, "tilt_series")
    (src,) = proj.artifacts(imp.id, "tilt_series")
    assert TiltSeries.model_validate_json(proj.resolve(out.uri).read_text()) == \
        TiltSeries.model_validate_json(proj.resolve(src.uri).read_text())
    assert proj.artifacts(mc.id, "shifts") == []
