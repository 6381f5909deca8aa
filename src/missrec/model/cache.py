"""Item caches: a catalogue's item side, ready for scoring, as rows that can be taken,
overwritten, appended and stored.

Every model encodes its items into one :class:`ItemCache` subclass (a frozen dataclass of
tensors). Each field has an item axis (``axis`` in the field's metadata, 0 by default), so
the row operations here work for every model without knowing what the fields mean: the
evaluator scores a cache, the service edits one (:meth:`ItemCache.put`,
:meth:`ItemCache.take`) and a bundle stores one (:meth:`ItemCache.tensors`,
:meth:`ItemCache.from_tensors`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import torch

from ..errors import MissrecError

C = TypeVar("C", bound="ItemCache")


def rows(axis: int = 0, optional: bool = False) -> Any:
    """A cache field whose items lie along ``axis`` (``optional``: may be None)."""
    if optional:
        return dataclasses.field(default=None, metadata={"axis": axis})
    return dataclasses.field(metadata={"axis": axis})


@dataclass(frozen=True)
class ItemCache:
    """Base of the item caches: tensor fields declared with :func:`rows`."""

    LEGACY_NAMES: ClassVar[dict[str, str]] = {}
    """Tensor names of earlier bundle layouts -> field names (see :meth:`from_tensors`)."""

    def _fields(self) -> list[tuple[str, int, torch.Tensor | None]]:
        return [(f.name, f.metadata.get("axis", 0), getattr(self, f.name)) for f in dataclasses.fields(self)]

    @property
    def n_rows(self) -> int:
        """Rows (items, padding row 0 included)."""
        name, axis, table = self._fields()[0]
        return int(table.shape[axis])

    def to(self: C, device: torch.device | str) -> C:
        return dataclasses.replace(self, **{n: t.to(device) for n, _, t in self._fields() if t is not None})

    def take(self: C, index: torch.Tensor) -> C:
        """The rows ``index`` (1-D, in that order)."""
        return dataclasses.replace(self, **{n: t.index_select(axis, index.to(t.device))
                                            for n, axis, t in self._fields() if t is not None})

    def put(self: C, index: torch.Tensor, new: C) -> C:
        """A copy with rows ``index`` set to the rows of ``new`` (same layout, ``len(index)``
        rows); indexes past the end append rows (they must continue the table without gaps)."""
        grow = int(index.max()) + 1 - self.n_rows if len(index) else 0
        changed = {}
        for name, axis, table in self._fields():
            if table is None:
                continue
            values = getattr(new, name)
            if grow > 0:
                shape = list(table.shape)
                shape[axis] = grow
                table = torch.cat([table, table.new_zeros(shape)], axis)
            else:
                table = table.clone()
            where = (slice(None),) * axis + (index.to(table.device),)
            table[where] = values.to(table.device, table.dtype) if values is not None else 0
            changed[name] = table
        return dataclasses.replace(self, **changed)

    def tensors(self) -> dict[str, torch.Tensor]:
        """The fields as named tensors (booleans as uint8, which every tensor format stores)."""
        return {n: t.to(torch.uint8) if t.dtype == torch.bool else t for n, _, t in self._fields() if t is not None}

    @classmethod
    def from_tensors(cls: type[C], tensors: dict[str, torch.Tensor]) -> C:
        """The cache written by :meth:`tensors` (or by an earlier layout, through
        :attr:`LEGACY_NAMES`); boolean fields are restored from uint8."""
        tensors = {cls.LEGACY_NAMES.get(k, k): v for k, v in tensors.items()}
        kwargs = {}
        for f in dataclasses.fields(cls):
            value = tensors.get(f.name)
            if value is None and f.default is dataclasses.MISSING:
                raise MissrecError(f"item cache {cls.__name__}: the stored tensors lack {f.name!r}")
            kwargs[f.name] = value
        cache = cls(**kwargs)
        return cache.restore_dtypes()

    def restore_dtypes(self: C) -> C:
        """Undo :meth:`tensors`' uint8 for the fields that are boolean masks."""
        return self


@dataclass(frozen=True)
class ItemVectors(ItemCache):
    """One vector per item (SASRec, SASRec over text, UniSRec)."""

    LEGACY_NAMES: ClassVar[dict[str, str]] = {"tensor": "vectors", "0": "vectors", "1": "candidates"}

    vectors: torch.Tensor = rows()
    """[n, d] item vectors as the sequence side reads them."""
    candidates: torch.Tensor | None = rows(optional=True)
    """[n, d] item vectors as candidates are scored by (None: ``vectors`` themselves)."""

    @property
    def scored(self) -> torch.Tensor:
        return self.vectors if self.candidates is None else self.candidates
