"""``missrec items add``: load items into a bundle's catalogue from a JSON-lines file."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import click
import torch

from ..serve.bulk import add_file
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
