"""The web UI's API: jobs, live events, viewers, starting a step."""

import time

import numpy as np
import pytest
from fastapi.testclient import TestClient

from tomoforge.io.mrc import write_mrc
from tomoforge.project.runner import run_step
from tomoforge.project.store import Project
from tomoforge.steps.import_steps import ImportTiltSeries
from tomoforge.web.app import create_app


@pytest.fixture
def client(tmp_path):
    stack = np.random.default_rng(0).normal(size=(5, 40, 48)).astype(np.float32)
    write_mrc(tmp_path / "TS_09.st", stack, 2.0)
    (tmp_path / "TS_09.rawtlt").write_text("\n".join(str(a) for a in (-20, -10, 0, 10, 20)) + "\n")
    proj = Project.create(tmp_path / "p")
    run_step(proj, ImportTiltSeries, {"stack": str(tmp_path / "*.st"), "dose_per_tilt_e_per_a2": 3})
    return TestClient(create_app(proj.root)), tmp_path


def test_jobs_graph_and_viewer(client):
    c, _ = client
    assert "tomoforge" in c.get("/").text
    jobs = c.get("/api/jobs").json()
    assert [(j["step"], j["status"], j["units_done"]) for j in jobs] == [("import-tilt-series", "done", 1)]
    detail = c.get(f"/api/jobs/{jobs[0]['id']}").json()
    art = detail["outputs"]["tilt_series"][0]
    ts = c.get(f"/api/tilt-series/{art['id']}").json()
    assert [im["tilt_angle_deg"] for im in ts["images"]] == [-20, -10, 0, 10, 20]
    png = c.get(f"/api/tilt-series/{art['id']}/view/2.png")
    assert png.status_code == 200 and png.content[:4] == b"\x89PNG"
    assert c.get(f"/api/tilt-series/{art['id']}/view/9.png").status_code == 404
    assert c.get("/api/graph.svg").text.startswith("<svg")
    assert any(e["kind"] == "job_done" for e in c.get("/api/events").json())
    assert c.get("/api/jobs/99").status_code == 404


def test_start_a_step_and_see_it_finish(client):
    c, tmp = client
    write_mrc(tmp / "TS_10.st", np.zeros((5, 40, 48), np.float32), 2.0)
    (tmp / "TS_10.rawtlt").write_text("-20\n-10\n0\n10\n20\n")
    r = c.post("/api/run", json={"step": "import-tilt-series",
                                 "params": {"stack": str(tmp / "TS_10.st"), "dose_per_tilt_e_per_a2": "2"}})
    run = r.json()["run"]
    for _ in range(100):
        state = c.get(f"/api/runs/{run}").json()
        if state["status"] != "running":
            break
        time.sleep(0.1)
    assert state["status"] == "done", state
    bad = c.post("/api/run", json={"step": "import-tilt-series", "params": {"nonsense": 1}})
    assert bad.status_code == 400 and "unknown parameter" in bad.json()["detail"]
