"""Import through the CLI: records, overrides, gain check, and one-line errors with exit code 2."""

import json

import numpy as np
import pytest

from tomoforge.io.mrc import write_mrc

from cli_runner import run_cli
from sessions import ACQ_ANGLES, make_session


@pytest.fixture
def project(tmp_path, capsys):
    run_cli(capsys, "init", str(tmp_path / "proj"))
    return str(tmp_path / "proj")


def _records(summary):
    return {a["key"]: json.loads(open(a["path"]).read()) for a in summary["outputs"]["tilt_series"]}


def test_import_movies_with_overrides(tmp_path, project, capsys):
    make_session(tmp_path / "data", "tif", dose=2.5)
    code, out, err = run_cli(capsys, "run", "import-movies", "-p", project, "--json",
                             "--set", f"mdoc={tmp_path}/data/*.mdoc", "--set", "dose_per_tilt_e_per_a2=4",
                             "--set", "tilt_axis_deg=10.5", "--set", "voltage_kv=200")
    assert code == 0, err
    ts = _records(json.loads(out))["TS_07"]
    assert ts["acquisition"]["tilt_axis_deg"] == 10.5 and ts["acquisition"]["voltage_kv"] == 200
    assert ts["acquisition"]["pixel_size_a"] == pytest.approx(1.5)  # from the mdoc
    by_order = sorted(ts["images"], key=lambda im: im["acquisition_order"])
    assert [round(im["tilt_angle_deg"]) for im in by_order] == [round(a) for a in ACQ_ANGLES]
    assert [im["accumulated_dose_e_per_a2"] for im in by_order] == pytest.approx([4.0 * (i + 1) for i in range(7)])
    # the same command again reuses the finished job
    code2, out2, _ = run_cli(capsys, "run", "import-movies", "-p", project, "--json",
                             "--set", f"mdoc={tmp_path}/data/*.mdoc", "--set", "dose_per_tilt_e_per_a2=4",
                             "--set", "tilt_axis_deg=10.5", "--set", "voltage_kv=200")
    assert json.loads(out2)["id"] == json.loads(out)["id"]


def test_gain_in_wrong_orientation_is_reported(tmp_path, project, capsys):
    rng = np.random.default_rng(1)
    make_session(tmp_path / "data", "mrc", shape=(3, 24, 32))
    gain = rng.uniform(0.5, 1.5, size=(24, 32)).astype(np.float32)
    # rewrite the movies as signal / gain, then store the gain flipped: the check must notice
    from tomoforge.io.mrc import read_mrc

    for movie in (tmp_path / "data" / "frames").glob("*.mrc"):
        frames, px = read_mrc(movie)
        write_mrc(movie, (rng.poisson(200.0, size=frames.shape) / gain).astype(np.float32), px)
    write_mrc(tmp_path / "gain.mrc", gain[:, ::-1].copy(), 1.5)
    code, out, err = run_cli(capsys, "run", "import-movies", "-p", project, "--json",
                             "--set", f"mdoc={tmp_path}/data/*.mdoc", "--set", f"gain={tmp_path}/gain.mrc")
    assert code == 0, err
    ts = _records(json.loads(out))["TS_07"]
    assert any("flip=True" in n for n in ts["notes"]), ts["notes"]


def _bad_cases(tmp_path):
    d = tmp_path / "data"
    make_session(d, "tif", dose=2.5)
    missing = next((d / "frames").glob("*.tif"))

    def missing_frame():
        missing.unlink()
        return ["run", "import-movies", "--set", f"mdoc={d}/*.mdoc"], missing.name

    def zero_dose():
        make_session(tmp_path / "z", "tif", dose=0.0)
        return ["run", "import-movies", "--set", f"mdoc={tmp_path}/z/*.mdoc"], "ExposureDose"

    def stack_mismatch():
        s = tmp_path / "s"
        s.mkdir()
        write_mrc(s / "TS_07.mrc", np.zeros((5, 24, 32), np.float32), 1.5)
        (s / "TS_07.mrc.mdoc").write_bytes((d / "TS_07.mdoc").read_bytes())
        return ["run", "import-tilt-series", "--set", f"mdoc={s}/*.mdoc"], "TS_07.mrc"

    def truncated_mrc():
        t = tmp_path / "t"
        make_session(t, "mrc", dose=2.5)
        movie = next((t / "frames").glob("*.mrc"))
        movie.write_bytes(movie.read_bytes()[:1500])
        return ["run", "import-movies", "--set", f"mdoc={t}/*.mdoc"], "truncated"

    def zero_pixel():
        return ["run", "import-movies", "--set", f"mdoc={d}/*.mdoc", "--set", "pixel_size_a=0"], "pixel_size_a"

    def unknown_param():
        return ["run", "import-movies", "--set", "pixel_size=1"], "unknown parameter"

    def unknown_step():
        return ["run", "motion-correction-please"], "unknown step"

    return {f.__name__: f for f in (missing_frame, zero_dose, stack_mismatch, truncated_mrc, zero_pixel,
                                    unknown_param, unknown_step)}


@pytest.mark.parametrize("case", ["missing_frame", "zero_dose", "stack_mismatch", "truncated_mrc", "zero_pixel",
                                  "unknown_param", "unknown_step"])
def test_bad_input_is_one_line_exit_2(tmp_path, project, capsys, case):
    args, needle = _bad_cases(tmp_path)[case]()
    code, out, err = run_cli(capsys, *args[:2], "-p", project, *args[2:])
    assert code == 2, (out, err)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    assert needle in err and "Traceback" not in err
