"""Scipion sqlite sets and project, workflow templates: real files read, values checked with sqlite3/json."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pytest

from tomoforge.errors import ParseError
from tomoforge.io import scipion


def test_coordinates3d(realdata):
    p = realdata / "scipion/tomo_SetOfCoordinates3D_coordinates3d.sqlite"
    c = scipion.read_coordinates3d_sqlite(p)
    assert len(c.coordinates) == 210 and c.sampling_rate_a == 5.4 and c.box_size_px == 20
    con = sqlite3.connect(f"file:{p}?mode=ro", uri=True)
    rows = con.execute("SELECT c01, c02, c03, c08, c11 FROM Objects ORDER BY id").fetchall()
    con.close()
    for got, (x, y, z, tomo, half) in zip(c.coordinates, rows, strict=True):
        assert (got.x_px, got.y_px, got.z_px, got.tomo_id, got.random_subset) == (x, y, z, tomo, half)
    r = c.coordinates[0].matrix[:3, :3]
    assert np.allclose(r @ r.T, np.eye(3), atol=1e-9)
    picks = scipion.coordinates_to_model(c, {t: (928, 928, 500) for t in {x.tomo_id for x in c.coordinates}})
    assert sum(len(p.particles) for p in picks) == 210
    first = next(p for p in picks if p.ts_id == "TS_03").particles[0]
    assert first.x_a == pytest.approx((-436.75 + 463.5) * 5.4)


def test_movies_set_and_project(realdata):
    s = scipion.read_set_sqlite(realdata / "scipion/spa_ProtImportMovies_movies.sqlite")
    assert s.set_class == "SetOfMovies" and len(s.rows) == 3775
    assert float(s.properties["_samplingRate"]) == pytest.approx(1.044)
    runs, n_rel = scipion.read_project_sqlite(realdata / "scipion/spa_project.sqlite")
    assert n_rel == 104 and runs[0].class_name == "ProtImportMovies" and runs[0].status == "finished"
    assert sum(r.class_name == "ProtRelionRefine3D" for r in runs) == 6
    with pytest.raises(ParseError, match="not a readable Scipion set"):
        scipion.read_set_sqlite(realdata / "scipion/spa_project.sqlite")


TEMPLATES = {
    "imod_automatic_tilt_series_alignment.json.template": 5,
    "tomo_2022_Tomocourse-Dec22-D3-STA-HIV.json.template": 25,
    "tomo_2023_HIV-tiltseries-alignment-reconstruction.json.template": 17,
    "tomo_202601_Streaming_HIV.json.template": 13,
    "tomo_deprecated_tutorial_apoferritin_STA.json.template": 23,
    "tomo_tutorial_STA_HIV.json.template": 26,
}


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_workflow_templates(realdata, name):
    p = realdata / "scipion" / name
    desc, prots = scipion.read_workflow_template(p)
    assert len(prots) == TEMPLATES[name] and desc
    lines = p.read_text().splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.lstrip().startswith("["))
    raw = json.loads("\n".join(lines[start:]))
    for pr, r in zip(prots, raw, strict=True):
        assert pr.class_name == r["object.className"] and pr.object_id == str(r["object.id"])
        assert all(pr.params[k] == v for k, v in r.items() if not k.startswith("object."))


def test_bad_inputs(tmp_path):
    p = tmp_path / "x.json.template"
    p.write_text("desc\n[\n {\"object.className\": \"A\",}\n]\n")
    with pytest.raises(ParseError, match="bad JSON") as e:
        scipion.read_workflow_template(p)
    assert e.value.line == 3   # the line with the trailing comma
    q = tmp_path / "x.sqlite"
    q.write_bytes(b"not sqlite at all")
    with pytest.raises(ParseError, match="not an SQLite"):
        scipion.read_set_sqlite(q)
