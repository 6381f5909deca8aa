"""Helpers for the fuzz tests: small valid sources in every import layout, byte-level
mutations of one of their files, and the property every CLI run must satisfy.

The property (issue 16): a command either succeeds, or exits with code 1 and prints exactly
one line on stderr, ``error: ...``, naming the file, line or field at fault. It never prints
a traceback and never leaves a partial output behind.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import shutil
import traceback
from collections.abc import Callable
from pathlib import Path

import numpy as np
from click.testing import CliRunner

from missrec.cli import main

FEATURE_DIM = 512  # the unisrec importer reads MISSRec's 512-d CLIP features


# ----------------------------------------------------------------------------- valid sources

def _write(path: Path, lines: list[str]) -> None:
    path.write_bytes("".join(line + "\n" for line in lines).encode("utf-8"))


def unisrec_source(d: Path, *, features: bool = True) -> Path:
    """``Toy.*``: 3 users, 6 items; each user's sequence is train prefixes, a valid and a test row."""
    d.mkdir(parents=True, exist_ok=True)
    items = [f"B{i:02d}" for i in range(6)]
    seqs = {0: [0, 1, 2, 3], 1: [2, 3, 4, 5, 1], 2: [5, 4, 0, 2]}
    _write(d / "Toy.item2index", [f"{a}\t{i}" for i, a in enumerate(items)])
    _write(d / "Toy.user2index", [f"U{u}\t{u}" for u in seqs])
    header = "user_id:token\titem_id_list:token_seq\titem_id:token"
    rows: dict[str, list[str]] = {"train": [header], "valid": [header], "test": [header]}
    for u, s in seqs.items():
        for t in range(1, len(s)):
            split = "test" if t == len(s) - 1 else "valid" if t == len(s) - 2 else "train"
            rows[split].append(f"{u}\t{' '.join(map(str, s[:t]))}\t{s[t]}")
    for split, lines in rows.items():
        _write(d / f"Toy.{split}.inter", lines)
    _write(d / "Toy.text", ["item_id:token\ttext:token_seq", *(f"{a}\tthing number {a}" for a in items)])
    if features:
        rng = np.random.default_rng(0)
        rng.standard_normal((len(items), FEATURE_DIM)).astype("<f4").tofile(d / "Toy.feat1CLS")
        rng.standard_normal((len(items), FEATURE_DIM)).astype("<f4").tofile(d / "Toy.feat3CLS")
    return d


def recbole_source(d: Path) -> Path:
    """``toy/toy.inter`` + ``toy/toy.item``: 4 users, 5 items, timestamps with a tie."""
    d.mkdir(parents=True, exist_ok=True)
    inter = ["user_id:token\titem_id:token\ttimestamp:float\trating:float"]
    t = 100
    for u in range(4):
        for i in range(4):
            t += 1 if (u, i) != (2, 1) else 0
            inter.append(f"u{u}\ti{(u + i) % 5}\t{t}\t{(u + i) % 5 + 1}")
    _write(d / f"{d.name}.inter", inter)
    _write(d / f"{d.name}.item", ["item_id:token\ttitle:token_seq\tgenre:token_seq",
                                  *(f"i{i}\tTitle {i}\tDrama Comedy" for i in range(5))])
    return d


def rechorus_source(d: Path) -> Path:
    """``train.csv`` / ``dev.csv`` / ``test.csv`` + ``Shop.item2index`` + ``Shop.text``."""
    d.mkdir(parents=True, exist_ok=True)
    _write(d / "train.csv", ["user_id\titem_id\ttime", "1\t1\t10", "1\t2\t20", "2\t2\t5", "2\t3\t5",
                             "3\t4\t1", "3\t1\t2"])
    _write(d / "dev.csv", ["user_id\titem_id\ttime\tneg_items", "1\t3\t20\t[4, 2]", "2\t4\t6\t[1]",
                           "3\t2\t3\t[1]"])
    _write(d / "test.csv", ["user_id\titem_id\ttime\tneg_items", "1\t4\t20\t[1, 2]", "2\t1\t7\t[3]",
                            "3\t3\t4\t[2]"])
    _write(d / "Shop.item2index", ["A1\t1", "A2\t2", "A3\t3", "A4\t4"])
    _write(d / "Shop.text", ["id\ttext", "A1\tAlpha paper", "A2\tBeta pen", "A3\tGamma ink"])
    return d


def amazon_source(d: Path) -> Path:
    """``reviews.json`` + ``meta.json`` (one JSON object per line), 3 users, 4 items."""
    d.mkdir(parents=True, exist_ok=True)
    reviews = []
    for u in range(3):
        for k in range(4):
            reviews.append(json.dumps({"reviewerID": f"R{u}", "asin": f"P{(u + k) % 4}",
                                       "unixReviewTime": 1000 + 10 * u + k, "overall": 5.0}))
    _write(d / "reviews.json", reviews)
    _write(d / "meta.json", [json.dumps({"asin": f"P{i}", "title": f"Product {i}", "category": ["Lab", "Tools"],
                                         "brand": "Acme", "imageURL": [f"http://x/{i}.jpg"]})
                             for i in range(4)])
    return d


FORMATS: dict[str, tuple[Callable[[Path], Path], Callable[[Path], list[str]]]] = {
    # format -> (writer, the CLI's source arguments for a written folder)
    "unisrec": (unisrec_source, lambda d: [str(d)]),
    "recbole": (recbole_source, lambda d: [str(d)]),
    "rechorus": (rechorus_source, lambda d: [str(d)]),
    "amazon": (amazon_source, lambda d: [str(d / "reviews.json"), str(d / "meta.json")]),
}


# ----------------------------------------------------------------------------- mutations

NUMBERS = ["nan", "NaN", "inf", "-inf", "1e400", "-1", "0", "99999999999999999999", "2147483648", "1.5", "", "x"]
SEPARATORS = [",", ";", " ", "  ", "|"]


def _lines(data: bytes) -> list[bytes]:
    return data.splitlines(keepends=True)


def mutate(data: bytes, kind: str, rnd: random.Random) -> bytes:
    """One mutation of a file's bytes (``rnd`` picks where)."""
    lines = _lines(data)
    if kind == "truncate":
        return data[: rnd.randrange(len(data) + 1)] if data else data
    if kind == "empty":
        return b""
    if kind == "crlf":
        return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    if kind == "bom":
        return b"\xef\xbb\xbf" + data
    if kind == "bad_utf8":
        pos = rnd.randrange(len(data) + 1)
        return data[:pos] + rnd.choice([b"\xff", b"\xc3\x28", b"\xe9", b"\x80\x80"]) + data[pos:]
    if kind == "separator":
        sep = rnd.choice(SEPARATORS).encode()
        if not lines:
            return data
        i = rnd.randrange(len(lines))
        lines[i] = lines[i].replace(b"\t", sep)
        return b"".join(lines)
    if kind == "all_separators":
        return data.replace(b"\t", rnd.choice(SEPARATORS).encode())
    if kind == "duplicate_line":
        if not lines:
            return data
        i = rnd.randrange(len(lines))
        return b"".join(lines[: i + 1] + [lines[i]] + lines[i + 1:])
    if kind == "drop_line":
        if not lines:
            return data
        del lines[rnd.randrange(len(lines))]
        return b"".join(lines)
    if kind == "swap_lines":
        if len(lines) < 2:
            return data
        i, j = rnd.sample(range(len(lines)), 2)
        lines[i], lines[j] = lines[j], lines[i]
        return b"".join(lines)
    if kind == "number":
        return _replace_token(data, rnd, rnd.choice(NUMBERS).encode(), digits_only=True)
    if kind == "token":
        return _replace_token(data, rnd, rnd.choice([b"ZZZ", b"", b"-5", b"1e9", b"\"", b"{", b"[1,"]), digits_only=False)
    if kind == "blank_lines":
        return b"\n\n" + data + b"\n   \n"
    raise ValueError(kind)


TEXT_MUTATIONS = ["truncate", "empty", "crlf", "bom", "bad_utf8", "separator", "all_separators", "duplicate_line",
                  "drop_line", "swap_lines", "number", "token", "blank_lines"]


def _replace_token(data: bytes, rnd: random.Random, new: bytes, *, digits_only: bool) -> bytes:
    """Replace one whitespace/punctuation-delimited token (a number when ``digits_only``)."""
    pattern = rb"-?\d+(?:\.\d+)?" if digits_only else rb"[^\s\t,:\"{}\[\]]+"
    spans = [m.span() for m in re.finditer(pattern, data)]
    if not spans:
        return data
    a, b = rnd.choice(spans)
    return data[:a] + new + data[b:]


# ----------------------------------------------------------------------------- running

def run(args: list[str]) -> tuple[int, str, str]:
    """``missrec ARGS`` in-process: (exit code, stdout, stderr)."""
    res = CliRunner().invoke(main, args, catch_exceptions=True)
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        tb = "".join(traceback.format_exception(res.exception))
        raise AssertionError(f"missrec {' '.join(args)} raised instead of reporting an error:\n{tb}")
    return res.exit_code, res.stdout, res.stderr


def assert_clean_failure(code: int, err: str, names: list[str]) -> str:
    """Exit 1 and exactly one line ``error: ...`` mentioning one of ``names``."""
    lines = err.splitlines()
    assert code == 1, f"exit code {code}, stderr {err!r}"
    assert len(lines) == 1, f"expected one stderr line, got {len(lines)}: {err!r}"
    assert lines[0].startswith("error: "), lines[0]
    assert "Traceback" not in err
    assert any(n in lines[0] for n in names), f"{lines[0]!r} names none of {names}"
    return lines[0]


def tree_digest(path: Path) -> str:
    """A digest of every file's relative path and bytes below ``path`` (or 'absent')."""
    if not path.exists():
        return "absent"
    h = hashlib.sha256()
    for p in sorted(path.rglob("*")):
        h.update(str(p.relative_to(path)).encode())
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


def leftovers(folder: Path) -> list[str]:
    """Temporary or half-written entries a failed write could leave in ``folder``."""
    return sorted(p.name for p in folder.iterdir() if ".tmp" in p.name or ".old-" in p.name)


def fresh_copy(src: Path, dst: Path) -> Path:
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst)
    return dst
