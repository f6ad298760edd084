"""Scipion templates as tomoforge workflow files: nodes, ports, order and the report, checked on real files."""

from __future__ import annotations

import json

import pytest

from tomoforge.errors import InputError
from tomoforge.interop.import_external import scipion_to_workflow, write_scipion_workflow
from tomoforge.project.workflow import load_workflow


def test_imod_alignment_template(realdata, tmp_path):
    path, report = write_scipion_workflow(realdata / "scipion" / "imod_automatic_tilt_series_alignment.json.template",
                                          tmp_path / "wf.json")
    wf = load_workflow(path)
    steps = [n.step for n in wf.nodes]
    assert steps == ["xray-erase", "dose-filter", "align-coarse", "fiducial-model", "fiducial-align"]
    nodes = {n.step: n for n in wf.nodes}
    assert nodes["dose-filter"].inputs == {"tilt_series": "xray-erase-6622"}
    assert nodes["fiducial-align"].inputs == {"landmarks": "fiducial-model-6741"}
    assert report.startswith("5 protocols mapped, 0 not mapped")


def test_streaming_template_is_reordered_so_inputs_come_first(realdata):
    wf, wi, notes = scipion_to_workflow(realdata / "scipion" / "tomo_202601_Streaming_HIV.json.template")
    order = [n["id"] for n in wf["nodes"]]
    # the template lists import-tilt-series before the motion correction and movie import it reads from
    assert order.index("import-movies-41473") < order.index("motion-correct-41405")
    for k, n in enumerate(wf["nodes"]):
        for ref in n["inputs"].values():
            for r in ref if isinstance(ref, list) else [ref]:
                assert r in order[:k], (n["id"], r)
    # import steps take no input: Scipion's link from motion correction to the import is dropped, with a note
    assert wf["nodes"][order.index("import-tilt-series-41365")]["inputs"] == {}
    assert any("takes no input" in s for s in notes)


def test_sta_template_reports_unmapped_and_maps_ports(realdata, tmp_path):
    path, report = write_scipion_workflow(realdata / "scipion" / "tomo_tutorial_STA_HIV.json.template",
                                          tmp_path / "wf.json")
    data = json.loads(path.read_text())
    nodes = {n["id"]: n for n in data["nodes"]}
    assert nodes["assign-alignment-369"]["inputs"] == {"alignment": "fiducial-align-326",
                                                        "tilt_series": "erase-fiducials-115"}
    assert nodes["ctf-correct-1787"]["inputs"] == {"tilt_series": "assign-alignment-369"}
    assert "NOT MAPPED DynamoBoxing" in report and "NOT MAPPED XmippProtFSO" in report
    assert nodes["refine-852"]["params"]["symmetry"].startswith(("C", "D", "O", "I", "T"))


def test_missing_template(tmp_path):
    with pytest.raises(InputError, match="no such Scipion template"):
        scipion_to_workflow(tmp_path / "nope.json")


def test_imod_file_imports_become_import_imod(realdata):
    wf, _, notes = scipion_to_workflow(realdata / "scipion" / "tomo_2022_Tomocourse-Dec22-D3-STA-HIV.json.template")
    nodes = {n["id"]: n for n in wf["nodes"]}
    ali, ctf = nodes["import-alignment-3"], nodes["import-ctf-113"]
    assert ali["step"] == ctf["step"] == "import-imod"
    assert ali["inputs"] == {"tilt_series": "import-tilt-series-2"} and ctf["inputs"] == {"tilt_series": "import-alignment-3"}
    assert "*" not in ali["params"]["dir"] and set(ali["params"]) <= {"dir", "binning"}
    from tomoforge.steps.import_external import ImportImodParams

    ImportImodParams.model_validate(ali["params"])      # the params are valid for the step
    assert any("import-imod looks for" in n for n in notes)
