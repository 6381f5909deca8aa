"""``missrec features``: fill a store's modality matrices and presence masks."""

from __future__ import annotations

import re
from pathlib import Path

import click
import torch

from ..data.nonfinite import NON_FINITE_CHOICES
from ..data.store import read_schema
from ..features.attach import attach_many
from ..features.fill import fill_features
from ..features.registry import make_encoder
from .common import quiet_option, show_progress

_MODALITY = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")


def _parse_attach(values: tuple[str, ...]) -> list[tuple[str, Path]]:
    out = []
    for v in values:
        name, sep, path = v.partition("=")
        if not sep or not path or not _MODALITY.match(name):
            raise click.BadParameter(f"{v!r}: expected MODALITY=FEATURES_FILE, e.g. image=Scientific.feat3CLS",
                                     param_hint="--attach")
        out.append((name, Path(path).expanduser()))
    names = [n for n, _ in out]
    if len(set(names)) != len(names):
        raise click.BadParameter("each modality may be attached once", param_hint="--attach")
    return out


@click.command("features")
@click.argument("store", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--text", "text_spec", metavar="ENCODER", default=None,
              help="Encode item text: minilm | clip:CHECKPOINT.")
@click.option("--image", "image_spec", metavar="ENCODER", default=None,
              help="Encode item images: efficientnet-lite0 | clip:CHECKPOINT.")
@click.option("--attach", "attach", multiple=True, metavar="MODALITY=FILE",
              help="Attach precomputed features joined by item id: a UniSRec X.feat1CLS/X.feat3CLS "
                   "(with its sibling X.item2index) or F.npy (with F.ids or a sibling *.item2index). Repeatable.")
@click.option("--attach-dim", default=512, show_default=True, type=click.IntRange(min=1),
              help="Columns of a raw float32 --attach file.")
@click.option("--non-finite", type=click.Choice(NON_FINITE_CHOICES), default="error", show_default=True,
              help="Feature rows holding NaN or inf (attached files, encoder outputs): stop with an error "
                   "naming the file, item and column, or treat those items as missing the modality.")
@click.option("--images-dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Local image files: named as in the store, after the image URL's file name, "
                   "or ITEM_ID.jpg/.png/... (nothing is downloaded).")
@click.option("--clip-arch", default="ViT-B-32", show_default=True,
              help="open_clip architecture for clip:CHECKPOINT, or a model config .json "
                   "(OpenAI's original weights: ViT-B-32-quickgelu).")
@click.option("--batch-size", default=32, show_default=True, type=click.IntRange(min=1),
              help="Inputs per model call.")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="CPU threads for the encoders (default: torch's, one per core). On a busy machine "
                   "1 can be faster: idle-waiting threads stall each other.")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Feature cache (default: $MISSREC_CACHE or ~/.cache/missrec).")
@click.option("--no-cache", is_flag=True, help="Neither read nor write the feature cache.")
@quiet_option
def features(store: Path, text_spec: str | None, image_spec: str | None, attach: tuple[str, ...],
             attach_dim: int, non_finite: str, images_dir: Path | None, clip_arch: str, batch_size: int,
             threads: int | None, cache_dir: Path | None, no_cache: bool, quiet: bool) -> None:
    """Fill STORE's feature matrices: encode item text/images and/or attach precomputed features.

    Items lacking a modality (no text, no local image, unreadable image, not in an attached
    file, or an all-zero attached row) are marked absent in the presence mask.
    """
    attached = _parse_attach(attach)
    if not (text_spec or image_spec or attached):
        raise click.UsageError("nothing to do: give --text, --image and/or --attach")
    for name, _ in attached:
        if (name == "text" and text_spec) or (name == "image" and image_spec):
            raise click.UsageError(f"--{name} and --attach {name}=... both fill {name!r}; give one")
    read_schema(store)  # fail fast, before loading any model, if STORE is not a store

    if threads is not None:
        torch.set_num_threads(threads)
    common = dict(batch_size=batch_size, cache_dir=cache_dir, use_cache=not no_cache,
                  progress=show_progress(quiet), clip_arch=clip_arch)
    text_enc = make_encoder(text_spec, "text", **common) if text_spec else None
    image_enc = make_encoder(image_spec, "image", **common) if image_spec else None
    for enc in (text_enc, image_enc):
        if enc is not None:
            enc.identity  # fails now (missing weights/extra) rather than after the attaches
    for report in attach_many(store, attached, dim=attach_dim, non_finite=non_finite):
        click.echo(report.summary())
    if text_enc is not None or image_enc is not None:
        for report in fill_features(store, text=text_enc, image=image_enc, images_dir=images_dir,
                                    non_finite=non_finite):
            click.echo(report.summary())


COMMANDS = [features]
