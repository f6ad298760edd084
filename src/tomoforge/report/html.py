"""Write the report: one self-contained HTML page (images inline as data URIs)."""

from __future__ import annotations

import time
from html import escape
from pathlib import Path

import numpy as np

from tomoforge import __version__
from tomoforge.io.atomic import write_text_atomic
from tomoforge.project.store import Project
from tomoforge.report import figures
from tomoforge.report.accuracy import accuracy_rows
from tomoforge.report.collect import SeriesView, collect_series, find_truth, job_timings, metric_rows
from tomoforge.report.provenance import provenance_svg
from tomoforge.report.sections import EXTRA_SECTIONS

CSS = """
body{font-family:system-ui,sans-serif;margin:24px;max-width:1200px;color:#222}
h1{margin-bottom:0} h2{border-bottom:2px solid #ccd;padding-bottom:4px;margin-top:36px}
h3{margin-top:22px} table{border-collapse:collapse;font-size:13px;margin:8px 0}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:left} th{background:#eef}
img{max-width:100%} .fig{display:inline-block;vertical-align:top;margin:4px 12px 4px 0}
.note{color:#666;font-size:13px} .bad{color:#b00} .ok{color:#070}
"""


def _img(uri: str, alt: str) -> str:
    return f'<div class="fig"><img src="{uri}" alt="{escape(alt)}"></div>'


def _table(header: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return escape(str(v))


def _thumbnails(view: SeriesView) -> str:
    from tomoforge.io.mrc import read_section

    ts = view.latest(lambda t: all(im.image is not None for im in t.images))
    if ts is None:
        return '<p class="note">No images yet (movies only).</p>'
    thumbs = []
    for im in ts.images:
        thumbs.append(figures.block_mean(read_section(im.image.path, im.image.index), 96))
    labels = [f"{im.tilt_angle_deg:+.0f}° #{im.acquisition_order}" for im in ts.images]
    uri = figures.thumbnail_strip(thumbs, labels, [im.excluded for im in ts.images])
    reasons = [[f"{im.tilt_angle_deg:+.1f}", im.acquisition_order, im.exclude_reason or ""]
               for im in ts.images if im.excluded]
    table = _table(["tilt (°)", "order", "excluded because"], reasons) if reasons else ""
    return _img(uri, f"views of {view.ts_id}") + table


def _ctf(view: SeriesView) -> str:
    ts = view.latest(lambda t: any(im.ctf is not None for im in t.images))
    if ts is None:
        return '<p class="note">No CTF estimate yet.</p>'
    ims = [im for im in ts.images if im.ctf is not None]
    tilt = [im.tilt_angle_deg for im in ims]
    parts = [_img(figures.line_plot({"defocus U": (tilt, [im.ctf.defocus_u_a / 1e4 for im in ims]),
                                     "defocus V": (tilt, [im.ctf.defocus_v_a / 1e4 for im in ims])},
                                    "tilt (°)", "defocus (µm)", title="Defocus against tilt",
                                    excluded_x=[im.tilt_angle_deg for im in ims if im.excluded]), "defocus")]
    res = [(im.tilt_angle_deg, im.ctf.fit_resolution_a) for im in ims if im.ctf.fit_resolution_a]
    if res:
        parts.append(_img(figures.line_plot({"fit resolution": ([r[0] for r in res], [r[1] for r in res])},
                                            "tilt (°)", "fit resolution (Å)", title="CTF fit resolution"),
                          "fit resolution"))
    return "".join(parts)


def _tomograms(view: SeriesView) -> str:
    from tomoforge.io.mrc import read_mrc

    if not view.tomograms:
        return '<p class="note">No tomogram yet.</p>'
    job, tomo = view.tomograms[-1]
    vol, _ = read_mrc(tomo.path)
    return (f'<p>{escape(tomo.method)} (job {job.id}), {tomo.shape_zyx[2]}×{tomo.shape_zyx[1]}×{tomo.shape_zyx[0]} '
            f'voxels, {tomo.pixel_size_a:.2f} Å/px</p>' + _img(figures.volume_slices(np.asarray(vol), tomo.pixel_size_a),
                                                              f"tomogram {view.ts_id}"))


def build_report(project: Project, out: str | Path | None = None, truth: str | Path | None = None) -> Path:
    """Write ``report.html`` (default: in the project folder); returns its path."""
    out = Path(out) if out else project.root / "report.html"
    series = collect_series(project)
    truth_path = Path(truth) if truth else find_truth(series)
    body = [f"<h1>tomoforge report</h1><p class='note'>{escape(str(project.root))} · "
            f"{time.strftime('%Y-%m-%d %H:%M')} · tomoforge {__version__}</p>"]
    body.append('<h2 id="summary">Summary</h2>')
    body.append(_table(["job", "step", "status", "metrics"],
                       [[r["id"], r["step"], r["status"],
                         ", ".join(f"{k}={_fmt(v)}" for k, v in r["metrics"].items())] for r in metric_rows(project)]))
    body.append('<h2 id="tilt-series">Tilt series</h2>')
    if not series:
        body.append('<p class="note">No tilt series imported yet.</p>')
    for ts_id, view in series.items():
        first = view.records[0][1]
        final = view.records[-1][1]
        n_ex = sum(im.excluded for im in final.images)
        body.append(f'<h3 id="ts-{escape(ts_id)}">{escape(ts_id)}</h3><p>{len(final.images)} views '
                    f'({n_ex} excluded){", whole series excluded: " + escape(final.exclude_reason or "") if final.excluded else ""}'
                    f', tilt axis {first.acquisition.tilt_axis_deg:.2f}°, {first.acquisition.pixel_size_a:.3f} Å/px, '
                    f'{first.acquisition.dose_per_tilt_e_per_a2:.2f} e/Å² per tilt</p>')
        body.append('<h4>Views</h4>' + _thumbnails(view))
        for title, render in EXTRA_SECTIONS:
            html = render(project, view)
            if html:
                body.append(f"<h4>{escape(title)}</h4>{html}")
        body.append('<h4>CTF</h4>' + _ctf(view))
        body.append('<h4>Tomogram</h4>' + _tomograms(view))
        if truth_path:
            rows = accuracy_rows(truth_path, view, project)
            if rows:
                body.append('<h4>Accuracy against simulator truth</h4>' + _table(["quantity", "value", "note"], rows))
    body.append('<h2 id="provenance">Provenance</h2>' + provenance_svg(project))
    timings = job_timings(project)
    body.append('<h2 id="timings">Timings</h2>')
    if timings:
        body.append(_img(figures.bar_chart([t[0] for t in timings], [t[1] for t in timings], "seconds"), "timings"))
        body.append(f"<p>Total {sum(t[1] for t in timings):.1f} s over {len(timings)} jobs.</p>")
    html = (f"<!doctype html><html><head><meta charset='utf-8'><title>tomoforge report</title>"
            f"<style>{CSS}</style></head><body>{''.join(body)}</body></html>")
    return write_text_atomic(out, html)
