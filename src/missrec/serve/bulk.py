"""Catalogue loads from a file: ``missrec items add BUNDLE FILE.jsonl``.

One item per line, in the shape of ``PUT /items`` items (``{"id", "text", "image",
"features"}``). The whole file is checked first (JSON, fields, vector widths, ids given
twice), so a bad line stops the load before anything is applied, as ``FILE:LINE: what``.
Then the items are added in chunks: each chunk is one catalogue change (one log entry,
embedded before it is applied), so a chunk is in the bundle whole or not at all.

Resuming: ids already in the catalogue (live) are skipped, whatever their content, so a load
run again after it was killed goes on from the first chunk it had not finished. With
``replace=True`` (a catalogue refresh) they are put again from the file instead, unless the
line gives exactly the content the item was last put with (the digest the catalogue keeps
per item): a daily refresh of a large catalogue embeds only what changed, and a refresh run
again after it was killed goes on where it stopped.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from ..errors import MissrecError
from .bundle import is_bundle, read_manifest
from .catalogue import NewItem
from .content import sent_vectors
from .errors import RequestError
from .journal import BundleBusy
from .recommender import Recommender

_ITEM_FIELD = re.compile(r"^items\[(\d+)\]\.?(.*)$")


@dataclass
class LoadReport:
    lines: int = 0
    """Items in the file."""
    added: int = 0
    present: int = 0
    """Skipped: their id was in the catalogue already."""
    replaced: int = 0
    """Put again over an item of the same id (``replace``)."""
    unchanged: int = 0
    """Skipped by ``replace``: the line gives the content the item was last put with."""
    chunks: int = 0
    """Chunks applied by this run."""
    catalogue_size: int = 0
    warnings: list[str] = field(default_factory=list)


def add_file(bundle: Path, path: Path, chunk: int = 500, progress: bool = False,
             on_warning: Callable[[str], None] = lambda line: None, replace: bool = False) -> LoadReport:
    """Add the items of JSON-lines file ``path`` to ``bundle`` (the only writer while it runs);
    ids already there are skipped, or with ``replace`` put again from the file where their
    content differs from what they were last put with."""
    check_bundle(bundle)
    modalities = dict(read_manifest(bundle)["modalities"])
    report = LoadReport(lines=check_file(path, modalities))
    rec = open_writer(bundle)
    try:
        cat = rec.catalogue
        present = {i: cat.state.digest[r] for i, r in cat.index.items() if cat.state.alive[r]}
        with tqdm(total=report.lines, desc="items add", unit="item", disable=not progress) as bar:
            for lines in _chunks(_items(path), chunk):
                todo = [(n, it) for n, it in lines
                        if it.id not in present or (replace and it.digest() != present[it.id])]
                skipped = len(lines) - len(todo)
                if replace:
                    report.unchanged += skipped
                else:
                    report.present += skipped
                if todo:
                    res = _add(rec, path, todo)
                    report.added += res["added"]
                    report.replaced += res["replaced"]
                    report.chunks += 1
                    for w in res.get("warnings", []):
                        report.warnings.append(w)
                        on_warning(w)
                bar.update(len(lines))
        rec.compact()  # the next start need not replay the load
        report.catalogue_size = rec.n_items
    finally:
        rec.close()
    return report


def check_bundle(bundle: Path) -> None:
    if not is_bundle(bundle):
        raise MissrecError(f"{bundle}: not a serving bundle (make one with `missrec export RUN BUNDLE`)")


def open_writer(bundle: Path) -> Recommender:
    """``bundle`` opened as its only writer; one error line if it is not a bundle or a server
    (or another command) holds it."""
    check_bundle(bundle)
    try:
        return Recommender(bundle)
    except BundleBusy:
        raise MissrecError(f"{bundle}: a server (or another command) holds this bundle; change its catalogue "
                           "through that server (PUT /items), or stop it and run this again") from None


def check_file(path: Path, modalities: dict[str, dict]) -> int:
    """The number of items in ``path``; raises ``FILE:LINE: what`` for the first bad line."""
    seen: dict[str, int] = {}
    for n, it in _items(path):
        if it.id in seen:
            raise MissrecError(f"{path}:{n}: id {it.id!r} is on line {seen[it.id]} already")
        seen[it.id] = n
        try:
            sent_vectors(it, modalities, "item")
        except RequestError as e:
            raise MissrecError(f"{path}:{n}: {e.field.removeprefix('item.')}: {e.message}") from None
        if not it.features and it.text is None and it.image is None:
            raise MissrecError(f"{path}:{n}: the item has no content: give 'text', 'image' or 'features'")
    return len(seen)


def _items(path: Path) -> Iterator[tuple[int, NewItem]]:
    """(line number, item) of every non-blank line; ``FILE:LINE: what`` for a bad one."""
    with open(path, "rb") as f:  # bytes: a line that is not UTF-8 is a bad line, not a crash
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                yield n, NewItem.parse(json.loads(line), "item")
            except json.JSONDecodeError as e:
                raise MissrecError(f"{path}:{n}: not valid JSON ({e.msg} at character {e.pos + 1})") from None
            except UnicodeDecodeError:
                raise MissrecError(f"{path}:{n}: not UTF-8 text") from None
            except RequestError as e:
                where = e.field.removeprefix("item").lstrip(".")
                raise MissrecError(f"{path}:{n}: {where + ': ' if where else ''}{e.message}") from None


def _chunks(items: Iterator[tuple[int, NewItem]], size: int) -> Iterator[list[tuple[int, NewItem]]]:
    batch: list[tuple[int, NewItem]] = []
    for entry in items:
        batch.append(entry)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _add(rec: Recommender, path: Path, todo: list[tuple[int, NewItem]]) -> dict:
    try:
        return rec.add_items([it for _, it in todo])
    except RequestError as e:  # found while embedding: name the line, not the chunk's position
        m = _ITEM_FIELD.match(e.field)
        if m is None:
            raise MissrecError(f"{path}: {e.message}") from None
        where = f"{m.group(2)}: " if m.group(2) else ""
        raise MissrecError(f"{path}:{todo[int(m.group(1))][0]}: {where}{e.message}") from None
