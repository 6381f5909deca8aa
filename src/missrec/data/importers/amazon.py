"""Raw Amazon Review dumps (2018, and the 2014 layout): ``REVIEWS.json META.json``.

* Reviews: one object per line with ``reviewerID``, ``asin``, ``unixReviewTime`` (other
  fields ignored).
* Metadata: one object per line with ``asin`` and optionally ``title``, ``category`` (2018:
  a list) or ``categories`` (2014: a list of lists), ``brand``, ``imageURLHighRes`` /
  ``imageURL`` (2018: lists) or ``imUrl`` (2014: a string).

Either file may be gzipped (detected from its first bytes). Lines are JSON; real dumps also
hold Python-literal lines (single quotes, ``True``), so :func:`ast.literal_eval` is the
fallback parser.

Preprocessing follows UniSRec/MISSRec (the paper's pipeline): interactions with items that
have no metadata record are dropped, exact duplicate reviews (same user, item and time --
repeated lines in the dumps) are dropped, then k-core filtering and chronological
leave-one-out (:func:`~missrec.data.splits.leave_one_out`). The item text is
``title. categories. brand.`` with HTML entities and tags removed and empty parts left out;
the image reference is a local file ``<images-dir>/<asin>.<ext>`` when one exists, else the
first image URL (nothing is downloaded).

A malformed line is an :class:`~missrec.errors.InputFormatError` naming the file and line.
With ``skip_bad_lines`` set on the options, such lines are skipped and counted in the
dataset's provenance instead.
"""

from __future__ import annotations

import ast
import gzip
import html
import json
import re
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import InputFormatError, MissrecError
from ..splits import kcore_mask, leave_one_out
from ..store import Dataset
from . import ImportOptions
from ._text import join_text

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".gif")
MAX_FIELD_CHARS = 2000
"""Longer text fields are scraping debris (page HTML, scripts) in the dumps: dropped."""

_TAG = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"\s+")


# ----------------------------------------------------------------------------- reading lines

def _open_text(path: Path):
    """A binary line iterator over a plain or gzipped file."""
    try:
        with open(path, "rb") as f:
            magic = f.read(2)
    except OSError as e:
        raise InputFormatError(path, f"cannot be read ({e.strerror or e})") from None
    return gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")


def _parse_object(line: str) -> dict[str, Any]:
    """One line -> dict: JSON first, then a Python literal (the dumps' loose lines)."""
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as e:
        try:
            obj = ast.literal_eval(line)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            raise ValueError(f"not a JSON object or Python dict literal ({e.msg} at column {e.colno})") from None
    if not isinstance(obj, dict):
        raise ValueError(f"expected an object ({{...}}), got {type(obj).__name__}")
    return obj


def iter_records(path: Path, skip_bad: bool, bad: list[tuple[int, str]]) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line_number, object)`` per non-blank line. Bad lines raise, or are appended to
    ``bad`` as ``(line, reason)`` when ``skip_bad``."""
    with _open_text(path) as f:
        ln = 0
        try:
            for ln, raw in enumerate(f, 1):
                try:
                    line = raw.decode("utf-8").strip()
                    if ln == 1:
                        line = line.lstrip("\ufeff")
                    if not line:
                        continue
                    yield ln, _parse_object(line)
                except (UnicodeDecodeError, ValueError) as e:
                    reason = "is not valid UTF-8" if isinstance(e, UnicodeDecodeError) else str(e)
                    if not skip_bad:
                        raise InputFormatError(path, reason, ln) from None
                    bad.append((ln, reason))
        except (EOFError, OSError, zlib.error) as e:
            raise InputFormatError(path, f"truncated or corrupt gzip data ({e})", ln + 1) from None


# ----------------------------------------------------------------------------- fields

def _clean(value: Any) -> str:
    """Text of one field: entities decoded, tags removed, whitespace collapsed; overlong
    (scraped-page debris) -> ''."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        value = " ".join(_clean(v) for v in value)
    text = _SPACE.sub(" ", _TAG.sub(" ", html.unescape(str(value)))).strip()
    return "" if len(text) >= MAX_FIELD_CHARS else text


def _categories(meta: dict[str, Any]) -> list[str]:
    """Category names in order, de-duplicated: 2018 ``category`` (list of str) or 2014
    ``categories`` (list of lists)."""
    raw = meta.get("category")
    if raw is None:
        raw = meta.get("categories")
    flat: list[str] = []

    def walk(x: Any) -> None:
        if isinstance(x, (list, tuple)):
            for y in x:
                walk(y)
        elif x is not None:
            flat.append(_clean(x))

    walk(raw)
    return [c for c in dict.fromkeys(flat) if c]


def item_text(meta: dict[str, Any]) -> str:
    """``title. categories. brand.`` (empty parts left out), as in UniSRec/MISSRec."""
    return join_text([_clean(meta.get("title")), " ".join(_categories(meta)), _clean(meta.get("brand"))])


def first_image_url(meta: dict[str, Any]) -> str | None:
    """The first high-resolution image URL, else the first image URL (2018 lists, 2014 string)."""
    for key in ("imageURLHighRes", "imageURL", "imUrl"):
        v = meta.get(key)
        if isinstance(v, str) and v.strip():
            return v.strip()
        if isinstance(v, (list, tuple)):
            for u in v:
                if isinstance(u, str) and u.strip():
                    return u.strip()
    return None


def _local_images(images_dir: Path) -> dict[str, Path]:
    """asin -> image file in ``images_dir`` (by stem; earlier extensions win)."""
    rank = {e: i for i, e in enumerate(IMAGE_EXTENSIONS)}
    found: dict[str, Path] = {}
    for p in sorted(images_dir.iterdir()):
        r = rank.get(p.suffix.lower())
        if r is None or not p.is_file():
            continue
        if p.stem not in found or r < rank[found[p.stem].suffix.lower()]:
            found[p.stem] = p
    return found


def _need_str(path: Path, ln: int, obj: dict[str, Any], field: str, expected: str) -> str:
    v = obj.get(field)
    if v is None:
        raise InputFormatError(path, f"missing field {field!r} (expected {expected})", ln)
    if not isinstance(v, (str, int)) or not str(v).strip():
        raise InputFormatError(path, f"field {field!r} must be a non-empty string, got {v!r}", ln)
    return str(v).strip()


def _need_time(path: Path, ln: int, obj: dict[str, Any], expected: str) -> float:
    v = obj.get("unixReviewTime")
    if v is None:
        raise InputFormatError(path, f"missing field 'unixReviewTime' (expected {expected})", ln)
    try:
        t = float(v)
    except (TypeError, ValueError):
        t = float("nan")
    if isinstance(v, bool) or not np.isfinite(t):
        raise InputFormatError(path, f"field 'unixReviewTime' must be a Unix timestamp, got {v!r}", ln)
    return t


# ----------------------------------------------------------------------------- importer

REVIEW_FIELDS = "reviewerID, asin, unixReviewTime"


def _read_reviews(path: Path, skip_bad: bool, bad: list[tuple[int, str]]
                  ) -> tuple[list[str], list[str], list[float]]:
    users: list[str] = []
    items: list[str] = []
    times: list[float] = []
    first = True
    for ln, obj in iter_records(path, skip_bad, bad):
        try:
            u = _need_str(path, ln, obj, "reviewerID", REVIEW_FIELDS)
            i = _need_str(path, ln, obj, "asin", REVIEW_FIELDS)
            t = _need_time(path, ln, obj, REVIEW_FIELDS)
        except InputFormatError as e:
            if first and "reviewerID" not in obj and "asin" in obj and "unixReviewTime" not in obj:
                raise InputFormatError(path, "looks like a metadata file (no reviewerID/unixReviewTime); "
                                             "give REVIEWS first, then META", ln) from None
            if not skip_bad:
                raise
            bad.append((ln, str(e)))
            continue
        finally:
            first = False
        users.append(u)
        items.append(i)
        times.append(t)
    return users, items, times


def _read_meta(path: Path, skip_bad: bool, bad: list[tuple[int, str]]) -> dict[str, dict[str, Any]]:
    """asin -> metadata record (the first record wins when an asin repeats)."""
    metas: dict[str, dict[str, Any]] = {}
    for ln, obj in iter_records(path, skip_bad, bad):
        try:
            asin = _need_str(path, ln, obj, "asin", "asin and optionally title, category, brand, imageURL")
        except InputFormatError as e:
            if not skip_bad:
                raise
            bad.append((ln, str(e)))
            continue
        metas.setdefault(asin, obj)
    return metas


def _dataset_name(reviews: Path) -> str:
    name = reviews.name
    for suffix in (".gz", ".json", ".jsonl", ".txt"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    return name or "amazon"


def _usable_rows(users: list[str], items: list[str], times: list[float], metas: dict[str, dict[str, Any]]
                 ) -> tuple[np.ndarray, int, int]:
    """Rows kept (first of exact duplicates -- same user, item and time, artefacts of the
    dumps -- on items with metadata), the number of duplicates and of rows without metadata."""
    seen: set[tuple[str, str, float]] = set()
    keep = np.zeros(len(users), dtype=bool)
    n_dup = n_nometa = 0
    for r, key in enumerate(zip(users, items, times)):
        if key in seen:
            n_dup += 1
        elif key[1] not in metas:
            n_nometa += 1
        else:
            seen.add(key)
            keep[r] = True
    return np.nonzero(keep)[0], n_dup, n_nometa


def import_amazon(sources: list[Path], opts: ImportOptions) -> Dataset:
    """Import an Amazon Review dump: ``sources = [REVIEWS, META]``."""
    if len(sources) != 2:
        raise MissrecError(f"the amazon format takes two files, REVIEWS then META; got {len(sources)}")
    reviews_path, meta_path = (Path(s) for s in sources)
    skip_bad = bool(getattr(opts, "skip_bad_lines", False))
    bad_reviews: list[tuple[int, str]] = []
    bad_meta: list[tuple[int, str]] = []
    users, items, times = _read_reviews(reviews_path, skip_bad, bad_reviews)
    metas = _read_meta(meta_path, skip_bad, bad_meta)
    n_read = len(users)
    idx, n_dup, n_nometa = _usable_rows(users, items, times, metas)
    if len(idx) == 0:
        raise InputFormatError(reviews_path, f"no usable interactions: {n_read:,} reviews read, "
                                             f"{n_nometa:,} of them on items missing from {meta_path}")

    # k-core on integer codes first: numpy sorts ints far faster than strings, and after
    # this leave_one_out's own k-core pass (same k, idempotent) has nothing left to remove.
    ucode: dict[str, int] = {}
    icode: dict[str, int] = {}
    u_codes = np.fromiter((ucode.setdefault(users[r], len(ucode)) for r in idx), np.int64, len(idx))
    i_codes = np.fromiter((icode.setdefault(items[r], len(icode)) for r in idx), np.int64, len(idx))
    core = kcore_mask(u_codes, i_codes, opts.kcore)
    # leave_one_out needs someone left to split (>= 3 interactions): say so clearly.
    if not core.any() or np.bincount(u_codes[core]).max() < 3:
        raise MissrecError(f"{reviews_path}: nothing left after {opts.kcore}-core filtering "
                           f"({len(idx):,} interactions in); try a smaller --kcore")
    idx = idx[core]

    local = _local_images(opts.images_dir) if opts.images_dir is not None else {}
    kept_items = {items[r] for r in idx}
    texts = {asin: item_text(metas[asin]) for asin in kept_items}
    images: dict[str, str | None] = {}
    for asin in kept_items:
        if asin in local:
            images[asin] = str(local[asin].resolve())
        else:
            images[asin] = first_image_url(metas[asin])

    provenance = {
        "format": "amazon",
        "reviews": str(reviews_path),
        "meta": str(meta_path),
        "images_dir": str(opts.images_dir) if opts.images_dir is not None else None,
        "kcore": opts.kcore,
        "reviews_read": n_read,
        "duplicate_reviews_dropped": n_dup,
        "reviews_without_meta_dropped": n_nometa,
        "bad_lines_skipped": {str(reviews_path): len(bad_reviews), str(meta_path): len(bad_meta)},
    }
    return leave_one_out(
        opts.name or _dataset_name(reviews_path),
        [users[r] for r in idx],
        [items[r] for r in idx],
        np.asarray([times[r] for r in idx], dtype=np.float64),
        kcore=opts.kcore,
        item_text=texts,
        item_image=images,
        provenance=provenance,
    )
