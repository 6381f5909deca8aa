"""Importers turn a source layout into a :class:`~missrec.data.store.Dataset`.

Each is ``import_X(sources: list[Path], options: ImportOptions) -> Dataset`` and raises
:class:`~missrec.errors.InputFormatError` (file, line, what was expected) on malformed
input, before anything is written.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ...errors import MissrecError
from ..nonfinite import NonFinite
from ..store import Dataset


@dataclass
class ImportOptions:
    """Options shared by the importers (each uses the ones that apply to its format)."""

    name: str | None = None
    """Dataset name (default: derived from the source)."""
    kcore: int = 5
    """Keep users and items with at least this many interactions (repeated to a fixed point)."""
    text_fields: list[str] = field(default_factory=list)
    """Item fields joined into the item text (format-specific default when empty)."""
    images_dir: Path | None = None
    """Directory of local image files named by item id (no downloading)."""
    skip_bad_lines: bool = False
    """Skip (and count) malformed lines of raw dumps instead of stopping (amazon format)."""
    max_len: int = 50
    """History length that the source's ``item_id_list`` was cut to (UniSRec layout)."""
    non_finite: NonFinite = "error"
    """Feature rows holding NaN or ±inf (UniSRec layout's feature files): 'error' stops the
    import naming the file, item and column; 'missing' marks those items as lacking the
    modality."""


IMPORTERS: dict[str, str] = {
    "unisrec": "missrec.data.importers.unisrec:import_unisrec",
    "recbole": "missrec.data.importers.recbole:import_recbole",
    "rechorus": "missrec.data.importers.rechorus:import_rechorus",
    "amazon": "missrec.data.importers.amazon:import_amazon",
}


def get_importer(fmt: str) -> Callable[[list[Path], ImportOptions], Dataset]:
    if fmt not in IMPORTERS:
        raise MissrecError(f"unknown import format {fmt!r}; expected one of {', '.join(IMPORTERS)}")
    module, func = IMPORTERS[fmt].split(":")
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as e:
        raise MissrecError(f"import format {fmt!r} is not available in this build ({e})") from None
    return getattr(mod, func)
