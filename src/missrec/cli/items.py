"""``missrec items add``: load items into a bundle's catalogue from a JSON-lines file;
``missrec items calibrate``: give the items added after training their share of the top."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import click
import numpy as np
import torch

from ..data.batching import build_examples
from ..data.store import read_store
from ..errors import MissrecError
from ..serve.bulk import add_file, open_writer
from ..serve.errors import RequestError
from .common import echo_json, quiet_option, show_progress


@click.group()
def items() -> None:
    """Change a bundle's catalogue offline (a running server takes PUT /items instead)."""


@items.command("add")
@click.argument("bundle", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--chunk", default=500, show_default=True, type=click.IntRange(1),
              help="Items per catalogue change (each is applied whole or not at all).")
@click.option("--threads", default=None, type=click.IntRange(1),
              help="torch threads for embedding texts and images (default: torch's).")
@click.option("--replace", is_flag=True,
              help="Put items whose id is in the catalogue already again from FILE (a catalogue "
                   "refresh), instead of skipping them; lines whose content is what the item was "
                   "last put with are skipped (counted as unchanged).")
@quiet_option
def add(bundle: Path, file: Path, chunk: int, threads: int | None, replace: bool, quiet: bool) -> None:
    """Add the items of FILE (one JSON object a line, as PUT /items items) to BUNDLE.

    Ids already in the catalogue are skipped, so a load that was stopped can be run again;
    with --replace they are replaced by the file's lines, except those that are unchanged."""
    if threads is not None:
        torch.set_num_threads(threads)
    warn = (lambda line: None) if quiet else (lambda line: click.echo(f"warning: {line}", err=True))
    report = add_file(bundle, file, chunk, progress=show_progress(quiet), on_warning=_first(warn, 5),
                      replace=replace)
    out = dataclasses.asdict(report)
    out["warnings"] = len(report.warnings)
    echo_json(out)


@items.command("calibrate")
@click.argument("bundle", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--data", "store", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="A store whose users' histories (of the bundle's trained items) the shares are measured over.")
@click.option("--split", type=click.Choice(["train", "valid", "test"]), default="valid", show_default=True,
              help="Whose histories: the users' of this split of --data (their targets are not read).")
@click.option("--users", default=2000, show_default=True, type=click.IntRange(1),
              help="At most this many histories, drawn from seed 0.")
@click.option("--k", default=10, show_default=True, type=click.IntRange(1), help="The list length.")
@click.option("--offset", type=float, default=None,
              help="Set this offset instead of measuring one (0: score added items as the model does).")
@click.option("--keep", is_flag=True,
              help="Keep the histories in the bundle and find the offset again after every later write "
                   "(PUT /items, DELETE, items add).")
@quiet_option
def calibrate(bundle: Path, store: Path | None, split: str, users: int, k: int, offset: float | None,
              keep: bool, quiet: bool) -> None:
    """Give the items added to BUNDLE after training their share of the top K.

    Finds the one offset on their scores at which, over the histories of --data's users,
    they take as many of the top K places as their share of the catalogue, and keeps it in
    the bundle (docs/serving.md#new-items-exposure). Prints the offset and the shares."""
    if (store is None) == (offset is None):
        raise click.UsageError("give --data (to measure the offset) or --offset (to set one)")
    rec = open_writer(bundle)
    try:
        if offset is not None:
            echo_json(rec.set_added_offset(offset))
            return
        ds = read_store(store, modalities=[])
        examples = build_examples(ds, split)
        chosen = np.random.default_rng(0).permutation(len(examples))[:users]
        histories = [[ds.items.external(int(i)) for i in examples.history(u)] for u in sorted(chosen)]
        echo_json(rec.calibrate_added(histories, k, keep=keep).to_json())
    except RequestError as e:
        raise MissrecError(f"{bundle}: {e.message}") from None
    finally:
        rec.compact()
        rec.close()


def _first(show, n: int):
    """``show`` for the first ``n`` lines, then one line saying how many more were left out."""
    count = 0

    def once(line: str) -> None:
        nonlocal count
        count += 1
        if count <= n:
            show(line)
        elif count == n + 1:
            show("more warnings like these left out (their count is in the summary)")
    return once


COMMANDS = [items]
