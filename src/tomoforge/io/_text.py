"""Shared helpers for the text-format readers: decoding, tokens and numbers with file:line errors."""

from __future__ import annotations

import math
from pathlib import Path

from tomoforge.errors import ParseError

MAX_TEXT_BYTES = 512 * 1024 * 1024


def read_text(path: str | Path) -> str:
    """The whole file as text; a missing, binary or undecodable file raises ParseError."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise ParseError(f"cannot read file: {err.strerror or err}", path=path) from None
    if len(data) > MAX_TEXT_BYTES:
        raise ParseError("file too large for a text format", path=path)
    if b"\x00" in data:
        line = data[: data.index(b"\x00")].count(b"\n") + 1
        raise ParseError("binary data (NUL byte) in a text file", path=path, line=line)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise ParseError("not UTF-8 text", path=path, line=line) from None
    return text


def read_lines(path: str | Path) -> list[str]:
    """Lines without their endings (CRLF and CR handled)."""
    return read_text(path).splitlines()


def to_float(token: str, path, line: int, field: str | None = None) -> float:
    """A finite float, or ParseError naming the file, line and field."""
    try:
        value = float(token)
    except (ValueError, TypeError):
        raise ParseError(f"'{_short(token)}' is not a number", path=path, line=line, field=field) from None
    if not math.isfinite(value):
        raise ParseError(f"'{_short(token)}' is not a finite number", path=path, line=line, field=field)
    return value


def to_int(token: str, path, line: int, field: str | None = None) -> int:
    """An integer (also accepts '3.0'), or ParseError."""
    try:
        return int(token)
    except (ValueError, TypeError):
        pass
    value = to_float(token, path, line, field)
    if value != int(value):
        raise ParseError(f"'{_short(token)}' is not an integer", path=path, line=line, field=field)
    return int(value)


def floats(tokens: list[str], path, line: int, field: str | None = None) -> list[float]:
    return [to_float(t, path, line, field) for t in tokens]


def numeric_rows(path, lines: list[str], n_columns: int | tuple[int, ...], *, skip: int = 0,
                 what: str = "values") -> tuple[list[list[float]], list[int]]:
    """Parse non-empty lines (after ``skip``) as rows of floats with an allowed column count.

    Returns the rows and their 1-based line numbers.
    """
    allowed = (n_columns,) if isinstance(n_columns, int) else tuple(n_columns)
    rows, line_nos = [], []
    for i, raw in enumerate(lines[skip:], start=skip + 1):
        toks = raw.split()
        if not toks:
            continue
        if len(toks) not in allowed:
            exp = " or ".join(str(a) for a in allowed)
            raise ParseError(f"{len(toks)} columns of {what}", path=path, line=i, expected=f"{exp} columns")
        rows.append(floats(toks, path, i))
        line_nos.append(i)
    return rows, line_nos


def _short(token) -> str:
    s = str(token)
    s = s.encode("ascii", "backslashreplace").decode("ascii")
    return s if len(s) <= 40 else s[:37] + "..."
