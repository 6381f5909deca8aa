"""Line and field parsing shared by the tab-separated importers.

Every helper raises :class:`~missrec.errors.InputFormatError` naming the file, the 1-based
line and what was expected, so importers never surface a bare ``ValueError`` or
``UnicodeDecodeError``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from contextlib import closing
from pathlib import Path

from ...errors import InputFormatError

_SPACES = re.compile(r"\s+")


def iter_lines(path: Path, *, skip_blank: bool = True) -> Iterator[tuple[int, str]]:
    """``(line_number, text)`` for each line of a UTF-8 file, without the line ending.

    A byte-order mark on the first line is dropped; blank lines are skipped by default.
    Undecodable bytes are reported with their line number.
    """
    try:
        f = open(path, "rb")
    except OSError as e:
        raise InputFormatError(path, f"cannot be read ({e.strerror or e})") from None
    with f:
        for ln, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise InputFormatError(
                    path, f"is not valid UTF-8 (byte {raw[e.start]:#04x} at column {e.start + 1})", ln
                ) from None
            if ln == 1 and line.startswith("\ufeff"):
                line = line[1:]
            line = line.rstrip("\r\n")
            if skip_blank and not line.strip():
                continue
            yield ln, line


def first_line(path: Path, lines: Iterator[tuple[int, str]], expected: str) -> tuple[int, str]:
    """The header ``(line_number, text)`` from :func:`iter_lines`, or an error if the file is empty."""
    first = next(lines, None)
    if first is None:
        raise InputFormatError(path, f"is empty; expected a header {expected}", 1)
    return first


def separator_hint(line: str) -> str:
    """Explain a line with too few tab-separated columns: other separators it holds ("" if none)."""
    where = "has tabs and" if "\t" in line else "has no tab but"
    for sep, name in ((",", "commas"), (";", "semicolons"), ("|", "'|' characters")):
        if sep in line:
            return f"; the line {where} {name}: columns must be separated by tabs"
    if "\t" not in line and len(line.split()) > 1:
        return "; the line has no tab but spaces: columns must be separated by tabs"
    return ""


def split_row(path: Path, line: str, ln: int, n_columns: int, *, header: Sequence[str] | None = None) -> list[str]:
    """A data line split on tabs; it must have exactly ``n_columns`` columns."""
    cols = line.split("\t")
    if len(cols) != n_columns:
        names = f" ({', '.join(header)})" if header else ""
        hint = separator_hint(line) if len(cols) < n_columns else ""
        raise InputFormatError(
            path, f"expected {n_columns} tab-separated columns{names}, found {len(cols)}{hint}", ln
        )
    return cols


def parse_number(path: Path, value: str, ln: int, field: str) -> float:
    """A finite float (integers included) or an error naming the field."""
    try:
        x = float(value)
    except ValueError:
        x = math.nan
    if not math.isfinite(x):
        raise InputFormatError(path, f"{field} {value!r} is not a number", ln)
    return x


def parse_int(path: Path, value: str, ln: int, field: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise InputFormatError(path, f"{field} {value!r} is not an integer", ln) from None


def require_value(path: Path, value: str, ln: int, field: str) -> str:
    """A non-empty (stripped) id value."""
    value = value.strip()
    if not value:
        raise InputFormatError(path, f"{field} is empty", ln)
    return value


def read_index_pairs(path: Path) -> dict[int, str]:
    """``id<TAB>index`` lines (no header) -> ``{index: id}``; ids and indexes each unique."""
    out: dict[int, str] = {}
    seen: dict[str, int] = {}
    with closing(iter_lines(path)) as lines:
        for ln, line in lines:
            ext, idx_s = split_row(path, line, ln, 2, header=["id", "index"])
            ext = require_value(path, ext, ln, "id")
            idx = parse_int(path, idx_s.strip(), ln, "index")
            if idx in out:
                raise InputFormatError(path, f"index {idx} is given twice (also to {out[idx]!r})", ln)
            if ext in seen:
                raise InputFormatError(path, f"id {ext!r} appears twice (first at line {seen[ext]})", ln)
            out[idx] = ext
            seen[ext] = ln
    if not out:
        raise InputFormatError(path, "is empty; expected lines 'id<TAB>index'", 1)
    return out


def join_text(parts: Sequence[str]) -> str:
    """Item text from its fields, Amazon style ("title. categories. brand."): whitespace
    collapsed, empty fields dropped, each field ended with a full stop unless it already
    ends with sentence punctuation.

    >>> join_text(["Toy Story", "1995", "Animation Children's Comedy"])
    "Toy Story. 1995. Animation Children's Comedy."
    >>> join_text(["Heat.", "", "Action"])
    'Heat. Action.'
    """
    out = []
    for p in parts:
        p = _SPACES.sub(" ", p).strip()
        if not p:
            continue
        out.append(p if p[-1] in ".!?" else p + ".")
    return " ".join(out)
