"""NaN and infinite values in feature matrices: an error, or (on request) a missing modality.

A non-finite feature reaches every score it touches and from there every metric, so it is
stopped where a feature file enters the program (import, attach, encoding) and again where
a store is read.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal, get_args

import numpy as np

from ..errors import InputFormatError, MissrecError

NonFinite = Literal["error", "missing"]
"""'error': a row holding NaN or ±inf stops the program, naming the file, item and column.
'missing': such rows are zeroed and the item is marked as lacking the modality."""
NON_FINITE_CHOICES: tuple[str, ...] = get_args(NonFinite)


_BLOCK = 1 << 16
"""Rows checked at once: bounds the temporary mask on large catalogues."""


def finite_rows(matrix: np.ndarray) -> np.ndarray:
    """Per row of a 2-d array: True where every value is finite."""
    out = np.empty(len(matrix), dtype=bool)
    for a in range(0, len(matrix), _BLOCK):
        out[a:a + _BLOCK] = np.isfinite(matrix[a:a + _BLOCK]).all(axis=1)
    return out


def _describe(value: float) -> str:
    return "NaN" if np.isnan(value) else ("+inf" if value > 0 else "-inf")


def non_finite_rows(path: str | Path, matrix: np.ndarray, ids: Sequence[str], policy: NonFinite = "error",
                    what: str = "row") -> np.ndarray:
    """Rows of ``matrix`` holding NaN or ±inf (a bool mask), after applying ``policy``.

    With 'error' the first such row raises :class:`InputFormatError` naming ``path``, the
    row, its item id (``ids[row]``) and the column; with 'missing' the mask is returned for
    the caller to mark those items absent.
    """
    if policy not in NON_FINITE_CHOICES:
        raise MissrecError(f"non_finite={policy!r}; expected one of {', '.join(NON_FINITE_CHOICES)}")
    bad = ~finite_rows(matrix)
    if policy == "error" and bad.any():
        row = int(np.argmax(bad))
        col = int(np.argmax(~np.isfinite(matrix[row])))
        raise InputFormatError(
            path, f"{what} {row} (item {ids[row]!r}), column {col} holds {_describe(matrix[row, col])}; "
            f"expected finite numbers ({int(bad.sum()):,} such rows; --non-finite missing treats them "
            "as items without this modality)"
        )
    return bad


def check_store_matrix(store: str | Path, modality: str, matrix: np.ndarray, item_ids: Sequence[str]) -> None:
    """Refuse a stored feature matrix holding a non-finite value (row 0 is padding)."""
    finite = finite_rows(matrix)
    if not finite.all():
        row = int(np.argmin(finite))
        item = item_ids[row] if row < len(item_ids) else "?"
        raise MissrecError(
            f"{store}: modality {modality!r} holds NaN or infinite values ({int((~finite).sum()):,} row(s), "
            f"first: item {item!r}, index {row}); re-attach or re-encode it with `missrec features`"
        )
