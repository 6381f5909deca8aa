"""RecBole atomic files: ``X.inter`` (+ optional ``X.item``).

Atomic files are tab-separated; the first line names every column as ``field:type`` with
type one of ``token``, ``token_seq``, ``float``, ``float_seq``. The ``.inter`` file must
have ``user_id:token``, ``item_id:token`` and ``timestamp:float``; the ``.item`` file, when
present, ``item_id:token`` plus the fields that make up the item text.

The interactions are k-core filtered (``ImportOptions.kcore``), ordered by time (file order
breaks ties) and split leave-one-out (:func:`missrec.data.splits.leave_one_out`). The item
text joins the chosen ``.item`` fields Amazon style, e.g. ``"Toy Story. 1995. Animation
Children's Comedy."``; by default every ``token`` / ``token_seq`` field other than
``item_id``, in header order.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ...errors import InputFormatError, MissrecError
from ..splits import kcore_mask, leave_one_out
from ..store import Dataset
from . import ImportOptions
from ._text import first_line, iter_lines, join_text, parse_number, require_value, separator_hint, split_row

FIELD_TYPES = ("token", "token_seq", "float", "float_seq")
USER_FIELD, ITEM_FIELD, TIME_FIELD = "user_id", "item_id", "timestamp"
INTER_REQUIRED = {USER_FIELD: "token", ITEM_FIELD: "token", TIME_FIELD: "float"}
TEXT_TYPES = ("token", "token_seq")


@dataclass
class AtomicTable:
    """The columns that were asked for, as strings, with each row's line number."""

    path: Path
    fields: dict[str, str]
    columns: dict[str, list[str]] = field(default_factory=dict)
    lines: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.lines)


def parse_header(path: Path, line: str, ln: int = 1) -> dict[str, str]:
    """``field:type`` columns -> ``{field: type}`` (in column order)."""
    cols = line.split("\t")
    hint = separator_hint(line)
    if len(cols) == 1 and hint:
        raise InputFormatError(path, f"header {line!r} is not tab-separated{hint}", ln)
    fields: dict[str, str] = {}
    for col in cols:
        col = col.strip()
        name, sep, typ = col.partition(":")
        if not sep or not name:
            raise InputFormatError(
                path, f"header column {col!r} is not 'field:type' (e.g. 'item_id:token')", ln
            )
        if typ not in FIELD_TYPES:
            raise InputFormatError(
                path, f"header column {col!r} has unknown type {typ!r}; expected one of {', '.join(FIELD_TYPES)}", ln
            )
        if name in fields:
            raise InputFormatError(path, f"header names field {name!r} twice", ln)
        fields[name] = typ
    return fields


def read_atomic(
    path: Path,
    *,
    required: dict[str, str],
    keep: list[str] | Callable[[dict[str, str]], list[str]],
    numeric: tuple[str, ...] = (),
    what: str = "field",
) -> AtomicTable:
    """Read an atomic file, checking the header has the ``required`` ``field: type`` pairs.

    Only the ``keep`` columns are stored (a list, or a function of the header's
    ``{field: type}`` that returns one); each must be in the header (``what`` names them in
    the error). ``numeric`` columns are checked to be numbers and ``required`` ``token``
    ones to be non-empty.
    """
    with closing(iter_lines(path)) as lines:
        ln, header = first_line(path, lines, "line of 'field:type' columns")
        fields = parse_header(path, header, ln)
        for name, typ in required.items():
            if name not in fields:
                raise InputFormatError(
                    path, f"header lacks the required field '{name}:{typ}' (it has: {', '.join(fields)})", ln
                )
            if fields[name] != typ:
                raise InputFormatError(
                    path, f"field {name!r} has type {fields[name]!r}; expected '{name}:{typ}'", ln
                )
        names = list(fields)
        if callable(keep):
            keep = keep(fields)
        for name in keep:
            if name not in fields:
                raise InputFormatError(
                    path, f"{what} {name!r} is not in the header (it has: {', '.join(fields)})", ln
                )
        pos = {name: names.index(name) for name in keep}
        nonempty = [n for n in keep if required.get(n) == "token"]
        table = AtomicTable(path, fields, {n: [] for n in keep})
        cols_out = table.columns
        n_cols = len(names)
        for ln, line in lines:
            parts = split_row(path, line, ln, n_cols, header=names)
            for name in nonempty:
                require_value(path, parts[pos[name]], ln, name)
            for name in numeric:
                parse_number(path, parts[pos[name]], ln, name)
            for name, i in pos.items():
                cols_out[name].append(parts[i].strip())
            table.lines.append(ln)
        return table


def _locate(sources: list[Path]) -> tuple[Path, Path | None]:
    """The ``.inter`` file and the ``.item`` file (explicit, or next to the ``.inter``)."""
    inters: list[Path] = []
    items: list[Path] = []
    for src in map(Path, sources):
        if src.is_dir():
            found = sorted(src.glob("*.inter"))
            preferred = src / f"{src.name}.inter"
            if preferred in found:
                found = [preferred]
            if not found:
                raise InputFormatError(src, "directory holds no RecBole .inter file")
            if len(found) > 1:
                raise InputFormatError(
                    src, f"directory holds several .inter files ({', '.join(p.name for p in found)}); "
                    "give the one to import"
                )
            inters.append(found[0])
        elif src.suffix == ".inter":
            inters.append(src)
        elif src.suffix == ".item":
            items.append(src)
        elif not src.exists():
            raise InputFormatError(src, "no such file or directory")
        else:
            raise InputFormatError(src, "expected a directory, a RecBole .inter file or a .item file")
    if len(inters) != 1:
        raise InputFormatError(
            sources[0] if sources else ".", f"expected one RecBole .inter file, got {len(inters)}"
        )
    if len(items) > 1:
        raise InputFormatError(items[1], "expected at most one .item file")
    inter = inters[0]
    if not inter.is_file():
        raise InputFormatError(inter, "no such file")
    item = items[0] if items else inter.with_suffix(".item")
    return inter, (item if item.is_file() else None)


def _item_texts(path: Path, text_fields: list[str]) -> tuple[dict[str, str], list[str]]:
    """``{item_id: text}`` and the fields used (defaults resolved)."""
    def choose(fields: dict[str, str]) -> list[str]:
        chosen = text_fields or [n for n, t in fields.items() if t in TEXT_TYPES and n != ITEM_FIELD]
        return [ITEM_FIELD, *chosen]

    table = read_atomic(path, required={ITEM_FIELD: "token"}, keep=choose, what="text field")
    text_fields = [n for n in table.columns if n != ITEM_FIELD]
    texts: dict[str, str] = {}
    first_line: dict[str, int] = {}
    ids = table.columns[ITEM_FIELD]
    parts = [table.columns[n] for n in text_fields]
    for r, item in enumerate(ids):
        if item in texts:
            raise InputFormatError(
                path, f"item {item!r} appears twice (first at line {first_line[item]})", table.lines[r]
            )
        first_line[item] = table.lines[r]
        texts[item] = join_text([p[r] for p in parts])
    return texts, list(text_fields)


def import_recbole(sources: list[Path], opts: ImportOptions) -> Dataset:
    """Import RecBole atomic files; ``sources`` is a directory or a ``.inter`` file
    (optionally with an explicit ``.item`` file)."""
    inter_path, item_path = _locate(sources)
    if opts.text_fields and item_path is None:
        raise InputFormatError(
            inter_path.with_suffix(".item"), "no such file; it is needed for the requested text fields"
        )
    table = read_atomic(
        inter_path,
        required=INTER_REQUIRED,
        keep=[USER_FIELD, ITEM_FIELD, TIME_FIELD],
        numeric=(TIME_FIELD,),
    )
    if not len(table):
        raise InputFormatError(inter_path, "holds a header but no interactions", 2)
    timestamps = np.asarray(table.columns[TIME_FIELD], dtype=np.float64)

    texts: dict[str, str] = {}
    used_fields: list[str] = []
    if item_path is not None:
        texts, used_fields = _item_texts(item_path, list(opts.text_fields))

    users, items = table.columns[USER_FIELD], table.columns[ITEM_FIELD]
    keep = kcore_mask(np.asarray(users, dtype=object), np.asarray(items, dtype=object), opts.kcore)
    if not keep.all():
        idx = np.flatnonzero(keep).tolist()
        users, items, timestamps = [users[i] for i in idx], [items[i] for i in idx], timestamps[keep]
    if not users or max(Counter(users).values()) < 3:
        raise MissrecError(
            f"{inter_path}: no user keeps 3 or more interactions after the {opts.kcore}-core filter; "
            "lower --kcore"
        )

    name = opts.name or inter_path.stem
    ds = leave_one_out(
        name,
        users,
        items,
        timestamps,
        kcore=0,  # filtered above
        item_text=texts,
        provenance={
            "format": "recbole",
            "source": str(inter_path.resolve()),
            "item_file": str(item_path.resolve()) if item_path else None,
            "text_fields": used_fields,
            "kcore": opts.kcore,
            "rows_read": len(table),
            "split": "leave-one-out by timestamp (file order breaks ties)",
        },
    )
    return ds
