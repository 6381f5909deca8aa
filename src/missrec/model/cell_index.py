"""Approximate nearest neighbours over inverted cells (an IVF index computed as dense blocks).

The index is a coarse quantizer of ``n_cells`` centroids (random tokens refined by a few
k-means steps on a sample, kept on a shell around the data so that none becomes a hub);
every token *probes* its ``n_probe`` nearest cells and lives in the nearest of them that
has room (a cell holds at most ``capacity`` times the mean). Queries are processed cell by
cell: the queries of one cell share one candidate set, the members of the cells they probe
(at most ``max_union`` cells, the most probed first), so each distance block is one matrix
product (BLAS, or the GPU) rather than a per-query scan. With an uncapped union a query's
candidates include its own probe, as in an IVF search with ``n_probe``.

Cost for N tokens of dimension d: ``N·d·(n_cells + U·N/n_cells)`` with U the union size;
the default ``n_cells = sqrt(n_probe·N)`` makes it ``O(N^1.5·d)``. Memory: a second copy
of the tokens (sorted by cell), ``N·n_probe`` cell ids and one block of ``chunk_size`` rows
x the candidates, which the cell capacity bounds.

Three searches serve DPC-KNN (eqs. 3-4) and its assignment:

* :meth:`CellIndex.knn` — the k nearest other tokens (eq. 3's neighbourhood);
* :meth:`CellIndex.nearest_denser` — the nearest token of lower density rank (eq. 4);
* :meth:`CellIndex.nearest_member` — the nearest of a subset of tokens (the prototypes).

A query whose candidates cannot answer it (fewer than k others; no denser token; no
prototype) is marked, and the caller finishes it exactly; those queries are few.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from .distances import row_blocks, sq_dist


@dataclass(frozen=True)
class CellParams:
    """Settings of the approximate search."""

    n_cells: int | None = None
    """Coarse cells; ``None``: ``round(sqrt(n_probe · N))``, which balances the cost of
    placing tokens in cells against the cost of scanning the probed cells."""
    n_probe: int = 8
    """Cells probed per query, nearest first."""
    max_union: int = 8
    """Most cells scanned for the queries of one cell (the ones most of them probe)."""
    train_iters: int = 5
    """k-means steps of the coarse quantizer."""
    train_per_cell: int = 32
    """Sample size of the quantizer's k-means, per cell."""
    capacity: float = 4.0
    """Most tokens a cell holds, as a multiple of the mean: a token whose nearest cell is
    full lives in its next probed cell with room. In high dimension a few centroids are
    the nearest of very many tokens (hubs); uncapped, they make every probe expensive."""
    seed: int = 0
    """Seed of the quantizer's sample and initial centroids."""


@dataclass
class _Store:
    """Members of the index sorted by cell, so a cell's members are one contiguous slice."""

    x: torch.Tensor
    """[M, d] member vectors, by cell."""
    sq: torch.Tensor
    """[M] their squared norms."""
    pos: torch.Tensor
    """[M] their positions in the member list (token indexes when members are all tokens)."""
    starts: list[int]
    """Start of each cell's slice (n_cells + 1 offsets)."""

    @classmethod
    def of(cls, rows: torch.Tensor, x: torch.Tensor, sq: torch.Tensor, cell: torch.Tensor,
           n_cells: int) -> _Store:
        """The tokens ``rows`` of ``x`` (cells ``cell[rows]``); positions index ``rows``."""
        order, starts = _by_cell(cell[rows], n_cells)
        picked = rows[order]
        return cls(x=x[picked], sq=sq[picked], pos=order, starts=starts)

    def take(self, cells: list[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(vectors, squared norms, positions) of the members of ``cells``."""
        spans = [(self.starts[u], self.starts[u + 1]) for u in cells
                 if self.starts[u] < self.starts[u + 1]]
        if len(spans) == 1:
            a, b = spans[0]
            return self.x[a:b], self.sq[a:b], self.pos[a:b]
        return tuple(torch.cat([t[a:b] for a, b in spans]) if spans else t[:0]
                     for t in (self.x, self.sq, self.pos))


@dataclass
class CellIndex:
    """Tokens placed in coarse cells (see the module docstring)."""

    x: torch.Tensor
    """[N, d] the indexed tokens."""
    sq: torch.Tensor
    """[N] squared norms of ``x``."""
    probes: torch.Tensor
    """[N, P] each token's nearest cells, nearest first: the cells its searches scan."""
    home: torch.Tensor
    """[N] the cell each token is stored in (one of its probes, see ``capacity``)."""
    n_cells: int
    max_union: int
    tokens: _Store
    """All tokens by cell (a second copy of ``x``: contiguous candidates, no gathers)."""

    @classmethod
    def build(cls, x: torch.Tensor, params: CellParams = CellParams(),
              chunk_size: int = 1024) -> CellIndex:
        n = x.shape[0]
        n_cells = params.n_cells or round(math.sqrt(params.n_probe * n))
        n_cells = max(1, min(n_cells, n))
        gen = torch.Generator().manual_seed(params.seed)
        sample = torch.randperm(n, generator=gen)[:min(n, params.train_per_cell * n_cells)]
        sample = sample.to(x.device)
        centroids = _train_centroids(x[sample], n_cells, params.train_iters, chunk_size)
        n_probe = min(params.n_probe, n_cells)
        dist2, probes = _nearest_k(x, centroids, n_probe, chunk_size)
        home = _place(probes, dist2, n_cells, math.ceil(params.capacity * n / n_cells))
        sq = (x * x).sum(1)
        return cls(x=x, sq=sq, probes=probes, home=home, n_cells=n_cells,
                   max_union=max(params.max_union, n_probe),
                   tokens=_Store.of(torch.arange(n, device=x.device), x, sq, home, n_cells))

    def _groups(self, queries: torch.Tensor, store: _Store, chunk_size: int
                ) -> Iterator[tuple[torch.Tensor, tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]]:
        """Blocks of at most ``chunk_size`` queries of one cell, with their candidates.

        Yields (query token indexes, (query vectors, squared norms), (candidate vectors,
        squared norms, positions)); the candidates are the members of ``store`` in the
        cells probed by the cell's queries.
        """
        q_order, q_starts = _by_cell(self.home[queries], self.n_cells)
        q_sorted = queries[q_order]
        for c in range(self.n_cells):
            if q_starts[c] == q_starts[c + 1]:
                continue
            q_cell = q_sorted[q_starts[c]:q_starts[c + 1]]
            cand = store.take(self._union(self.probes[q_cell]))
            for r0, r1 in row_blocks(len(q_cell), chunk_size):
                q = q_cell[r0:r1]
                yield q, (self.x[q], self.sq[q]), cand

    def _union(self, probes: torch.Tensor) -> list[int]:
        cells, counts = torch.unique(probes, return_counts=True)
        if len(cells) > self.max_union:
            keep = torch.sort(-counts, stable=True).indices[:self.max_union]
            cells = torch.sort(cells[keep]).values
        return cells.tolist()

    def knn(self, k: int, chunk_size: int = 1024) -> tuple[torch.Tensor, torch.Tensor]:
        """Squared distances [N, k] (ascending) and indexes of each token's k nearest others
        among its candidates; a row with fewer than k candidates ends in ``inf`` / -1."""
        n = self.x.shape[0]
        out_d = self.x.new_full((n, k), float("inf"))
        out_i = torch.full((n, k), -1, dtype=torch.long, device=self.x.device)
        everyone = torch.arange(n, device=self.x.device)
        for q, (xq, sq_q), (xc, sc, ids) in self._groups(everyone, self.tokens, chunk_size):
            kk = min(k, len(ids) - 1)
            d2 = sq_dist(xq, xc, sq_q, sc)
            d2.masked_fill_(q[:, None] == ids[None, :], float("inf"))
            best_d, at = torch.topk(d2, kk, dim=1, largest=False, sorted=True)
            out_d[q, :kk], out_i[q, :kk] = best_d, ids[at]
        out_i[out_d.isinf()] = -1
        return out_d, out_i

    def nearest_denser(self, rows: torch.Tensor, rank: torch.Tensor,
                       chunk_size: int = 1024) -> torch.Tensor:
        """Squared distance from each of ``rows`` to its nearest candidate of lower ``rank``
        (denser, eq. 4); ``inf`` where no candidate is denser."""
        out = self.x.new_full((self.x.shape[0],), float("inf"))
        for q, (xq, sq_q), (xc, sc, ids) in self._groups(rows, self.tokens, chunk_size):
            d2 = sq_dist(xq, xc, sq_q, sc)
            d2.masked_fill_(rank[ids][None, :] >= rank[q][:, None], float("inf"))
            out[q] = d2.min(1).values
        return out[rows]

    def nearest_member(self, members: torch.Tensor, chunk_size: int = 1024) -> torch.Tensor:
        """Position in ``members`` of every token's nearest candidate member (ties: lowest
        position); -1 where no member is a candidate."""
        n = self.x.shape[0]
        out = torch.full((n,), -1, dtype=torch.long, device=self.x.device)
        store = _Store.of(members, self.x, self.sq, self.home, self.n_cells)
        everyone = torch.arange(n, device=self.x.device)
        for q, (xq, sq_q), (xc, sc, pos) in self._groups(everyone, store, chunk_size):
            if not len(pos):
                continue
            d2 = sq_dist(xq, xc, sq_q, sc)
            nearest = d2.min(1, keepdim=True).values
            tied = torch.where(d2 == nearest, pos[None, :], torch.iinfo(pos.dtype).max)
            out[q] = tied.min(1).values
        return out

    def nearest_denser_exact(self, rows: torch.Tensor, rank: torch.Tensor, order: torch.Tensor,
                             chunk_size: int = 1024, col_chunk_size: int = 16384) -> torch.Tensor:
        """Exact eq. 4 for ``rows``: squared distance to the nearest token of lower ``rank``
        (``order`` lists tokens by rank), scanning only the denser tokens ``order[:rank]``.

        The rows the cell search leaves are local density maxima, mostly dense ones, so
        their prefixes are short. ``inf`` for rank 0 (no denser token).
        """
        out = self.x.new_full((len(rows),), float("inf"))
        by_rank = torch.sort(rank[rows], stable=True).indices
        for r0, r1 in row_blocks(len(rows), chunk_size):
            pos = by_rank[r0:r1]
            q = rows[pos]
            q_rank = rank[q]
            prefix = order[:int(q_rank.max())]
            best = self.x.new_full((len(q),), float("inf"))
            for c0, c1 in row_blocks(len(prefix), col_chunk_size):
                cols = prefix[c0:c1]
                d2 = sq_dist(self.x[q], self.x[cols], self.sq[q], self.sq[cols])
                d2.masked_fill_(rank[cols][None, :] >= q_rank[:, None], float("inf"))
                best = torch.minimum(best, d2.min(1).values)
            out[pos] = best
        return out


def knn_faiss(x: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Approximate kNN with a FAISS HNSW index (optional dependency, imported lazily).

    Returns (squared distances [N, k] ascending, indexes [N, k]) of each token's k nearest
    others, ``k`` at most N - 1.
    """
    try:
        import faiss  # noqa: PLC0415 - optional and heavy
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("cluster backend 'faiss' needs the optional package faiss-cpu "
                          "(pip install 'missrec[faiss]')") from e
    n, dim = x.shape
    data = np.ascontiguousarray(x.detach().to("cpu", torch.float32).numpy())
    index = faiss.IndexHNSWFlat(dim, 32)
    index.hnsw.efSearch = max(64, 2 * (k + 1))
    index.add(data)
    dist, idx = index.search(data, k + 1)
    idx = torch.from_numpy(idx).long()
    dist = torch.from_numpy(dist)
    # drop the query itself; where the index missed it, drop the farthest instead
    is_self = idx == torch.arange(n)[:, None]
    drop = torch.where(is_self.any(1), is_self.float().argmax(1), torch.full((n,), k))
    keep = torch.ones_like(is_self)
    keep[torch.arange(n), drop] = False
    idx = idx[keep].view(n, k)
    dist = dist[keep].view(n, k).clamp_min(0.0)
    dist = dist.to(x.device, x.dtype)
    return dist, idx.to(x.device)


def _by_cell(cell: torch.Tensor, n_cells: int) -> tuple[torch.Tensor, list[int]]:
    """Positions sorted by cell (stable) and each cell's start offset (n_cells + 1 values)."""
    order = torch.sort(cell, stable=True).indices
    counts = torch.bincount(cell, minlength=n_cells)
    starts = [0] + torch.cumsum(counts, 0).tolist()
    return order, starts


def _nearest_k(x: torch.Tensor, centers: torch.Tensor, k: int,
               chunk_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Squared distances and indexes [N, k] of each row's k nearest centers, nearest first."""
    sq_c = (centers * centers).sum(1)
    out_d = x.new_empty(x.shape[0], k)
    out_i = torch.empty(x.shape[0], k, dtype=torch.long, device=x.device)
    for r0, r1 in row_blocks(x.shape[0], chunk_size):
        block = x[r0:r1]
        d2 = sq_dist(block, centers, (block * block).sum(1), sq_c)
        out_d[r0:r1], out_i[r0:r1] = torch.topk(d2, k, dim=1, largest=False, sorted=True)
    return out_d, out_i


def _place(probes: torch.Tensor, dist2: torch.Tensor, n_cells: int, capacity: int) -> torch.Tensor:
    """Each token's home cell: its nearest probed cell with room, the closest tokens of a
    cell first; a token for which every probed cell is full stays in its nearest one."""
    n_probe = probes.shape[1]
    home = probes[:, 0].clone()
    room = torch.full((n_cells,), capacity, dtype=torch.long, device=probes.device)
    todo = torch.arange(probes.shape[0], device=probes.device)
    for j in range(n_probe):
        if not len(todo):
            break
        cell, d2 = probes[todo, j], dist2[todo, j]
        by_dist = torch.sort(d2, stable=True).indices
        order = by_dist[torch.sort(cell[by_dist], stable=True).indices]
        cell = cell[order]
        counts = torch.bincount(cell, minlength=n_cells)
        queue = torch.arange(len(cell), device=cell.device) - (torch.cumsum(counts, 0) - counts)[cell]
        fits = queue < room[cell]
        home[todo[order[fits]]] = cell[fits]
        room -= torch.bincount(cell[fits], minlength=n_cells)
        todo = todo[order[~fits]]
    return home


def _train_centroids(sample: torch.Tensor, n_cells: int, iters: int,
                     chunk_size: int) -> torch.Tensor:
    """k-means on ``sample`` from its first ``n_cells`` rows, each centroid kept at the
    sample's mean distance from the sample mean; an empty cell keeps its centroid.

    Why the fixed radius: a mean of many tokens lies closer to the middle than any token,
    so it becomes the nearest centroid of every token without a centroid of its own (a
    hub), which makes its cell huge and then still larger at the next step.
    """
    mid = sample.mean(0)
    radius = (sample - mid).norm(dim=1).mean()

    def on_shell(c: torch.Tensor) -> torch.Tensor:
        off = c - mid
        return mid + off * (radius / off.norm(dim=1, keepdim=True).clamp_min(1e-12))

    centroids = sample[:n_cells].clone()
    ones = sample.new_ones(sample.shape[0])
    for _ in range(iters):
        cell = _nearest_k(sample, centroids, 1, chunk_size)[1][:, 0]
        sums = torch.zeros_like(centroids).index_add_(0, cell, sample)
        counts = sample.new_zeros(n_cells).index_add_(0, cell, ones)
        centroids = torch.where(counts[:, None] > 0, on_shell(sums / counts.clamp_min(1.0)[:, None]),
                                centroids)
    return centroids
