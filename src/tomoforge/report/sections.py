"""Report sections for step-specific records (motion traces, alignment residuals, ...).

Each entry is ``(title, render(project, series_view) -> html or "")``; a step that writes a new kind of record
adds its renderer here.
"""

from __future__ import annotations

from collections.abc import Callable

from tomoforge.project.store import Project
from tomoforge.report.collect import SeriesView

Renderer = Callable[[Project, SeriesView], str]

EXTRA_SECTIONS: list[tuple[str, Renderer]] = []
