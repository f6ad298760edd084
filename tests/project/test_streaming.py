"""Streaming: tilt series arriving during a watched run are each processed exactly once."""

import shutil
import sys
import threading
import time
from pathlib import Path

from tomoforge.project.store import Project
from tomoforge.project.workflow import Workflow, watch_workflow

from sessions import make_session

sys.path.insert(0, str(Path(__file__).parent))
from steps_for_tests import registered_test_steps  # noqa: E402, F401


def test_tilt_series_arriving_one_by_one(tmp_path):
    staging, watched = tmp_path / "staging", tmp_path / "watched"
    for name in ("TS_01", "TS_02", "TS_03"):
        make_session(staging / name, "tif", ts=name, frames_sub="")
    watched.mkdir()
    wf = Workflow.model_validate({"name": "s", "nodes": [
        {"id": "import", "step": "import-movies", "params": {"mdoc": str(watched / "*.mdoc")}},
        {"id": "count", "step": "count-views", "inputs": {"tilt_series": "import"}}]})

    def arrive():
        for name in ("TS_01", "TS_02", "TS_03"):
            time.sleep(0.8)
            for f in sorted((staging / name).iterdir(), key=lambda p: p.suffix == ".mdoc"):
                shutil.copy(f, watched / f.name)  # movies first, the mdoc last, as SerialEM writes

    proj = Project.create(tmp_path / "p")
    feeder = threading.Thread(target=arrive)
    feeder.start()
    passes = []
    jobs = watch_workflow(proj, wf, poll_s=0.3, idle_timeout_s=8.0, settle_s=0.5,
                          on_pass=lambda i, new: passes.append(new))
    feeder.join()
    imp, count = jobs["import"], jobs["count"]
    assert sorted(a.key for a in proj.artifacts(imp.id)) == ["TS_01", "TS_02", "TS_03"]
    assert sorted(a.key for a in proj.artifacts(count.id)) == ["TS_01", "TS_02", "TS_03"]
    assert all(u.attempts == 1 and u.status == "done" for j in (imp, count) for u in proj.units(j.id))
    runs = sorted(f.name.split(".")[0] for f in (proj.job_dir(count) / "runs").iterdir())
    assert runs == ["TS_01", "TS_02", "TS_03"]
    assert len(proj.jobs()) == 2  # the same two jobs grew; nothing was redone
    assert sum(1 for n in passes if n) >= 2  # work arrived over several passes


def test_stop_file_ends_the_watch(tmp_path):
    proj = Project.create(tmp_path / "p")
    (tmp_path / "w").mkdir()
    make_session(tmp_path / "w", "tif", frames_sub="")
    wf = Workflow.model_validate({"name": "s", "nodes": [
        {"id": "import", "step": "import-movies", "params": {"mdoc": str(tmp_path / "w" / "*.mdoc")}}]})
    threading.Timer(1.0, lambda: (proj.root / "STOP").touch()).start()
    t0 = time.monotonic()
    watch_workflow(proj, wf, poll_s=0.2, idle_timeout_s=60, settle_s=0)
    assert time.monotonic() - t0 < 20
