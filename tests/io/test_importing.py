"""Importing tilt series: mdoc (movies or stack), filename pattern, stack + rawtlt; and every bad-input case."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from tomoforge.errors import InputError, ParamError, ParseError, TomoforgeError
from tomoforge.io.importing import (
    accumulate_dose,
    expand_mdoc_glob,
    pattern_regex,
    resolve_frame_path,
    tilt_series_from_mdoc,
    tilt_series_from_pattern,
    tilt_series_from_stack,
    ts_id_from_mdoc,
)
from tomoforge.io.mrc import write_mrc
from tomoforge.io.tiff import write_tiff_movie
from tomoforge.model import Acquisition

from sessions import ACQ_ANGLES, make_session  # noqa: E402


def _by_angle(ts):
    return {round(im.tilt_angle_deg): im for im in ts.images}


@pytest.mark.parametrize("fmt", ["tif", "mrc"])
def test_movies_from_rearranged_mdoc(tmp_path, fmt):
    mdoc = make_session(tmp_path, fmt)
    ts = tilt_series_from_mdoc(mdoc)
    assert ts.ts_id == "TS_07" and ts.n_views == 7 and ts.image_shape_yx == (24, 32)
    assert [round(im.tilt_angle_deg) for im in ts.images] == [-30, -20, -10, 0, 10, 20, 30]
    views = _by_angle(ts)
    for rank, angle in enumerate(ACQ_ANGLES):
        im = views[round(angle)]
        assert im.acquisition_order == rank
        assert im.dose_e_per_a2 == pytest.approx(2.5)
        assert im.accumulated_dose_e_per_a2 == pytest.approx(2.5 * (rank + 1))
        assert Path(im.movie.path).name == f"TS_07_{rank:03d}_{angle:.1f}.{fmt}" and im.movie.n_frames == 3
        assert im.image is None and im.target_defocus_um == pytest.approx(3.5)
    a = ts.acquisition
    assert a.pixel_size_a == pytest.approx(1.5) and a.voltage_kv == 300 and a.tilt_axis_deg == pytest.approx(-85.0)
    assert a.magnification == 81000 and a.dose_per_tilt_e_per_a2 == pytest.approx(2.5)
    assert [im.acquisition_order for im in ts.in_acquisition_order()] == list(range(7))


def test_overrides_win(tmp_path):
    mdoc = make_session(tmp_path)
    over = {"voltage_kv": 200, "cs_mm": 0.01, "amplitude_contrast": 0.07, "magnification": 64000,
            "pixel_size_a": 0.9, "tilt_axis_deg": 84.1, "dose_per_tilt_e_per_a2": 3.0, "initial_dose_e_per_a2": 1.0}
    ts = tilt_series_from_mdoc(mdoc, overrides=over)
    for key, value in over.items():
        assert getattr(ts.acquisition, key) == pytest.approx(value), key
    views = _by_angle(ts)
    for rank, angle in enumerate(ACQ_ANGLES):
        assert views[round(angle)].accumulated_dose_e_per_a2 == pytest.approx(1.0 + 3.0 * (rank + 1))
    with pytest.raises(ParamError, match="unknown acquisition value"):
        tilt_series_from_mdoc(mdoc, overrides={"voltage": 300})


def test_pixel_size_of_a_binned_stack_is_scaled_to_the_movies(tmp_path):
    # SerialEM's PixelSpacing describes its (binned) stack: 8 px wide at 6 A means 1.5 A for 32-px frames
    mdoc = make_session(tmp_path, pixel=6.0, image_size=(8, 6))
    ts = tilt_series_from_mdoc(mdoc)
    assert ts.acquisition.pixel_size_a == pytest.approx(1.5)
    assert any("32 px wide" in n for n in ts.notes)
    assert tilt_series_from_mdoc(mdoc, overrides={"pixel_size_a": 1.4}).acquisition.pixel_size_a == 1.4


def test_crlf_and_lf_give_the_same_result(tmp_path):
    a = tilt_series_from_mdoc(make_session(tmp_path / "a", crlf=True))
    b = tilt_series_from_mdoc(make_session(tmp_path / "b", crlf=False))
    assert b"\r\n" in (tmp_path / "a" / "TS_07.mdoc").read_bytes()
    assert b"\r" not in (tmp_path / "b" / "TS_07.mdoc").read_bytes()
    strip = [(im.tilt_angle_deg, im.acquisition_order, im.accumulated_dose_e_per_a2) for im in a.images]
    assert strip == [(im.tilt_angle_deg, im.acquisition_order, im.accumulated_dose_e_per_a2) for im in b.images]


def test_missing_datetime_falls_back_to_zvalue(tmp_path):
    mdoc = make_session(tmp_path, with_dates=False, rearranged=False)
    with pytest.warns(UserWarning, match="DateTime missing"):
        ts = tilt_series_from_mdoc(mdoc)
    assert any("ZValue" in n for n in ts.notes)
    views = _by_angle(ts)
    assert [views[round(a)].acquisition_order for a in ACQ_ANGLES] == list(range(7))


def test_frame_folders(tmp_path):
    # frames/ beside the mdoc (default of make_session), the mdoc's own folder, and an explicit frames_dir
    assert tilt_series_from_mdoc(make_session(tmp_path / "a")).n_views == 7
    assert tilt_series_from_mdoc(make_session(tmp_path / "b", frames_sub="")).n_views == 7
    mdoc = make_session(tmp_path / "c")
    shutil.move(tmp_path / "c" / "frames", tmp_path / "elsewhere")
    ts = tilt_series_from_mdoc(mdoc, frames_dir=tmp_path / "elsewhere")
    assert all(Path(im.movie.path).parent == tmp_path / "elsewhere" for im in ts.images)
    assert resolve_frame_path(r"D:\x\y\nothere.tif", tmp_path) is None


def test_stack_mdoc_with_absent_movies(tmp_path):
    mdoc = make_session(tmp_path, frames_sub="frames")
    shutil.rmtree(tmp_path / "frames")
    stack = write_mrc(tmp_path / "TS_07.mrc", np.zeros((7, 24, 32), np.float32), 1.5)
    named = mdoc.rename(tmp_path / "TS_07.mrc.mdoc")
    ts = tilt_series_from_mdoc(named)
    assert ts.ts_id == "TS_07" and any("7 of 7 movies not found" in n for n in ts.notes)
    views = _by_angle(ts)
    for z, angle in enumerate(sorted(ACQ_ANGLES)):  # rearranged stack: ZValue = angle order
        im = views[round(angle)]
        assert im.image.path == str(stack) and im.image.index == z and im.movie is None
        assert im.acquisition_order == ACQ_ANGLES.index(angle)
    # the same mdoc imported as movies needs the movies
    with pytest.raises(InputError, match="not found"):
        tilt_series_from_mdoc(named, kind="movies")
    # explicit stack path and kind="stack" through tilt_series_from_stack
    ts2 = tilt_series_from_stack(stack, mdoc_path=named)
    assert [im.image.index for im in ts2.images] == list(range(7))


def test_real_ts01_mdoc_with_a_stack(realdata, tmp_path):
    src = realdata / "mdoc" / "serialem_EMPIAR-10164_TS_01.mrc.mdoc"
    mdoc = tmp_path / "TS_01.mrc.mdoc"
    shutil.copy(src, mdoc)
    write_mrc(tmp_path / "TS_01.mrc", np.zeros((41, 8, 8), np.int16), 5.4, dtype=np.int16)
    with pytest.raises(InputError) as err:
        tilt_series_from_mdoc(mdoc)
    msg = str(err.value)
    assert "TS_01.mrc.mdoc" in msg and "ExposureDose" in msg and "dose_per_tilt_e_per_a2" in msg and "\n" not in msg
    ts = tilt_series_from_mdoc(mdoc, overrides={"dose_per_tilt_e_per_a2": 3.0})
    assert ts.ts_id == "TS_01" and ts.n_views == 41
    assert ts.acquisition.pixel_size_a == pytest.approx(5.4) and ts.acquisition.tilt_axis_deg == pytest.approx(85.3)
    assert [round(im.tilt_angle_deg) for im in ts.images] == list(range(-60, 61, 3))
    order = [round(im.tilt_angle_deg) for im in ts.in_acquisition_order()]
    # dose-symmetric, group of two: 0, +3, -3, -6, +6, +9, -9, ...
    assert order[:9] == [0, 3, -3, -6, 6, 9, -9, -12, 12]
    assert max(abs(a) for a in order[:21]) == 30
    for im in ts.images:
        assert im.accumulated_dose_e_per_a2 == pytest.approx(3.0 * (im.acquisition_order + 1))
    assert any("41 of 41 movies not found" in n for n in ts.notes)


def test_bad_inputs_one_line_naming_the_file(tmp_path):
    def check(err: TomoforgeError, name: str):
        assert name in str(err) and "\n" not in str(err)

    # missing frame file
    mdoc = make_session(tmp_path / "a")
    (tmp_path / "a" / "frames" / "TS_07_003_-20.0.tif").unlink()
    with pytest.raises(InputError) as e:
        tilt_series_from_mdoc(mdoc)
    check(e.value, "TS_07_003_-20.0.tif")
    check(e.value, "TS_07.mdoc")
    # section count does not match the stack
    mdoc = make_session(tmp_path / "b")
    stack = write_mrc(tmp_path / "b" / "TS_07.mrc", np.zeros((6, 24, 32), np.float32), 1.5)
    with pytest.raises(InputError, match="7 \\[ZValue\\] sections but stack .* has 6") as e:
        tilt_series_from_mdoc(mdoc, stack_path=stack)
    check(e.value, "TS_07.mdoc")
    # zero dose without override
    mdoc = make_session(tmp_path / "c", dose=0.0)
    with pytest.raises(InputError, match="ExposureDose") as e:
        tilt_series_from_mdoc(mdoc)
    check(e.value, "TS_07.mdoc")
    assert tilt_series_from_mdoc(mdoc, overrides={"dose_per_tilt_e_per_a2": 2.0}).n_views == 7
    # pixel size 0 in the mdoc, and 0 given by the user
    mdoc = make_session(tmp_path / "d", pixel=0.0, fmt="mrcs")
    with pytest.raises(InputError, match="pixel size is 0 and no pixel_size_a") as e:
        tilt_series_from_mdoc(mdoc)
    check(e.value, "TS_07.mdoc")
    with pytest.raises(ParamError, match="pixel_size_a"):
        tilt_series_from_mdoc(make_session(tmp_path / "e"), overrides={"pixel_size_a": 0})
    # truncated MRC movie and truncated stack
    mdoc = make_session(tmp_path / "f", fmt="mrc")
    movie = tmp_path / "f" / "frames" / "TS_07_002_-10.0.mrc"
    movie.write_bytes(movie.read_bytes()[:-50])
    with pytest.raises(ParseError, match="truncated") as e:
        tilt_series_from_mdoc(mdoc)
    check(e.value, "TS_07_002_-10.0.mrc")
    stack = write_mrc(tmp_path / "g.st", np.zeros((7, 24, 32), np.float32), 1.5)
    stack.write_bytes(stack.read_bytes()[:3000])
    (tmp_path / "g.rawtlt").write_text("\n".join(str(a) for a in ACQ_ANGLES))
    with pytest.raises(ParseError, match="truncated") as e:
        tilt_series_from_stack(stack, Acquisition(dose_per_tilt_e_per_a2=2.0))
    check(e.value, "g.st")


def test_montage_and_frameset_mdocs_are_refused(realdata):
    with pytest.raises(InputError, match="montage"):
        tilt_series_from_mdoc(realdata / "mdoc" / "serialem_montage_section.mdoc")
    with pytest.raises(InputError, match="no \\[ZValue"):
        tilt_series_from_mdoc(realdata / "mdoc" / "serialem_frameset_single.mdoc")


def test_tomo5_mdoc_with_eer_movies(realdata, tmp_path):
    from tomoforge.io.eer import write_eer

    mdoc = tmp_path / "Position_12.mdoc"
    shutil.copy(realdata / "mdoc" / "tomo5_Position_12_CryoBoost.mdoc", mdoc)
    (tmp_path / "frames").mkdir()
    rng = np.random.default_rng(2)
    for line in mdoc.read_text().splitlines():
        if line.startswith("SubFramePath"):
            name = line.split("=", 1)[1].strip().split("/")[-1]
            write_eer(tmp_path / "frames" / name, (rng.random((20, 16, 16)) < 0.05).astype(np.uint8))
    ts = tilt_series_from_mdoc(mdoc, overrides={"pixel_size_a": 2.95})
    assert ts.ts_id == "Position_12" and ts.n_views == 6
    assert ts.acquisition.tilt_axis_deg == pytest.approx(-174.23)
    views = _by_angle(ts)
    assert views[10].acquisition_order == 0 and views[19].acquisition_order == 5
    assert views[4].accumulated_dose_e_per_a2 == pytest.approx(2.07 + 2.07 + 2.07 + 2.06)
    assert views[4].movie.n_frames == 20 and ts.acquisition.frames_per_movie == 20  # not NumSubFrames = 1


def test_pattern_import(tmp_path):
    rng = np.random.default_rng(4)
    for ts in ("TS_01", "TS_02"):
        for order, angle in enumerate(ACQ_ANGLES, start=1):
            write_tiff_movie(tmp_path / f"{ts}_{order:03d}_{angle:.1f}.tif", rng.poisson(2, (2, 8, 10)).astype(np.uint8))
    (tmp_path / "notes.txt").write_text("ignored")
    acq = Acquisition(pixel_size_a=0.675, tilt_axis_deg=85.3, dose_per_tilt_e_per_a2=3.0, voltage_kv=300)
    series = tilt_series_from_pattern(tmp_path, "{TS}_{TO}_{TA}.tif", acq)
    assert [s.ts_id for s in series] == ["TS_01", "TS_02"]
    for s in series:
        views = _by_angle(s)
        for rank, angle in enumerate(ACQ_ANGLES):
            assert views[round(angle)].acquisition_order == rank
            assert views[round(angle)].accumulated_dose_e_per_a2 == pytest.approx(3.0 * (rank + 1))
        assert s.image_shape_yx == (8, 10) and s.acquisition.pixel_size_a == 0.675
    m = pattern_regex("{TS}-{TO}-{TA}.mrc").match("TS_01-002--3.0.mrc")
    assert m["TS"] == "TS_01" and m["TO"] == "002" and float(m["TA"]) == -3.0
    with pytest.raises(InputError, match="no file matches"):
        tilt_series_from_pattern(tmp_path, "{TS}-{TO}-{TA}.mrc", acq)
    with pytest.raises(ParamError, match="TA"):
        pattern_regex("{TS}_{TO}.mrc")


def test_stack_with_rawtlt(tmp_path):
    stack = write_mrc(tmp_path / "BBa.st", np.zeros((5, 8, 8), np.float32), 2.2)
    (tmp_path / "BBa.rawtlt").write_text("  -60.00\n  -30.00\n    0.00\n   30.00\n   60.00\n\n")
    ts = tilt_series_from_stack(stack, Acquisition(dose_per_tilt_e_per_a2=2.0))
    assert ts.ts_id == "BBa" and ts.acquisition.pixel_size_a == pytest.approx(2.2)
    assert [im.tilt_angle_deg for im in ts.images] == [-60, -30, 0, 30, 60]
    assert [im.image.index for im in ts.images] == list(range(5))
    ts = tilt_series_from_stack(stack, Acquisition(dose_per_tilt_e_per_a2=2.0),
                                acquisition_order=[4, 2, 0, 1, 3])
    assert [im.accumulated_dose_e_per_a2 for im in ts.images] == pytest.approx([10, 6, 2, 4, 8])
    (tmp_path / "BBa.rawtlt").write_text("-60\n-30\n0\n30\n")
    with pytest.raises(InputError, match="4 tilt angles but stack"):
        tilt_series_from_stack(stack, Acquisition(dose_per_tilt_e_per_a2=2.0))
    zero = write_mrc(tmp_path / "zero.st", np.zeros((4, 8, 8), np.float32), 0.0)
    with pytest.raises(InputError, match="zero.st.*pixel size 0"):
        tilt_series_from_stack(zero, Acquisition(dose_per_tilt_e_per_a2=2.0), tilt_file=tmp_path / "BBa.rawtlt")


def test_real_rawtlt(realdata, tmp_path):
    rawtlt = realdata / "imod" / "IMOD_tutorial_BB_finalFiles" / "BBa.rawtlt"
    stack = write_mrc(tmp_path / "BBa.st", np.zeros((61, 4, 4), np.float32), 1.0)
    ts = tilt_series_from_stack(stack, Acquisition(dose_per_tilt_e_per_a2=1.0), tilt_file=rawtlt)
    assert ts.images[0].tilt_angle_deg == -55 and ts.images[-1].tilt_angle_deg == 65
    assert ts.images[-1].acquisition_order == 0  # first line of the file, stack order


def test_helpers():
    assert ts_id_from_mdoc("a/TS_01.mrc.mdoc") == "TS_01"
    assert ts_id_from_mdoc("Position_12.mdoc") == "Position_12"
    assert ts_id_from_mdoc("TS_3.st.mdoc") == "TS_3"
    assert accumulate_dose([1, 2, 3], [2, 0, 1], 0.5) == pytest.approx([6.5, 2.5, 5.5])


def test_gain_check_on_movie_files(tmp_path):
    import torch

    from tomoforge.core.gain import invert_gain_orientation

    g = torch.Generator().manual_seed(7)
    gain = 1 + 0.1 * torch.randn(40, 56, generator=g)
    movies = []
    for i in range(3):
        signal = torch.full((4, 40, 56), 20.0)
        raw = torch.poisson(signal / gain, generator=g)  # simulator convention: raw = signal / gain
        movies.append(write_tiff_movie(tmp_path / f"m{i}.tif", raw.numpy(), dtype=np.uint16))
    from tomoforge.io.importing import check_gain_orientation

    write_mrc(tmp_path / "gain_ok.mrc", gain.numpy(), 1.0)
    ok = check_gain_orientation(tmp_path / "gain_ok.mrc", movies)
    assert ok.better is None and ok.message is None and (ok.scores[0][0], ok.scores[0][1]) == (0, False)
    write_mrc(tmp_path / "gain_flip.mrc", invert_gain_orientation(gain, 2, True).numpy(), 1.0)
    bad = check_gain_orientation(tmp_path / "gain_flip.mrc", movies)
    assert bad.better is not None and (bad.better[0], bad.better[1]) == (2, True)
    assert "gain_flip.mrc" in bad.message and "gain_rotation=2 gain_flip=True (rotate 180°" in bad.message
    assert check_gain_orientation(tmp_path / "gain_flip.mrc", movies, rotation=2, flip=True).message is None
    # stored with h and w swapped: the chosen orientation cannot even be applied
    write_mrc(tmp_path / "gain_rot.mrc", invert_gain_orientation(gain, 1, True).numpy(), 1.0)
    with pytest.raises(InputError, match="gain_rot.mrc.*56x40 .* best fit: gain_rotation=1 gain_flip=True"):
        check_gain_orientation(tmp_path / "gain_rot.mrc", movies)
    assert check_gain_orientation(tmp_path / "gain_rot.mrc", movies, rotation=1, flip=True).message is None
    write_mrc(tmp_path / "gain_small.mrc", np.ones((30, 30), np.float32), 1.0)
    with pytest.raises(InputError, match="gain_small.mrc"):
        check_gain_orientation(tmp_path / "gain_small.mrc", movies)


def test_expand_mdoc_glob(tmp_path):
    make_session(tmp_path / "s", ts="TS_01")
    make_session(tmp_path / "s", ts="TS_02")
    paths = expand_mdoc_glob(tmp_path / "s" / "*.mdoc")
    assert [p.name for p in paths] == ["TS_01.mdoc", "TS_02.mdoc"]
    (tmp_path / "s" / "TS_01.mrc.mdoc").write_bytes((tmp_path / "s" / "TS_01.mdoc").read_bytes())
    with pytest.raises(InputError, match="same tilt-series id 'TS_01'"):
        expand_mdoc_glob(tmp_path / "s" / "*.mdoc")
    with pytest.raises(InputError, match="no mdoc file matches"):
        expand_mdoc_glob(tmp_path / "none" / "*.mdoc")
