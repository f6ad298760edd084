import sqlite3

import pytest

from tomoforge.errors import InputError
from tomoforge.project.schema import SCHEMA_VERSION
from tomoforge.project.store import Project


def test_create_is_a_readable_folder(tmp_path):
    proj = Project.create(tmp_path / "p")
    assert (tmp_path / "p" / "project.db").is_file()
    assert (tmp_path / "p" / "jobs").is_dir()
    con = sqlite3.connect(tmp_path / "p" / "project.db")
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"jobs", "params", "artifacts", "edges", "units", "events", "schema_version"} <= tables
    assert proj.schema_version() == SCHEMA_VERSION


def test_not_a_project(tmp_path):
    with pytest.raises(InputError, match="not a tomoforge project"):
        Project(tmp_path)


def test_unit_cannot_register_a_missing_file(tmp_path):
    proj = Project.create(tmp_path / "p")
    job = proj.create_job("x", {}, "h", "i", {})
    proj.ensure_units(job.id, {"a": "sig"})
    with pytest.raises(FileNotFoundError):
        proj.complete_unit(job.id, "a", [{"port": "o", "key": "a", "type": "T", "path": str(tmp_path / "nope")}], {})
    assert proj.artifacts(job.id) == []
    assert proj.units(job.id)[0].status == "pending"


def test_newer_schema_is_refused(tmp_path):
    Project.create(tmp_path / "p")
    con = sqlite3.connect(tmp_path / "p" / "project.db")
    con.execute("UPDATE schema_version SET version = 999")
    con.commit()
    con.close()
    with pytest.raises(InputError, match="newer"):
        Project(tmp_path / "p")
