"""The command line: exit codes, one-line errors, JSON output."""

import json
import subprocess
import sys

import pytest

from cli_runner import run_cli


def test_init_and_empty_jobs(tmp_path, capsys):
    code, _, err = run_cli(capsys, "init", str(tmp_path / "p"))
    assert code == 0 and "project ready" in err
    assert (tmp_path / "p" / "project.db").is_file()
    code, _, _ = run_cli(capsys, "jobs", "-p", str(tmp_path / "p"))
    assert code == 0


def test_steps_lists_parameters_with_help(capsys):
    code, _, err = run_cli(capsys, "steps", "import-movies")
    assert code == 0
    assert "dose_per_tilt_e_per_a2" in err and "Override" in err


@pytest.mark.parametrize("args, needle", [
    (["run", "no-such-step"], "unknown step 'no-such-step'"),
    (["run", "import-movies", "--set", "nonsense=1"], "unknown parameter"),
    (["run", "import-movies", "--set", "pixel_size_a=0"], "pixel_size_a"),
    (["run", "import-movies", "--set", "mdoc=/nonexistent/*.mdoc"], "no mdoc file matches"),
    (["show", "99"], "no job 99"),
])
def test_user_mistakes_are_one_line_exit_2(tmp_path, capsys, args, needle):
    run_cli(capsys, "init", str(tmp_path / "p"))
    code, out, err = run_cli(capsys, *args[:2], "-p", str(tmp_path / "p"), *args[2:])
    assert code == 2
    assert needle in err
    assert "Traceback" not in err + out
    assert len(err.strip().splitlines()) == 1, err


def test_not_a_project_via_entry_point(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "tomoforge.cli", "jobs", "-p", str(tmp_path)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "not a tomoforge project" in proc.stderr and "Traceback" not in proc.stderr


def test_run_json_summary(tmp_path, capsys, monkeypatch):
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent / "project"))
    from tomoforge.steps import registry

    from steps_for_tests import SlowCount

    monkeypatch.setitem(registry.STEPS, SlowCount.name, SlowCount)
    run_cli(capsys, "init", str(tmp_path / "p"))
    code, out, _ = run_cli(capsys, "run", "slow-count", "-p", str(tmp_path / "p"), "--set", "n_units=2", "--json")
    assert code == 0
    summary = json.loads(out)
    assert summary["status"] == "done" and [a["key"] for a in summary["outputs"]["numbers"]] == ["u00", "u01"]
    code, out, _ = run_cli(capsys, "show", str(summary["id"]), "-p", str(tmp_path / "p"), "--json")
    assert json.loads(out)["params"]["n_units"] == 2
