"""Attach features computed elsewhere, joined to the store's items by external id (ASIN).

Sources:

* UniSRec / MISSRec layout: ``X.feat1CLS`` / ``X.feat3CLS`` (any name): raw little-endian
  float32, no header, ``dim`` columns (512 for MISSRec's CLIP features); row ``i`` belongs to
  the item with index ``i`` in the sibling ``X.item2index`` (``ID<TAB>index`` lines).
* NumPy: ``F.npy`` (float ``[rows, dim]``) with row ids in a sibling ``F.ids`` (one id per
  line) or, failing that, a sibling ``*.item2index``.

Store items missing from the source, and all-zero source rows (the official layout's marker
of a missing image), get presence ``False``. Rows holding NaN or ±inf are an error naming
the file, the row's id and the column, unless ``non_finite='missing'`` asks for them to be
treated like all-zero rows.
"""

from __future__ import annotations

from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data.importers._text import iter_lines, separator_hint
from ..data.nonfinite import NonFinite, finite_rows, non_finite_rows
from ..data.store import ModalityFeatures, load_npy, read_store, write_features
from ..data.vocab import Vocab
from ..errors import InputFormatError, MissrecError

DEFAULT_DIM = 512


@dataclass
class AttachReport:
    """What one attach did (printed by the CLI)."""

    modality: str
    source: str
    ids_file: str
    dim: int
    n_items: int
    n_present: int
    n_not_found: int
    """Store items with no row in the source."""
    n_zero_rows: int
    """Store items whose source row is all zeros (treated as absent)."""
    n_unused: int
    """Source rows whose id is not an item of the store."""
    n_non_finite: int = 0
    """Source rows holding NaN or ±inf, treated as missing (``non_finite='missing'``); they
    are also counted in ``n_zero_rows`` when their id is a store item."""

    def summary(self) -> str:
        pct = self.n_present / self.n_items if self.n_items else 0.0
        line = (f"{self.modality}: {self.n_present:,} / {self.n_items:,} items present ({pct:.1%}), "
                f"{self.dim}-d, attached from {self.source} (ids: {self.ids_file}); "
                f"{self.n_not_found:,} items not in source, {self.n_zero_rows:,} all-zero rows, "
                f"{self.n_unused:,} source rows unused")
        if self.n_non_finite:
            line += f"; {self.n_non_finite:,} rows with NaN/inf treated as missing"
        return line


def find_item2index(path: Path) -> Path:
    """The ``*.item2index`` beside ``path``: ``<prefix>.item2index`` where ``<prefix>`` is the
    name up to its first dot, else the only ``*.item2index`` in the folder."""
    prefix = path.name.split(".")[0]
    candidate = path.with_name(f"{prefix}.item2index")
    if candidate.is_file():
        return candidate
    found = sorted(path.parent.glob("*.item2index"))
    if len(found) == 1:
        return found[0]
    what = "none" if not found else f"{len(found)} candidates ({', '.join(p.name for p in found)})"
    raise InputFormatError(path, f"needs its row ids in a sibling {prefix}.item2index (found {what})")


def read_item2index(path: Path) -> list[str]:
    """Ids by row from an ``ID<TAB>index`` file; indexes must be exactly 0..n-1."""
    by_index: dict[int, str] = {}
    with closing(iter_lines(path)) as lines:
        for lineno, line in lines:
            parts = line.split("\t")
            if len(parts) != 2 or not parts[1].strip().lstrip("-").isdigit():
                raise InputFormatError(path, f"expected 'ID<TAB>index', got {line[:80]!r}{separator_hint(line)}",
                                       lineno)
            ext, idx = parts[0].strip(), int(parts[1])
            if idx in by_index:
                raise InputFormatError(path, f"index {idx} appears twice (also for {by_index[idx]!r})", lineno)
            by_index[idx] = ext
    n = len(by_index)
    if n and (min(by_index) != 0 or max(by_index) != n - 1):
        raise InputFormatError(path, f"indexes must be 0..{n - 1} (one per line), found {min(by_index)}..{max(by_index)}")
    return [by_index[i] for i in range(n)]


def read_ids(path: Path) -> list[str]:
    """One id per line (blank lines ignored)."""
    with closing(iter_lines(path)) as lines:
        return [line.strip() for _, line in lines]


def read_raw_features(path: Path, dim: int) -> np.ndarray:
    """A headerless little-endian float32 file of ``dim`` columns -> ``[rows, dim]``."""
    if dim < 1:
        raise MissrecError(f"--attach-dim {dim}: expected a positive number of columns")
    size = path.stat().st_size
    row_bytes = 4 * dim
    if size % row_bytes:
        raise InputFormatError(path, f"size {size:,} bytes is not a multiple of one row "
                                     f"({dim} float32 columns = {row_bytes:,} bytes); wrong --attach-dim?")
    return np.fromfile(path, dtype="<f4").reshape(-1, dim)


def read_npy_features(path: Path) -> np.ndarray:
    """A 2-d real-valued ``.npy`` array with at least one column (never unpickled)."""
    matrix = load_npy(path, ".npy array")
    real = np.issubdtype(matrix.dtype, np.floating) or np.issubdtype(matrix.dtype, np.integer)
    if matrix.ndim != 2 or not real or matrix.shape[1] == 0:
        raise InputFormatError(path, f"expected a 2-d array of real numbers with at least one column, "
                                     f"got {matrix.dtype} {matrix.shape}")
    return matrix


def read_feature_source(path: str | Path, dim: int = DEFAULT_DIM, non_finite: NonFinite = "error"
                        ) -> tuple[list[str], np.ndarray, Path]:
    """Ids (by row), the float32 matrix and the file the ids came from.

    Rows holding NaN or ±inf (or values beyond float32's range) are an error naming the
    row, its id and the column; with ``non_finite='missing'`` they are zeroed instead, so
    the join marks those items absent.
    """
    ids, matrix, ids_file, _ = _read_source(Path(path), dim, non_finite)
    return ids, matrix, ids_file


def _read_source(path: Path, dim: int, non_finite: NonFinite) -> tuple[list[str], np.ndarray, Path, int]:
    """:func:`read_feature_source` plus the number of non-finite rows it zeroed."""
    if not path.is_file():
        raise MissrecError(f"{path}: feature file not found")
    if path.suffix == ".npy":
        matrix = read_npy_features(path)
        ids_file = path.with_suffix(".ids")
        ids = read_ids(ids_file) if ids_file.is_file() else None
        if ids is None:
            ids_file = find_item2index(path)
            ids = read_item2index(ids_file)
    else:
        matrix = read_raw_features(path, dim)
        ids_file = find_item2index(path)
        ids = read_item2index(ids_file)
    if matrix.shape[0] != len(ids):
        raise InputFormatError(path, f"{matrix.shape[0]:,} rows, expected {len(ids):,} "
                                     f"(one per id in {ids_file})")
    if not ids:
        raise InputFormatError(path, f"holds no rows; expected one row per id in {ids_file}")
    if len(set(ids)) != len(ids):
        raise InputFormatError(ids_file, "ids are not unique")
    bad = non_finite_rows(path, matrix, ids, non_finite)
    with np.errstate(over="ignore"):
        matrix = np.asarray(matrix, dtype=np.float32)
    overflow = ~bad & ~finite_rows(matrix)
    if overflow.any() and non_finite == "error":
        row = int(np.argmax(overflow))
        raise InputFormatError(path, f"row {row} (item {ids[row]!r}) holds values beyond the float32 range "
                                     "(about ±3.4e38); expected finite float32 numbers")
    matrix[bad | overflow] = 0.0
    return ids, matrix, ids_file, int((bad | overflow).sum())


def join_features(items: Vocab, ids: list[str], matrix: np.ndarray, source: str = ""
                  ) -> tuple[ModalityFeatures, dict[str, int]]:
    """Rows of ``matrix`` placed at the store index of their id; absent and all-zero rows
    get presence ``False``. Returns the features and join counts."""
    n = len(items)
    out = np.zeros((n, matrix.shape[1]), dtype=np.float32)
    present = np.zeros(n, dtype=bool)
    idx = items.lookup(ids)  # 0 (padding) for ids the store does not have
    found = idx > 0
    nonzero = np.any(matrix != 0, axis=1)
    use = found & nonzero
    out[idx[use]] = matrix[use]
    present[idx[use]] = True
    counts = {
        "n_not_found": items.size - int(found.sum()),
        "n_zero_rows": int((found & ~nonzero).sum()),
        "n_unused": int((~found).sum()),
    }
    return ModalityFeatures(out, present, source=source), counts


def attach_features(store: str | Path, modality: str, path: str | Path, dim: int = DEFAULT_DIM,
                    non_finite: NonFinite = "error") -> AttachReport:
    """Read a feature source, join it to the store's items by id and write it as ``modality``.

    ``non_finite``: 'error' (rows holding NaN or ±inf stop the attach, naming the file, item
    and column) or 'missing' (such items are marked as lacking ``modality``).
    """
    return attach_many(store, [(modality, Path(path))], dim, non_finite)[0]


def attach_many(store: str | Path, sources: list[tuple[str, Path]], dim: int = DEFAULT_DIM,
                non_finite: NonFinite = "error") -> list[AttachReport]:
    """:func:`attach_features` for several ``(modality, path)`` pairs: every source is read
    and checked before any is written, so a bad one leaves the store as it was."""
    ds = read_store(store, modalities=[])
    joined = []
    for modality, path in sources:
        ids, matrix, ids_file, n_non_finite = _read_source(Path(path), dim, non_finite)
        source = f"attach:{Path(path).resolve()}"
        feats, counts = join_features(ds.items, ids, matrix, source=source)
        if counts["n_unused"] == len(ids) and ids and ds.n_items:
            # Joining by the wrong kind of id (e.g. internal indexes) would otherwise silently
            # produce an all-absent modality.
            raise InputFormatError(ids_file, f"none of its {len(ids):,} ids is an item of {store} "
                                             f"(source ids look like {ids[0]!r}, store ids like {ds.items.ids[1]!r})")
        report = AttachReport(modality=modality, source=str(path), ids_file=str(ids_file), dim=feats.dim,
                              n_items=ds.n_items, n_present=int(feats.present[1:].sum()),
                              n_non_finite=n_non_finite, **counts)
        joined.append((modality, feats, report))
    for modality, feats, _ in joined:
        write_features(store, modality, feats)
    return [report for _, _, report in joined]
