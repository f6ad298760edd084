"""STAR files (RELION, WarpTools): a small strict reader and a RELION-style writer.

Our own tokenizer rather than ``starfile`` so that every error is a ParseError with file and line, and so
that RELION's quirks are handled on purpose: trailing spaces after ``loop_`` and labels, ``# version 50001``
comments, ``#N`` column comments, unlooped ``data_`` blocks, a lone space on the last line, C++ padding,
quoted values (``""`` is the empty string) and the unnamed ``data_`` block.

Values are kept as strings; typed accessors convert them and report the row's line on failure.
Labels are stored without the leading underscore (``rlnTomoName``), as ``starfile`` does.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tomoforge.errors import ParseError
from tomoforge.io._text import read_lines, to_float, to_int
from tomoforge.io.atomic import write_text_atomic

_TOKEN = re.compile(r"""\s*(?:"([^"]*)"(?=\s|$)|'([^']*)'(?=\s|$)|(\S+))""")
RELION_VERSION = 50001


@dataclass
class StarBlock:
    """One ``data_`` block: either name/value pairs or a loop table (or, rarely, both)."""

    name: str
    path: str = ""
    line: int = 0
    pairs: dict[str, str] = field(default_factory=dict)
    pair_lines: dict[str, int] = field(default_factory=dict)
    labels: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    row_lines: list[int] = field(default_factory=list)
    is_loop: bool = False

    def __len__(self) -> int:
        return len(self.rows)

    def has(self, label: str) -> bool:
        return label in self.labels or label in self.pairs

    def require(self, *labels: str) -> None:
        """ParseError naming the first missing column or value."""
        for lab in labels:
            if not self.has(lab):
                raise ParseError(f"block 'data_{self.name}' has no column '_{lab}'", path=self.path,
                                 line=self.line, field=lab, expected="a RELION column of that name")

    def column(self, label: str) -> list[str]:
        self.require(label)
        if label in self.pairs and label not in self.labels:
            return [self.pairs[label]]
        j = self.labels.index(label)
        return [r[j] for r in self.rows]

    def floats(self, label: str) -> np.ndarray:
        j = self._index(label)
        return np.array([to_float(r[j], self.path, ln, label) for r, ln in zip(self.rows, self.row_lines, strict=False)],
                        dtype=np.float64)

    def ints(self, label: str) -> np.ndarray:
        j = self._index(label)
        return np.array([to_int(r[j], self.path, ln, label) for r, ln in zip(self.rows, self.row_lines, strict=False)],
                        dtype=np.int64)

    def value(self, label: str, default: str | None = None) -> str:
        if label in self.pairs:
            return self.pairs[label]
        if default is not None:
            return default
        self.require(label)
        raise AssertionError  # pragma: no cover - require() raised

    def float_value(self, label: str, default: float | None = None) -> float:
        if label not in self.pairs and default is not None:
            return default
        return to_float(self.value(label), self.path, self.pair_lines.get(label, self.line), label)

    def int_value(self, label: str, default: int | None = None) -> int:
        if label not in self.pairs and default is not None:
            return default
        return to_int(self.value(label), self.path, self.pair_lines.get(label, self.line), label)

    def records(self) -> list[dict[str, str]]:
        """Rows as dicts label -> string."""
        return [dict(zip(self.labels, r, strict=False)) for r in self.rows]

    def to_dataframe(self):
        """Rows as a pandas DataFrame of strings converted where every value is numeric."""
        import pandas as pd

        data = {}
        for j, lab in enumerate(self.labels):
            col = [r[j] for r in self.rows]
            try:
                data[lab] = [int(v) for v in col]
            except ValueError:
                try:
                    data[lab] = [float(v) for v in col]
                except ValueError:
                    data[lab] = col
        return pd.DataFrame(data, columns=self.labels)

    def _index(self, label: str) -> int:
        if label not in self.labels:
            self.require(label)
            raise ParseError(f"'_{label}' is a single value, not a column", path=self.path, line=self.line)
        return self.labels.index(label)


class StarFile(dict):
    """Blocks by name, in file order (``dict`` of name -> StarBlock) plus the source path."""

    path: str = ""

    def block(self, name: str) -> StarBlock:
        if name not in self:
            names = ", ".join(f"data_{n}" for n in self) or "none"
            raise ParseError(f"no block 'data_{name}' (blocks: {names})", path=self.path,
                             expected=f"a data_{name} block")
        return self[name]

    def first(self) -> StarBlock:
        return next(iter(self.values()))


def tokenize(text: str, path, line: int) -> list[str]:
    """Split a STAR line into values; stops at a '#' comment; quotes delimit values with spaces."""
    out: list[str] = []
    pos, n = 0, len(text)
    while pos < n:
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            if text[pos:].strip():
                raise ParseError("unterminated quoted value", path=path, line=line)
            break
        pos = m.end()
        if m.group(1) is not None:
            out.append(m.group(1))
        elif m.group(2) is not None:
            out.append(m.group(2))
        else:
            tok = m.group(3)
            if tok.startswith("#"):
                break
            if tok[0] in "\"'":
                raise ParseError(f"unterminated quoted value {_clip(tok)}", path=path, line=line)
            out.append(tok)
    return out


def read_star(path: str | Path) -> StarFile:
    """Parse a STAR file into blocks. Errors name the file and line."""
    path = Path(path)
    lines = read_lines(path)
    return parse_star_lines(lines, path)


def parse_star_lines(lines: list[str], path) -> StarFile:
    out = StarFile()
    out.path = str(path)
    block: StarBlock | None = None
    in_loop = False          # reading labels or rows of a loop
    in_rows = False          # labels done, now rows
    for i, raw in enumerate(lines, start=1):
        s = raw.strip()
        if not s or s.startswith("#"):
            if in_rows and not s:
                in_loop = in_rows = False  # a blank line ends a loop (RELION writes one)
            continue
        if s.startswith(";"):
            raise ParseError("multi-line ';' text fields are not supported", path=path, line=i)
        low = s.lower()
        if low.startswith("data_"):
            name = s.split()[0][5:]
            if name in out:
                raise ParseError(f"duplicate block 'data_{name}'", path=path, line=i)
            block = StarBlock(name=name, path=str(path), line=i)
            out[name] = block
            in_loop = in_rows = False
            continue
        if block is None:
            raise ParseError(f"'{_clip(s)}' before any data_ block", path=path, line=i,
                             expected="a 'data_NAME' line first")
        if low.startswith("loop_"):
            if block.is_loop:
                raise ParseError("second loop_ in one block", path=path, line=i)
            block.is_loop = True
            in_loop, in_rows = True, False
            continue
        if s.startswith("_"):
            toks = tokenize(s, path, i)
            label = toks[0][1:] if toks else ""
            if not label:
                raise ParseError("empty label", path=path, line=i)
            if in_loop and not in_rows:
                if label in block.labels:
                    raise ParseError(f"duplicate column '_{label}'", path=path, line=i)
                block.labels.append(label)
                continue
            in_loop = in_rows = False
            if len(toks) != 2:
                raise ParseError(f"label '_{label}' needs exactly one value, found {len(toks) - 1}",
                                 path=path, line=i)
            if label in block.pairs:
                raise ParseError(f"duplicate value '_{label}'", path=path, line=i)
            block.pairs[label] = toks[1]
            block.pair_lines[label] = i
            continue
        if in_loop:
            if not block.labels:
                raise ParseError("loop_ without column labels", path=path, line=i)
            in_rows = True
            toks = tokenize(s, path, i)
            if len(toks) != len(block.labels):
                raise ParseError(f"{len(toks)} values in a row of 'data_{block.name}'", path=path, line=i,
                                 expected=f"{len(block.labels)} values, one per column")
            block.rows.append(toks)
            block.row_lines.append(i)
            continue
        raise ParseError(f"unexpected '{_clip(s)}'", path=path, line=i,
                         expected="'loop_', a '_label value' pair or 'data_NAME'")
    if not out:
        raise ParseError("no data_ block", path=path, expected="a STAR file")
    for b in out.values():
        if b.is_loop and not b.labels:
            raise ParseError(f"loop_ without column labels in 'data_{b.name}'", path=path, line=b.line)
    return out


def _clip(s: str) -> str:
    s = s.encode("ascii", "backslashreplace").decode()
    return s if len(s) <= 40 else s[:37] + "..."


# ----------------------------------------------------------------------------------------------- writing

def format_value(v) -> str:
    """RELION-compatible text for one value: shortest exact float text, quoted when needed."""
    if isinstance(v, bool | np.bool_):
        return "1" if v else "0"
    if isinstance(v, int | np.integer):
        return str(int(v))
    if isinstance(v, float | np.floating):
        f = float(v)
        if not math.isfinite(f):
            raise ValueError(f"cannot write non-finite value {f} to a STAR file")
        return repr(f)
    s = str(v)
    if s == "" or any(c.isspace() for c in s) or s.startswith(("_", "#", "data_", "loop_", '"', "'")):
        if '"' in s:
            raise ValueError(f"cannot write a value with both spaces and quotes: {s!r}")
        return f'"{s}"'
    return s


def format_block(name: str, content, *, version: int | None = RELION_VERSION) -> str:
    """Text of one block. ``content`` is a Mapping of label -> scalar (unlooped) or label -> sequence
    (a loop; all sequences the same length), or a pandas DataFrame (a loop)."""
    out = []
    if version is not None:
        out += ["", f"# version {version}", ""]
    out += [f"data_{name}", ""]
    table = _as_table(content)
    if table is None:
        width = max((len(k) for k in content), default=0) + 2
        for k, v in content.items():
            out.append(f"_{k.lstrip('_'):<{width}} {format_value(v)}")
        out.append("")
        return "\n".join(out) + "\n"
    labels, columns = table
    out.append("loop_")
    out += [f"_{lab.lstrip('_')} #{j + 1}" for j, lab in enumerate(labels)]
    n = len(columns[0]) if columns else 0
    text_cols = [[format_value(v) for v in col] for col in columns]
    widths = [max((len(t) for t in col), default=0) for col in text_cols]
    for r in range(n):
        out.append(" ".join(f"{text_cols[j][r]:>{widths[j]}}" for j in range(len(labels))))
    out.append("")
    return "\n".join(out) + "\n"


def _as_table(content):
    if hasattr(content, "columns") and hasattr(content, "to_dict"):  # DataFrame
        labels = [str(c) for c in content.columns]
        return labels, [list(content[c]) for c in content.columns]
    if not isinstance(content, Mapping):
        raise TypeError("STAR block content must be a mapping or a DataFrame")
    vals = list(content.values())
    if vals and all(_is_seq(v) for v in vals):
        lens = {len(v) for v in vals}
        if len(lens) != 1:
            raise ValueError("all columns of a STAR loop must have the same length")
        return list(content.keys()), [list(v) for v in vals]
    if any(_is_seq(v) for v in vals):
        raise ValueError("a STAR block mixes single values and columns")
    return None


def _is_seq(v) -> bool:
    return isinstance(v, list | tuple | np.ndarray) or (hasattr(v, "tolist") and hasattr(v, "__len__")
                                                       and not isinstance(v, str))


def write_star(path: str | Path, blocks: Mapping[str, object] | Iterable[tuple[str, object]], *,
               version: int | None = RELION_VERSION, header: str | None = None) -> Path:
    """Write blocks atomically; ``blocks`` maps block name -> content (see :func:`format_block`)."""
    items = blocks.items() if isinstance(blocks, Mapping) else blocks
    text = "".join(format_block(name, content, version=version) for name, content in items)
    if header:
        text = "".join(f"# {h}\n" for h in header.splitlines()) + text
    return write_text_atomic(path, text)
