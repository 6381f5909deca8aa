"""``missrec data import`` and ``missrec data describe``."""

from __future__ import annotations

from pathlib import Path

import click

from ..data.corpus import CorpusShape, paper_corpus
from ..data.describe import describe, format_description
from ..data.importers import IMPORTERS, ImportOptions, get_importer
from ..data.nonfinite import NON_FINITE_CHOICES
from ..data.store import write_store
from .common import echo_json


@click.group()
def data() -> None:
    """Import and inspect dataset stores."""


@data.command("import")
@click.option("--format", "fmt", required=True, type=click.Choice(sorted(IMPORTERS)), help="Source layout.")
@click.option("--name", default=None, help="Dataset name (default: from the source).")
@click.option("--kcore", default=5, show_default=True, type=click.IntRange(min=0),
              help="k-core filter (timestamped formats; 0 or 1: no filtering).")
@click.option("--text-fields", default="", help="Comma-separated item fields joined into the item text.")
@click.option("--images-dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Local image files named by item id (amazon format).")
@click.option("--skip-bad-lines", is_flag=True,
              help="Skip and count malformed lines of raw dumps (amazon) instead of stopping.")
@click.option("--non-finite", type=click.Choice(NON_FINITE_CHOICES), default="error", show_default=True,
              help="Feature rows holding NaN or inf (unisrec .feat*CLS): stop with an error, or treat "
                   "those items as missing the modality.")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
def import_(fmt: str, name: str | None, kcore: int, text_fields: str, images_dir: Path | None,
            skip_bad_lines: bool, non_finite: str, paths: tuple[Path, ...]) -> None:
    """Import SRC... into a dataset store at DEST (the last path)."""
    if len(paths) < 2:
        raise click.UsageError("expected SOURCE... DEST")
    *sources, dest = paths
    for s in sources:
        if not s.exists():
            raise click.UsageError(f"{s}: no such file or directory")
    opts = ImportOptions(name=name, kcore=kcore,
                         text_fields=[f for f in text_fields.split(",") if f], images_dir=images_dir,
                         skip_bad_lines=skip_bad_lines, non_finite=non_finite)
    ds = get_importer(fmt)(list(sources), opts)
    write_store(ds, dest)
    click.echo(format_description(describe(dest)))


@data.command("synthetic")
@click.argument("dest", type=click.Path(path_type=Path))
@click.option("--users", default=CorpusShape.users, show_default=True, type=click.IntRange(min=1))
@click.option("--items", default=CorpusShape.items, show_default=True, type=click.IntRange(min=1))
@click.option("--dim", default=CorpusShape.dim, show_default=True, type=click.IntRange(min=1),
              help="Width of the text and image features.")
@click.option("--groups", default=CorpusShape.groups, show_default=True, type=click.IntRange(min=1),
              help="Interest groups the items fall into.")
@click.option("--seed", default=0, show_default=True)
@click.option("--name", default="corpus", show_default=True)
def synthetic_(dest: Path, users: int, items: int, dim: int, groups: int, seed: int, name: str) -> None:
    """Write a generated pre-training corpus to the store DEST (defaults: the paper's size,
    1.36 M users and 447 K items with text and image features)."""
    shape = CorpusShape(users=users, items=items, dim=dim, groups=min(groups, items))
    write_store(paper_corpus(shape, seed, name), dest)
    click.echo(format_description(describe(dest)))


@data.command("describe")
@click.argument("store", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of text.")
def describe_(store: Path, as_json: bool) -> None:
    """Print users, items, interactions, average sequence length and modality coverage."""
    info = describe(store)
    if as_json:
        echo_json(info)
    else:
        click.echo(format_description(info))
