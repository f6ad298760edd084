"""User-facing errors: one line naming the file, the field and what was expected.

The CLI prints ``str(err)`` and exits with code 2; no traceback is shown for these.
"""

from __future__ import annotations

from pathlib import Path


class TomoforgeError(Exception):
    """A mistake in the user's input or request; shown as one line, exit code 2."""

    def __init__(self, message: str, *, path: str | Path | None = None, field: str | None = None,
                 expected: str | None = None, line: int | None = None):
        self.path = str(path) if path is not None else None
        self.field = field
        self.expected = expected
        self.line = line
        parts = []
        if self.path:
            parts.append(f"{self.path}:{line}" if line is not None else self.path)
        if field:
            parts.append(f"field '{field}'")
        head = ": ".join(parts)
        text = f"{head}: {message}" if head else message
        if expected:
            text += f" (expected {expected})"
        super().__init__(text.replace("\n", " "))


class ParseError(TomoforgeError):
    """A file could not be parsed; always names the file and, where known, the line."""


class ParamError(TomoforgeError):
    """A step parameter is unknown or out of bounds."""


class InputError(TomoforgeError):
    """A step's inputs are missing, mismatched or unusable."""
