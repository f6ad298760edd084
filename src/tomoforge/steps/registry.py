"""The table of steps. The CLI and workflows look steps up here by their user-facing name."""

from __future__ import annotations

from tomoforge.steps.base import Step
from tomoforge.steps.import_steps import Import, ImportMovies, ImportTiltSeries

_ALL: list[type[Step]] = [Import, ImportMovies, ImportTiltSeries]

STEPS: dict[str, type[Step]] = {cls.name: cls for cls in _ALL}
