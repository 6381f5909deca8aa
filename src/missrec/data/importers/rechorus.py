"""The ReChorus layout: ``train.csv``, ``dev.csv``, ``test.csv`` (+ ``X.item2index``, ``X.text``).

The three files are tab-separated (despite the name) with a header holding at least
``user_id``, ``item_id`` and ``time`` (a Unix timestamp); ``dev.csv`` and ``test.csv`` add a
``neg_items`` column (sampled negatives, ignored: evaluation here ranks all items). Other
columns are ignored too. Ids are 1-based indexes; ``X.item2index`` (``ASIN<TAB>index``, no
header) maps item indexes back to external ids and ``X.text`` (header ``id<TAB>text``, then
``ASIN<TAB>text``) gives each item's text. Without an ``item2index`` file the item indexes
themselves are the external ids.

The split is the files' own: each user's rows are concatenated (train, dev, test) and
ordered by time, ties broken train before dev before test, then by line. The dataset is built
with :func:`missrec.data.splits.leave_one_out` without k-core filtering (ReChorus data is
already filtered, and filtering would change the given split), and its labels are checked
against the files: every dev row must be its user's second-last interaction and every test
row the last, or the import stops with an error naming the offending row.
"""

from __future__ import annotations

from contextlib import closing
from pathlib import Path

import numpy as np

from ...errors import InputFormatError
from ..splits import leave_one_out
from ..store import SPLIT_TEST, SPLIT_TRAIN, SPLIT_VALID, Dataset
from . import ImportOptions
from ._text import first_line, iter_lines, parse_int, parse_number, read_index_pairs, require_value, separator_hint, split_row

SPLIT_FILES = {"train.csv": SPLIT_TRAIN, "dev.csv": SPLIT_VALID, "test.csv": SPLIT_TEST}
REQUIRED_COLUMNS = ("user_id", "item_id", "time")
TEXT_HEADER_IDS = {"id", "item_id", "item_id:token", "asin", "item"}


class _Rows:
    """One interaction file's rows (user id string, item index, time, line number)."""

    def __init__(self, path: Path):
        self.path = path
        self.users: list[str] = []
        self.items: list[int] = []
        self.times: list[float] = []
        self.lines: list[int] = []


def _locate(sources: list[Path]) -> tuple[dict[int, Path], Path | None, Path | None]:
    """The three split files, the ``item2index`` file and the ``text`` file (if any)."""
    splits: dict[int, Path] = {}
    index_files: list[Path] = []
    text_files: list[Path] = []

    def add_file(p: Path) -> None:
        if p.name in SPLIT_FILES:
            code = SPLIT_FILES[p.name]
            if code in splits and splits[code] != p:
                raise InputFormatError(p, f"a second {p.name} (the first is {splits[code]})")
            splits[code] = p
        elif p.suffix == ".item2index":
            index_files.append(p)
        elif p.suffix == ".text":
            text_files.append(p)
        else:
            raise InputFormatError(
                p, "expected a ReChorus directory, train.csv / dev.csv / test.csv, X.item2index or X.text"
            )

    if not sources:
        raise InputFormatError(".", "the rechorus format needs a source directory")
    for src in map(Path, sources):
        if src.is_dir():
            for name in SPLIT_FILES:
                if (src / name).is_file():
                    add_file(src / name)
            index_files.extend(sorted(src.glob("*.item2index")))
            text_files.extend(sorted(src.glob("*.text")))
        elif src.is_file():
            add_file(src)
        else:
            raise InputFormatError(src, "no such file or directory")
    base = Path(sources[0])
    for name, code in SPLIT_FILES.items():
        if code not in splits:
            where = base if base.is_dir() else base.parent
            raise InputFormatError(where / name, "no such file; the rechorus format needs train.csv, dev.csv and test.csv")
    index_files = list(dict.fromkeys(index_files))
    if len(index_files) > 1:
        raise InputFormatError(
            index_files[1], f"several .item2index files ({', '.join(str(p) for p in index_files)}); give one"
        )
    index_file = index_files[0] if index_files else None
    text_files = list(dict.fromkeys(text_files))
    if index_file is not None and len(text_files) > 1:
        same = [p for p in text_files if p.stem == index_file.stem]
        text_files = same or text_files
    if len(text_files) > 1:
        raise InputFormatError(text_files[1], f"several .text files ({', '.join(str(p) for p in text_files)}); give one")
    return splits, index_file, (text_files[0] if text_files else None)


def read_split_file(path: Path) -> _Rows:
    """One of train.csv / dev.csv / test.csv."""
    rows = _Rows(path)
    with closing(iter_lines(path)) as lines:
        ln, header_line = first_line(path, lines, "<TAB>".join(REQUIRED_COLUMNS))
        header = [c.strip() for c in header_line.split("\t")]
        if len(header) == 1:
            hint = separator_hint(header_line)
            raise InputFormatError(
                path, f"header {header_line!r} is not tab-separated{hint or ''}; "
                f"expected {'<TAB>'.join(REQUIRED_COLUMNS)}", ln
            )
        for col in REQUIRED_COLUMNS:
            if col not in header:
                raise InputFormatError(
                    path, f"header lacks column {col!r} (it has: {', '.join(header)}); "
                    f"expected at least {'<TAB>'.join(REQUIRED_COLUMNS)}", ln
                )
        iu, ii, it = (header.index(c) for c in REQUIRED_COLUMNS)
        n = len(header)
        for ln, line in lines:
            parts = split_row(path, line, ln, n, header=header)
            rows.users.append(require_value(path, parts[iu], ln, "user_id"))
            rows.items.append(parse_int(path, parts[ii].strip(), ln, "item_id"))
            rows.times.append(parse_number(path, parts[it], ln, "time"))
            rows.lines.append(ln)
    return rows


def read_item2index(path: Path) -> dict[int, str]:
    """``ASIN<TAB>index`` lines (no header) -> ``{index: ASIN}``."""
    return read_index_pairs(path)


def read_text_file(path: Path) -> dict[str, str]:
    """``id<TAB>text`` with an optional header line -> ``{id: text}``."""
    texts: dict[str, str] = {}
    seen: dict[str, int] = {}
    with closing(iter_lines(path)) as lines:
        for ln, line in lines:
            parts = line.split("\t", 1)
            if len(parts) != 2:
                hint = separator_hint(line)
                raise InputFormatError(path, f"expected 'id<TAB>text'{hint}", ln)
            ext = parts[0].strip()
            if not texts and not seen and ext.lower() in TEXT_HEADER_IDS:
                seen[ext] = ln  # the header
                continue
            ext = require_value(path, ext, ln, "id")
            if ext in texts:
                raise InputFormatError(path, f"id {ext!r} appears twice (first at line {seen[ext]})", ln)
            texts[ext] = " ".join(parts[1].split())
            seen[ext] = ln
    return texts


def _check_per_user(parts: dict[int, _Rows]) -> None:
    """One dev row and one test row per user, and at least one train row."""
    once: dict[int, dict[str, int]] = {}
    for code in (SPLIT_VALID, SPLIT_TEST):
        rows = parts[code]
        first: dict[str, int] = {}
        for u, ln in zip(rows.users, rows.lines):
            if u in first:
                raise InputFormatError(
                    rows.path, f"user {u!r} has a second row (the first is line {first[u]}); "
                    "expected one row per user", ln
                )
            first[u] = ln
        once[code] = first
    train_users = dict(zip(parts[SPLIT_TRAIN].users, parts[SPLIT_TRAIN].lines))
    for code, other in ((SPLIT_VALID, SPLIT_TEST), (SPLIT_TEST, SPLIT_VALID)):
        for u, ln in once[other].items():
            if u not in once[code]:
                raise InputFormatError(
                    parts[code].path, f"has no row for user {u!r} (who is at {parts[other].path.name}:{ln}); "
                    "expected one row per user"
                )
    for u, ln in train_users.items():
        if u not in once[SPLIT_VALID]:
            raise InputFormatError(
                parts[SPLIT_VALID].path, f"has no row for user {u!r} (who is at {parts[SPLIT_TRAIN].path.name}:{ln}); "
                "expected one row per user"
            )
    for u, ln in once[SPLIT_VALID].items():
        if u not in train_users:
            raise InputFormatError(
                parts[SPLIT_VALID].path, f"user {u!r} has no rows in {parts[SPLIT_TRAIN].path.name}; "
                "a leave-one-out split needs at least one training interaction per user", ln
            )


def _verify_split(ds: Dataset, parts: dict[int, _Rows], item_ext: dict[int, str]) -> None:
    """Every dev row is its user's second-last interaction, every test row the last."""
    inter = ds.interactions
    for code in (SPLIT_VALID, SPLIT_TEST):
        rows = parts[code]
        want = {u: (item_ext[i], t, ln) for u, i, t, ln in zip(rows.users, rows.items, rows.times, rows.lines)}
        mask = inter.split == code
        got_users = [ds.users.ids[u] for u in inter.user[mask].tolist()]
        got_items = [ds.items.ids[i] for i in inter.item[mask].tolist()]
        got_times = inter.timestamp[mask].tolist()
        if len(got_users) != len(want):
            raise InputFormatError(
                rows.path, f"{len(want)} users here but {len(got_users)} after the leave-one-out split"
            )
        for u, i, t in zip(got_users, got_items, got_times):
            wi, wt, ln = want[u]
            if (wi, wt) != (i, t):
                raise InputFormatError(rows.path, _order_problem(parts, code, u, wt, ln), ln)


def _order_problem(parts: dict[int, _Rows], code: int, user: str, t: float, ln: int) -> str:
    """Why a dev/test row is not where leave-one-out puts it (names a row out of order)."""
    what = "second-last" if code == SPLIT_VALID else "last"
    tail = "; the files are not a chronological leave-one-out split"
    checks = [(SPLIT_TRAIN, 1, "later")]
    checks += [(SPLIT_TEST, -1, "earlier")] if code == SPLIT_VALID else [(SPLIT_VALID, 1, "later")]
    for other, sign, word in checks:
        rows = parts[other]
        for u, ot, oln in zip(rows.users, rows.times, rows.lines):
            if u == user and sign * (ot - t) > 0:
                return (
                    f"the row of user {user!r} (time {t:g}) is not their {what} interaction: "
                    f"{rows.path.name}:{oln} is {word} (time {ot:g}){tail}"
                )
    return f"the row of user {user!r} is not their {what} interaction in time order{tail}"


def import_rechorus(sources: list[Path], opts: ImportOptions) -> Dataset:
    """Import a ReChorus directory, keeping its split. ``opts.kcore`` does not apply."""
    split_paths, index_path, text_path = _locate(sources)
    parts = {code: read_split_file(p) for code, p in split_paths.items()}
    for code, rows in parts.items():
        if not rows.lines:
            raise InputFormatError(rows.path, "holds a header but no interactions", 2)

    if index_path is not None:
        item_ext = read_item2index(index_path)
        for rows in parts.values():
            for i, ln in zip(rows.items, rows.lines):
                if i not in item_ext:
                    raise InputFormatError(
                        rows.path, f"item_id {i} is not in {index_path.name}", ln
                    )
    else:
        item_ext = {i: str(i) for rows in parts.values() for i in rows.items}
    _check_per_user(parts)

    texts: dict[str, str] = {}
    if text_path is not None:
        texts = read_text_file(text_path)

    order = (SPLIT_TRAIN, SPLIT_VALID, SPLIT_TEST)  # input order breaks time ties
    users = [u for c in order for u in parts[c].users]
    items = [item_ext[i] for c in order for i in parts[c].items]
    times = np.asarray([t for c in order for t in parts[c].times], dtype=np.float64)

    if opts.name:
        name = opts.name
    elif index_path is not None:
        name = index_path.stem
    else:
        name = split_paths[SPLIT_TRAIN].resolve().parent.name
    ds = leave_one_out(
        name, users, items, times, kcore=0, item_text=texts,
        provenance={
            "format": "rechorus",
            "source": str(split_paths[SPLIT_TRAIN].resolve().parent),
            "item2index": str(index_path.resolve()) if index_path else None,
            "text": str(text_path.resolve()) if text_path else None,
            "split": "as given: dev.csv = valid, test.csv = test (checked to be leave-one-out by time)",
            "kcore": None,
        },
    )
    if len(ds.interactions) != len(users):
        raise InputFormatError(
            split_paths[SPLIT_TRAIN], f"{len(users) - len(ds.interactions)} interactions were dropped "
            "by the leave-one-out split; every user needs at least 3"
        )
    _verify_split(ds, parts, item_ext)
    return ds
