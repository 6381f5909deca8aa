"""Approximate top-K on FAISS: inner-product candidates, re-scored exactly.

The model names the tables whose inner products with its user vectors find the items it
ranks high (:meth:`~missrec.model.base.SequentialRecommender.retrieval_tables`: for
MISSRec, each item's mean modality embedding, each modality, and the 'late' id
embeddings). Each table gets an inner-product index (exact ``IndexFlatIP`` for small
catalogues, ``IndexIVFFlat`` from ``ivf_from`` items); the union of every index's
``n_candidates`` best items is re-scored exactly by the model's ``score_items`` and the
top-K taken. Catalogue changes are applied to the indexes incrementally (removed rows
leave, changed rows are re-added).

Items added after training have an index of their own per table: the catalogue may add one
offset to all their scores (:mod:`.calibration`), which an inner product cannot see. Within
each group the offset is one constant, so each group's best candidates by inner product are
the ones the offset leaves best, and the union holds the top-K whatever its sign.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import MissrecError


@dataclass
class ApproximateOptions:
    n_candidates: int = 100
    """Items taken from each modality's index (their union is re-scored)."""
    nprobe: int = 64
    """IVF lists searched per query."""
    ivf_from: int = 50_000
    """Catalogues at least this large get an IVF index; smaller ones a flat (exact) one."""
    train_sample: int = 100_000
    """Vectors the IVF quantiser is trained on (a seeded sample)."""


class ApproximateIndex:
    """Inner-product indexes over a :class:`~missrec.serve.catalogue.Catalogue`'s items."""

    def __init__(self, catalogue, options: ApproximateOptions = ApproximateOptions()):
        try:
            import faiss  # the optional faiss extra
        except ImportError:
            raise MissrecError("approximate retrieval needs faiss (pip install faiss-cpu)") from None
        self.faiss = faiss
        self.catalogue = catalogue
        self.options = options
        self._rebuild()

    def _rebuild(self) -> None:
        self.indexes = [self._build(table) for table in self._tables()]
        self.seen, self.layout = len(self.catalogue.changes), self.catalogue.layout

    def _tables(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(vectors [N, d], usable [N]) per index: each of the model's retrieval tables, live
        rows only, once for the trained items and once for the added ones."""
        st = self.catalogue.state
        tables = self.catalogue.model.retrieval_tables(st.cache)
        alive = torch.from_numpy(st.alive)
        added = self.catalogue.added_rows(torch.arange(len(alive)))
        out = []
        for vectors, usable in tables:
            live = usable & alive.to(usable.device)
            out += [(vectors, live & ~added.to(usable.device)), (vectors, live & added.to(usable.device))]
        return out

    def _build(self, table: tuple[torch.Tensor, torch.Tensor]):
        vectors, usable = table
        rows = torch.nonzero(usable).squeeze(1).cpu().numpy().astype(np.int64)
        x = np.ascontiguousarray(vectors[torch.from_numpy(rows)].float().cpu().numpy())
        d, n = vectors.shape[1], len(rows)
        faiss, opt = self.faiss, self.options
        if n < opt.ivf_from:
            index = faiss.IndexIDMap(faiss.IndexFlatIP(d))
        else:
            nlist = int(4 * math.sqrt(n))
            index = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, nlist, faiss.METRIC_INNER_PRODUCT)
            sample = np.random.default_rng(0).choice(n, min(n, max(opt.train_sample, nlist * 39)), replace=False)
            index.train(x[sample])
            index.nprobe = opt.nprobe
        if n:
            index.add_with_ids(x, rows)
        return index

    def sync(self) -> None:
        """Apply the catalogue changes made since the indexes last saw it."""
        if self.layout != self.catalogue.layout:  # rows were renumbered
            self._rebuild()
        changes = self.catalogue.changes
        if self.seen == len(changes):
            return
        rows = np.unique(np.asarray(changes[self.seen:], dtype=np.int64))
        self.seen = len(changes)
        for index, (vectors, usable) in zip(self.indexes, self._tables()):
            index.remove_ids(rows)
            keep = rows[usable[torch.from_numpy(rows).to(usable.device)].cpu().numpy()]
            if len(keep):
                x = vectors[torch.from_numpy(keep).to(vectors.device)].float().cpu().numpy()
                index.add_with_ids(np.ascontiguousarray(x), keep)

    def candidates(self, u: torch.Tensor) -> torch.Tensor:
        """[B, C] candidate rows for user vectors ``u`` [B, d] (padded with row 0)."""
        self.sync()
        q = np.ascontiguousarray(u.float().cpu().numpy())
        found = np.concatenate([index.search(q, self.options.n_candidates)[1] for index in self.indexes], 1)
        rows = [np.unique(r[r > 0]) for r in found]
        width = max(max((len(r) for r in rows), default=1), 1)
        out = np.zeros((len(rows), width), dtype=np.int64)
        for i, r in enumerate(rows):
            out[i, :len(r)] = r
        return torch.from_numpy(out)
