"""Small modules and small functions: each is read whole, so each has to fit in one reading.

A module over MODULE_LINES or a function (or method) over FUNCTION_LINES is allowed only
where a comment says why: ``# shape: <reason>`` in the module's first SHAPE_HEAD lines, or in
the comment lines just above the ``def`` (above its decorators, if any). A function's length
counts from ``def`` to its last line, docstring included.
"""

from __future__ import annotations

import ast
from pathlib import Path


SRC = Path(__file__).resolve().parents[1] / "src" / "missrec"
MODULE_LINES = 400
FUNCTION_LINES = 60
SHAPE_HEAD = 5
MARK = "shape: "


def _is_marked(comment_lines: list[str]) -> bool:
    return any(line.lstrip().startswith("#") and MARK in line for line in comment_lines)


def _comments_above(lines: list[str], lineno: int) -> list[str]:
    """The block of comment lines right above 1-based line ``lineno``."""
    block = []
    i = lineno - 2
    while i >= 0 and lines[i].lstrip().startswith("#"):
        block.append(lines[i])
        i -= 1
    return block


def offenders(name: str, text: str) -> list[str]:
    """``name:line: what (N lines)`` for every unmarked module or function over its limit."""
    lines = text.splitlines()
    found = []
    if len(lines) > MODULE_LINES and not _is_marked(lines[:SHAPE_HEAD]):
        found.append(f"{name}:1: module ({len(lines)} lines > {MODULE_LINES})")
    for node in ast.walk(ast.parse(text, filename=name)):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        length = node.end_lineno - node.lineno + 1
        first = min([node.lineno] + [d.lineno for d in node.decorator_list])
        if length > FUNCTION_LINES and not _is_marked(_comments_above(lines, first)):
            found.append(f"{name}:{node.lineno}: {node.name}() ({length} lines > {FUNCTION_LINES})")
    return found


def test_checker_finds_long_code_and_honours_the_reason() -> None:
    body = "".join(f"    x{i} = {i}\n" for i in range(FUNCTION_LINES))
    source = (f"def long():\n{body}\n"
              f"# shape: one table of cases, read as one\n@staticmethod\ndef allowed():\n{body}\n"
              f"# a comment without the marker\ndef unmarked():\n{body}\n"
              f"def short():\n    return 1\n")
    assert offenders("m.py", source) == [f"m.py:1: long() ({FUNCTION_LINES + 1} lines > {FUNCTION_LINES})",
                                         f"m.py:{2 * FUNCTION_LINES + 8}: unmarked() "
                                         f"({FUNCTION_LINES + 1} lines > {FUNCTION_LINES})"]
    padded = "x = 0\n" * (MODULE_LINES + 1)
    assert offenders("big.py", padded) == [f"big.py:1: module ({MODULE_LINES + 1} lines > {MODULE_LINES})"]
    assert offenders("big.py", "# shape: generated table\n" + padded) == []


def test_no_module_or_function_is_too_long() -> None:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        found += offenders(str(path.relative_to(SRC.parents[1])), path.read_text())
    assert not found, f"{len(found)} too long (add '# shape: <why>' where it must be):\n" + "\n".join(found)
