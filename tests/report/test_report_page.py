"""The run report after the default workflow on a simulated session: every section is there, and in headless
Chromium every image loads (the screenshot is kept in the test's tmp folder for a person to look at)."""

import shutil
from pathlib import Path

import numpy as np
import pytest

from tomoforge.io.sim_session import simulate_case
from tomoforge.project.store import Project
from tomoforge.project.workflow import apply_sets, load_workflow, run_workflow
from tomoforge.report.html import build_report

SECTIONS = ["summary", "tilt-series", "ts-TS_01", "provenance", "timings"]
IMAGES = {"views of TS_01", "motion traces", "alignment residuals", "defocus", "fit resolution", "tomogram TS_01",
          "timings"}
SUBSECTIONS = ["Views", "Motion", "Alignment", "CTF", "Tomogram", "Accuracy against simulator truth"]


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("report")
    simulate_case("tiny", root / "session", seed=2, overrides={"dark_views": "20"})
    proj = Project.create(root / "project")
    wf = apply_sets(load_workflow("default"), {"import.mdoc": str(root / "session" / "*.mdoc"),
                                               "thickness_px": 64})
    run_workflow(proj, wf)
    return build_report(proj)


def test_sections_and_accuracy_rows(report):
    html = report.read_text()
    for sec in SECTIONS:
        assert f'id="{sec}"' in html, sec
    for title in SUBSECTIONS:
        assert f"<h4>{title}</h4>" in html, title
    for row in ("frame drift error", "defocus error", "tilt axis error", "shift error", "excluded views"):
        assert row in html, row
    assert "dark" in html  # the dark view is excluded, with its reason
    assert all(f'alt="{alt}"' in html for alt in IMAGES) and "<svg" in html


def _browser():
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        pytest.skip("headless Chromium not installed (Debian packages chromium and chromium-driver)")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("selenium not installed")
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--window-size=1200,3000"):
        opts.add_argument(arg)
    return webdriver.Chrome(service=Service(driver), options=opts)


def test_page_renders_with_every_image_loaded(report, tmp_path):
    from PIL import Image

    browser = _browser()
    try:
        browser.get(report.as_uri())
        images = browser.execute_script(
            "return [...document.images].map(i => [i.alt, i.complete && i.naturalWidth > 0])")
        ids = browser.execute_script("return [...document.querySelectorAll('[id]')].map(e => e.id)")
        svg_boxes = browser.execute_script("return document.querySelectorAll('svg.provenance rect').length")
        shot = tmp_path / "report.png"
        browser.save_screenshot(str(shot))
    finally:
        browser.quit()
    assert {alt for alt, _ in images} == IMAGES
    assert all(ok for _, ok in images), [alt for alt, ok in images if not ok]
    assert set(SECTIONS) <= set(ids)
    assert svg_boxes == 10  # one box per job of the default workflow
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.std() > 10  # not a blank page
