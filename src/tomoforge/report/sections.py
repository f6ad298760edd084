"""Report sections for step-specific records (motion traces, alignment residuals, ...).

Each entry is ``(title, render(project, series_view) -> html or "")``; a step that writes a new kind of record
adds its renderer here.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np

from tomoforge.project.store import Project
from tomoforge.report import figures
from tomoforge.report.collect import SeriesView

Renderer = Callable[[Project, SeriesView], str]


def _latest(project: Project, view: SeriesView, type_name: str) -> dict | None:
    rows = view.extras.get(type_name)
    if not rows:
        return None
    _, art = rows[-1]
    return json.loads(project.resolve(art.uri).read_text())


def render_motion(project: Project, view: SeriesView) -> str:
    rec = _latest(project, view, "MotionShifts")
    if rec is None:
        return ""
    traces = [np.asarray(t, dtype=float) for t in rec["shifts_xy_px"]]
    total = [float(np.linalg.norm(t[-1] - t[0])) for t in traces if len(t)]
    img = figures.motion_traces(traces, [str(i) for i in range(len(traces))])
    return (f'<div class="fig"><img src="{img}" alt="motion traces"></div>'
            f"<p>{len(traces)} movies; drift first to last frame: median {np.median(total):.2f} px, "
            f"max {np.max(total):.2f} px (at {rec['pixel_size_a']:.3g} Å/px).</p>")


def render_alignment(project: Project, view: SeriesView) -> str:
    rec = _latest(project, view, "AlignmentReport")
    if rec is None:
        return ""
    pairs = [(t, r) for t, r in zip(rec["tilt_deg"], rec["residual_px"], strict=True) if r is not None]
    parts = []
    if pairs:
        parts.append('<div class="fig"><img src="{}" alt="alignment residuals"></div>'.format(
            figures.line_plot({"residual": ([p[0] for p in pairs], [p[1] for p in pairs])}, "tilt (°)",
                              "mean residual (px)", title=f"Alignment residual per view ({rec['method']})")))
    summary = {k: v for k, v in rec.items() if isinstance(v, (int, float, str)) and not isinstance(v, bool)
               and k != "ts_id"}
    if summary:
        parts.append("<p>" + ", ".join(f"{k} = {v:.4g}" if isinstance(v, float) else f"{k} = {v}"
                                       for k, v in summary.items()) + "</p>")
    return "".join(parts)


EXTRA_SECTIONS: list[tuple[str, Renderer]] = [
    ("Motion", render_motion),
    ("Alignment", render_alignment),
]
