"""Fill a store's modality matrices from its items' text and images.

Missing modalities are first-class: an item with no text, no resolvable image, or an image
that cannot be decoded gets presence ``False`` and an all-zero row that nothing may read --
never a fake "feature" of zeros passed off as content.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np

from ..data.nonfinite import NonFinite, non_finite_rows
from ..data.store import Dataset, ModalityFeatures, read_store, write_features
from .base import Encoder

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp")


@dataclass
class FillReport:
    """What one modality's fill did (printed by the CLI)."""

    modality: str
    source: str
    dim: int
    n_items: int
    n_present: int
    n_no_input: int
    """Items with no text / no image reference that resolved to a local file."""
    n_failed: int
    """Items whose input could not be encoded (e.g. an unreadable image file)."""
    n_cached: int
    n_computed: int
    seconds: float
    first_error: str | None = None

    def summary(self) -> str:
        pct = self.n_present / self.n_items if self.n_items else 0.0
        line = (f"{self.modality}: {self.n_present:,} / {self.n_items:,} items present ({pct:.1%}), "
                f"{self.dim}-d, {self.source}; {self.n_computed:,} encoded, {self.n_cached:,} from cache, "
                f"{self.seconds:.1f} s")
        if self.n_no_input:
            line += f"; {self.n_no_input:,} without {self.modality}"
        if self.n_failed:
            line += f"; {self.n_failed:,} unreadable (first: {self.first_error})"
        return line


def text_inputs(ds: Dataset) -> list[str | None]:
    """Each real item's text (index order, padding excluded); ``None`` where it is empty."""
    return [t.strip() if t and t.strip() else None for t in ds.item_text[1:]]


def _dir_index(images_dir: Path) -> tuple[dict[str, Path], dict[str, Path]]:
    """File name -> path and stem -> path (first of :data:`IMAGE_EXTENSIONS` order wins)."""
    by_name: dict[str, Path] = {}
    by_stem: dict[str, Path] = {}
    rank = {ext: r for r, ext in enumerate(IMAGE_EXTENSIONS)}
    best: dict[str, int] = {}
    with os.scandir(images_dir) as it:
        for entry in it:
            if not entry.is_file():
                continue
            p = Path(entry.path)
            by_name[p.name] = p
            r = rank.get(p.suffix.lower())
            if r is not None and r < best.get(p.stem, len(rank)):
                best[p.stem] = r
                by_stem[p.stem] = p
    return by_name, by_stem


def resolve_image(item_id: str, ref: str | None, images_dir: Path | None,
                  index: tuple[dict[str, Path], dict[str, Path]] | None = None) -> Path | None:
    """A local image file for one item, or ``None``. Nothing is downloaded.

    Tried in order: ``ref`` as a local path (relative paths against ``images_dir``); the file
    in ``images_dir`` named like the last segment of ``ref``'s URL; ``images_dir/<item_id>``
    with a common image extension.
    """
    if ref and "://" not in ref:
        p = Path(ref).expanduser()
        if not p.is_absolute() and images_dir is not None:
            p = images_dir / p
        if p.is_file():
            return p
    if images_dir is None:
        return None
    by_name, by_stem = index if index is not None else _dir_index(images_dir)
    if ref and "://" in ref:
        base = unquote(os.path.basename(urlparse(ref).path))
        if base in by_name:
            return by_name[base]
    return by_stem.get(item_id)


def image_inputs(ds: Dataset, images_dir: Path | None) -> list[Path | None]:
    """Each real item's local image file (index order), ``None`` where there is none."""
    index = _dir_index(images_dir) if images_dir is not None else None
    return [resolve_image(ds.items.ids[i], ds.item_image[i], images_dir, index)
            for i in range(1, len(ds.items))]


def encode_items(encoder: Encoder, inputs: list, modality: str, item_ids: list[str] | None = None,
                 non_finite: NonFinite = "error") -> tuple[ModalityFeatures, FillReport]:
    """Encode the items that have an input; build the matrix (row 0 padding) and presence.

    An encoder output holding NaN or ±inf is an error naming the item (``item_ids``, index
    order without padding), or with ``non_finite='missing'`` a failed input like any other.
    """
    have = [i for i, x in enumerate(inputs) if x is not None]
    res = encoder.encode_partial([inputs[i] for i in have])
    n = len(inputs)
    dim = res.matrix.shape[1]
    matrix = np.zeros((n + 1, dim), dtype=np.float32)
    present = np.zeros(n + 1, dtype=bool)
    rows = np.asarray(have, dtype=np.int64) + 1
    matrix[rows] = res.matrix
    present[rows] = res.ok
    ids = item_ids if item_ids is not None else [str(i) for i in range(1, n + 1)]
    bad = present[1:] & non_finite_rows(f"{encoder.identity} ({modality})", matrix[1:], ids, non_finite,
                                        what="output row")
    present[1:] &= ~bad
    matrix[~present] = 0.0  # rows of failed inputs were never valid features
    errors = dict(res.errors)
    errors.update({have.index(i): "NaN or infinite features" for i in np.flatnonzero(bad).tolist()})
    first_error = errors[min(errors)] if errors else None
    report = FillReport(modality=modality, source=encoder.identity, dim=dim, n_items=n,
                        n_present=int(present.sum()), n_no_input=n - len(have), n_failed=len(errors),
                        n_cached=res.n_cached, n_computed=res.n_computed, seconds=res.seconds,
                        first_error=first_error)
    return ModalityFeatures(matrix, present, source=encoder.identity), report


def fill_features(store: str | Path, *, text: Encoder | None = None, image: Encoder | None = None,
                  images_dir: Path | None = None, non_finite: NonFinite = "error") -> list[FillReport]:
    """Encode the store's item text and/or images and write them as the ``text`` / ``image``
    modalities (each written as soon as it is complete). ``non_finite``: see
    :func:`encode_items`."""
    ds = read_store(store, modalities=[])
    reports = []
    for modality, encoder in (("text", text), ("image", image)):
        if encoder is None:
            continue
        if encoder.modality != modality:
            raise ValueError(f"{encoder.name} encodes {encoder.modality}, not {modality}")
        inputs = text_inputs(ds) if modality == "text" else image_inputs(ds, images_dir)
        feats, report = encode_items(encoder, inputs, modality, ds.items.ids[1:], non_finite)
        write_features(store, modality, feats)
        reports.append(report)
    return reports
