"""Multi-modal interest discovery (§3.3.1): cluster item tokens into interest prototypes.

Two algorithms over a token matrix ``X`` [N, d]:

* :func:`dpc_knn` — density peaks clustering with k-nearest-neighbour density (the paper,
  eqs. 3-4), exact and chunked: no N x N matrix is ever held, only blocks of
  ``chunk_size`` rows x ``col_chunk_size`` columns.
* :func:`kmeans` — seeded k-means++ then a fixed number of Lloyd iterations (what the
  released code uses).

DPC-KNN's backends (:data:`CLUSTER_BACKENDS`): 'exact' scales as N² in time (the kNN
lists, eq. 4 for tokens without a denser neighbour in their list) and as N·K_c in the
assignment; 'approximate' answers all three from a :class:`~.cell_index.CellIndex` in
``O(N^1.5·d)`` and bounded memory, finishing exactly only the few tokens its cells cannot
answer; 'faiss' takes the kNN lists from a FAISS HNSW index and keeps the rest exact;
'auto' is 'exact' on small catalogues and 'approximate' on large ones.

Both return a :class:`Clustering`: prototypes [K, d] and each token's prototype index [N].

Counts (the number of clusters K_c, the neighbourhood size k) are given by
:func:`resolve_count`: a value in (0, 1) is a ratio of the token count, a value >= 1 an
absolute count (so ``1`` / ``1.0`` means one, never "all tokens").

Tie rules (documented because they decide which tokens become prototypes):

* Density ties (eq. 4's strict ``ρ_j > ρ_i``): tokens are totally ordered by ``ρ`` descending
  and then by index ascending; "denser than i" means "earlier in that order". Exactly one
  token (the first densest) takes eq. 4's ``max`` branch.
* Prototype choice: top-K_c of ``ρ·δ``; equal scores are taken in index order.
* Assignment: nearest prototype; equal distances go to the lower prototype index, and every
  density peak is assigned to its own cluster.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from .cell_index import CellIndex, CellParams, knn_faiss
from .distances import knn_rows, row_blocks, sq_dist

CLUSTERING_METHODS = ("dpc-knn", "kmeans")


@dataclass
class Clustering:
    """Interest prototypes and the token -> prototype assignment."""

    prototypes: torch.Tensor
    """[K, d] the interest prototype vectors."""
    assignment: torch.Tensor
    """[N] long, index into ``prototypes`` of every token."""
    centers: torch.Tensor | None = None
    """[K] long, token index of each density peak (DPC-KNN only)."""

    @property
    def n_clusters(self) -> int:
        return int(self.prototypes.shape[0])


@dataclass
class DensityPeaks:
    """Intermediate quantities of DPC-KNN, exposed for inspection and testing."""

    log_rho: torch.Tensor
    """[N] ``log ρ_i = -mean squared distance to the k nearest neighbours`` (eq. 3)."""
    delta: torch.Tensor
    """[N] ``δ_i`` (eq. 4)."""
    order: torch.Tensor
    """[N] token indexes by density, densest first (ties by index)."""

    @property
    def rho(self) -> torch.Tensor:
        return self.log_rho.exp()

    @property
    def log_score(self) -> torch.Tensor:
        """``log(ρ·δ)``; the same ranking as ``ρ·δ`` without underflow of ``ρ`` in float32."""
        return self.log_rho + self.delta.log()


def resolve_count(spec: float | int, n: int, name: str = "count") -> int:
    """Turn a ratio in (0, 1) or an absolute count (>= 1) into a count in [1, n]."""
    if isinstance(spec, bool) or spec <= 0:
        raise ValueError(f"{name} must be a ratio in (0, 1) or a count >= 1, got {spec!r}")
    if spec < 1:
        count = math.ceil(spec * n)
    else:
        if float(spec) != int(spec):
            raise ValueError(f"{name} >= 1 must be a whole number, got {spec!r}")
        count = int(spec)
    return max(1, min(count, n))


# ----------------------------------------------------------------------------- neighbours

CLUSTER_BACKENDS = ("exact", "faiss", "approximate", "auto")
AUTO_EXACT_MAX_TOKENS = 32768
"""Backend 'auto' stays exact up to this many tokens, where the N² steps are still small
next to a training epoch, and is 'approximate' above (docs/scale.md)."""


def knn(x: torch.Tensor, k: int, chunk_size: int = 1024,
        col_chunk_size: int = 16384) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact k nearest neighbours of every row of ``x`` among the other rows.

    Returns (squared distances [N, k] ascending, indexes [N, k]). A token is never its own
    neighbour (an exact duplicate of it is). Memory: one ``chunk_size x col_chunk_size`` block
    plus the running top-k.
    """
    n = x.shape[0]
    return knn_rows(x, torch.arange(n, device=x.device), min(k, n - 1), chunk_size, col_chunk_size)


def resolve_backend(backend: str, n: int) -> str:
    """'auto' -> 'exact' up to :data:`AUTO_EXACT_MAX_TOKENS` tokens, else 'approximate'."""
    if backend not in CLUSTER_BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; expected one of {CLUSTER_BACKENDS}")
    if backend == "auto":
        return "exact" if n <= AUTO_EXACT_MAX_TOKENS else "approximate"
    return backend


@contextmanager
def _timed(report: dict[str, float] | None, step: str) -> Iterator[None]:
    """Add the seconds of the block to ``report[step + '_seconds']`` (when a report is kept)."""
    start = time.perf_counter()
    yield
    if report is not None:
        key = f"{step}_seconds"
        report[key] = report.get(key, 0.0) + time.perf_counter() - start


def _count(report: dict[str, float] | None, key: str, value: int) -> None:
    if report is not None:
        report[key] = report.get(key, 0) + value


def _neighbours(x: torch.Tensor, k: int, chunk_size: int, col_chunk_size: int, backend: str,
                index: CellIndex | None, report: dict | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 3's k nearest neighbours by the chosen backend (squared distances, indexes)."""
    n = x.shape[0]
    k = min(k, n - 1)
    if backend == "exact":
        return knn(x, k, chunk_size, col_chunk_size)
    if backend == "faiss":
        return knn_faiss(x, k)
    assert index is not None
    nn_d2, nn_i = index.knn(k, chunk_size)
    # cells too small to hold k others: those rows are searched exactly
    short = torch.nonzero((nn_i < 0).any(1)).squeeze(1)
    if len(short):
        nn_d2[short], nn_i[short] = knn_rows(x, short, k, chunk_size, col_chunk_size)
    _count(report, "knn_exact_tokens", len(short))
    return nn_d2, nn_i


# ----------------------------------------------------------------------------- DPC-KNN

def density_peaks(x: torch.Tensor, k: int, chunk_size: int = 1024, col_chunk_size: int = 16384,
                  backend: str = "exact", index: CellIndex | None = None,
                  report: dict[str, float] | None = None) -> DensityPeaks:
    """Local density (eq. 3) and distance to a denser token (eq. 4) for every token.

    ``backend``: 'exact' (chunked torch); 'faiss' (approximate
    neighbours for eq. 3 from a FAISS HNSW index; eq. 4 stays exact given those neighbours);
    'approximate' (both from the cell index ``index``, built here when None: eq. 4 searches
    the probed cells and scans exactly only for the few tokens denser than all of them);
    'auto' (:func:`resolve_backend`). ``report``: when given, receives seconds per step.
    """
    n = x.shape[0]
    backend = resolve_backend(backend, n)
    if backend == "approximate" and index is None:
        with _timed(report, "index"):
            index = CellIndex.build(x, chunk_size=chunk_size)
    with _timed(report, "knn"):
        nn_d2, nn_i = _neighbours(x, k, chunk_size, col_chunk_size, backend, index, report)
    with _timed(report, "density"):
        # work with log ρ: ρ = exp(-mean d²) underflows to 0 in float32 for d² > ~87, which
        # would make every density tie
        log_rho = -nn_d2.mean(1) if nn_d2.shape[1] else x.new_zeros(n)
        order = torch.sort(-log_rho, stable=True).indices
        rank = torch.empty_like(order)
        rank[order] = torch.arange(n, device=x.device)
    with _timed(report, "delta"):
        delta = x.new_full((n,), float("inf"))
        # the neighbour list is sorted by distance, so its first denser entry is the nearest
        # denser token overall; only tokens without one need a wider search
        if nn_i.shape[1]:
            denser = rank[nn_i] < rank[:, None]
            has = denser.any(1)
            first = denser.float().argmax(1)
            delta[has] = nn_d2[has, first[has]].sqrt()
            rest = torch.nonzero(~has).squeeze(1)
        else:
            rest = torch.arange(n, device=x.device)
        if index is None:
            delta[rest] = _delta_exhaustive(x, rank, rest, chunk_size, col_chunk_size)
        else:
            delta[rest] = _delta_cells(x, index, rank, order, rest, chunk_size, col_chunk_size,
                                       report)
    return DensityPeaks(log_rho=log_rho, delta=delta, order=order)


def _delta_cells(x: torch.Tensor, index: CellIndex, rank: torch.Tensor, order: torch.Tensor,
                 rows: torch.Tensor, chunk_size: int, col_chunk_size: int,
                 report: dict | None) -> torch.Tensor:
    """Unscaled eq. 4 for ``rows``: the probed cells first, then an exact scan of the denser
    tokens for those without a denser candidate; the densest token takes the max branch."""
    d2 = index.nearest_denser(rows, rank, chunk_size)
    left = torch.nonzero(d2.isinf() & (rank[rows] > 0)).squeeze(1)
    d2[left] = index.nearest_denser_exact(rows[left], rank, order, chunk_size, col_chunk_size)
    _count(report, "delta_searched_tokens", len(rows))
    _count(report, "delta_exact_tokens", len(left))
    out = d2.sqrt()
    top = torch.nonzero(rank[rows] == 0).squeeze(1)
    out[top] = _delta_exhaustive(x, rank, rows[top], chunk_size, col_chunk_size)
    return out


def _delta_exhaustive(x: torch.Tensor, rank: torch.Tensor, rows: torch.Tensor,
                      chunk_size: int, col_chunk_size: int) -> torch.Tensor:
    """Eq. 4 by scanning all tokens for the given rows, chunked."""
    n = x.shape[0]
    sq = (x * x).sum(1)
    out = x.new_empty(len(rows))
    for r0, r1 in row_blocks(len(rows), chunk_size):
        idx = rows[r0:r1]
        r_rank = rank[idx]
        best = x.new_full((len(idx),), float("inf"))
        far = x.new_zeros(len(idx))
        for c0, c1 in row_blocks(n, col_chunk_size):
            d2 = sq_dist(x[idx], x[c0:c1], sq[idx], sq[c0:c1])
            far = torch.maximum(far, d2.max(1).values)
            is_denser = rank[c0:c1][None, :] < r_rank[:, None]
            best = torch.minimum(best, d2.masked_fill(~is_denser, float("inf")).min(1).values)
        out[r0:r1] = torch.where(r_rank == 0, far, best).sqrt()
    return out


def assign_nearest(x: torch.Tensor, centers: torch.Tensor, chunk_size: int = 1024) -> torch.Tensor:
    """Index of the nearest center for every row (ties: lowest center index), chunked."""
    sq_c = (centers * centers).sum(1)
    out = torch.empty(x.shape[0], dtype=torch.long, device=x.device)
    for r0, r1 in row_blocks(x.shape[0], chunk_size):
        block = x[r0:r1]
        d2 = sq_dist(block, centers, (block * block).sum(1), sq_c)
        out[r0:r1] = d2.argmin(1)
    return out


def _assign_cells(x: torch.Tensor, index: CellIndex, centers: torch.Tensor, chunk_size: int,
                  report: dict | None) -> torch.Tensor:
    """Nearest density peak among those in the probed cells; exact for tokens whose probed
    cells hold no peak."""
    assignment = index.nearest_member(centers, chunk_size)
    lost = torch.nonzero(assignment < 0).squeeze(1)
    if len(lost):
        assignment[lost] = assign_nearest(x[lost], x[centers], chunk_size)
    _count(report, "assign_exact_tokens", len(lost))
    return assignment


def cluster_means(x: torch.Tensor, assignment: torch.Tensor, k: int,
                  fallback: torch.Tensor | None = None) -> torch.Tensor:
    """Mean token of every cluster; an empty cluster keeps ``fallback`` (or zeros)."""
    sums = x.new_zeros(k, x.shape[1]).index_add_(0, assignment, x)
    counts = x.new_zeros(k).index_add_(0, assignment, x.new_ones(x.shape[0]))
    means = sums / counts.clamp_min(1.0)[:, None]
    if fallback is not None:
        means = torch.where(counts[:, None] > 0, means, fallback)
    return means


def dpc_knn(x: torch.Tensor, n_clusters: float | int, k: float | int = 5,
            chunk_size: int = 1024, col_chunk_size: int = 16384, prototype: str = "peak", backend: str = "exact", cells: CellParams = CellParams(),
            report: dict[str, float] | None = None) -> Clustering:
    """DPC-KNN clustering (§3.3.1): K_c density peaks with the highest ``ρ·δ`` (eqs. 3-4).

    Args:
        x: [N, d] tokens.
        n_clusters: K_c, ratio or count (:func:`resolve_count`).
        k: neighbourhood size of eq. 3, ratio or count.
        chunk_size, col_chunk_size: block shape of every distance computation.
        prototype: 'peak' (the density-peak tokens themselves, as the paper selects
            "cluster centroids" among tokens) or 'mean' (each cluster's mean token, as the
            released code does).
        backend: one of :data:`CLUSTER_BACKENDS` (see :func:`density_peaks`); with
            'approximate' the assignment to the nearest peak searches the probed cells too.
        cells: settings of the 'approximate' backend's index.
        report: when given, receives seconds per step (``index``, ``knn``, ``density``,
            ``delta``, ``select``, ``assign``) and counts of tokens searched exactly.
    """
    n = x.shape[0]
    n_c = resolve_count(n_clusters, n, "n_clusters")
    k_nn = resolve_count(k, n, "knn_k")
    backend = resolve_backend(backend, n)
    index = None
    if backend == "approximate":
        with _timed(report, "index"):
            index = CellIndex.build(x, cells, chunk_size)
    peaks = density_peaks(x, k_nn, chunk_size, col_chunk_size, backend, index, report)
    with _timed(report, "select"):
        centers = torch.sort(peaks.log_score, descending=True, stable=True).indices[:n_c]
    with _timed(report, "assign"):
        if index is None:
            assignment = assign_nearest(x, x[centers], chunk_size)
        else:
            assignment = _assign_cells(x, index, centers, chunk_size, report)
        assignment[centers] = torch.arange(n_c, device=x.device)
    if prototype == "peak":
        protos = x[centers].clone()
    elif prototype == "mean":
        protos = cluster_means(x, assignment, n_c, fallback=x[centers])
    else:
        raise ValueError(f"unknown prototype {prototype!r}; expected 'peak' or 'mean'")
    return Clustering(prototypes=protos, assignment=assignment, centers=centers)


# ----------------------------------------------------------------------------- k-means

def kmeans_pp_init(x: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    """k-means++ seeding: indexes of ``k`` rows, each drawn ∝ squared distance to the chosen.

    ``generator`` is a CPU generator: the uniforms are drawn there and each pick inverts the
    cumulative distribution on ``x``'s device, so a seed picks the same rows on any device.
    """
    n = x.shape[0]
    sq = (x * x).sum(1)

    def d2_to(i: int | torch.Tensor) -> torch.Tensor:
        return (sq - 2 * (x @ x[i]) + sq[i]).clamp_min(0.0).double()

    first = int(torch.randint(n, (1,), generator=generator))
    uniforms = torch.rand(k, generator=generator, dtype=torch.float64).to(x.device)
    chosen = torch.empty(k, dtype=torch.long, device=x.device)
    chosen[0] = first
    min_d2 = d2_to(first)
    for j in range(1, k):
        cdf = min_d2.cumsum(0)
        if cdf[-1] <= 0:  # every remaining point coincides with a chosen one
            cdf = torch.arange(1, n + 1, dtype=cdf.dtype, device=cdf.device)
        nxt = torch.searchsorted(cdf, uniforms[j] * cdf[-1], right=True).clamp_max(n - 1)
        chosen[j] = nxt
        min_d2 = torch.minimum(min_d2, d2_to(nxt))
    return chosen


KMEANS_INITS = ("kmeans++", "random")


def kmeans(x: torch.Tensor, n_clusters: float | int, n_iter: int = 10, seed: int = 0,
           chunk_size: int = 1024, init: str = "kmeans++") -> Clustering:
    """k-means: seeded initial centres, ``n_iter`` Lloyd steps, chunked assignment.

    ``init``: 'kmeans++' (:func:`kmeans_pp_init`) or 'random' (K distinct tokens drawn
    uniformly, the default of the torchpq MinibatchKMeans the official code runs; with
    ``n_iter=1`` this is what its clustering amounts to, see ``MISSRecConfig.kmeans_init``).
    An empty cluster keeps its previous centre. The initial centres depend only on ``x`` and
    ``seed`` (drawn with a CPU generator, whatever the device).
    """
    n = x.shape[0]
    n_c = resolve_count(n_clusters, n, "n_clusters")
    gen = torch.Generator().manual_seed(seed)
    if init == "kmeans++":
        chosen = kmeans_pp_init(x, n_c, gen)
    elif init == "random":
        chosen = torch.randperm(n, generator=gen)[:n_c].to(x.device)
    else:
        raise ValueError(f"unknown k-means init {init!r}; expected one of {KMEANS_INITS}")
    centers = x[chosen].clone()
    for _ in range(n_iter):
        assignment = assign_nearest(x, centers, chunk_size)
        centers = cluster_means(x, assignment, n_c, fallback=centers)
    assignment = assign_nearest(x, centers, chunk_size)
    return Clustering(prototypes=centers, assignment=assignment)


def cluster_tokens(x: torch.Tensor, method: str = "dpc-knn", n_clusters: float | int = 0.5,
                   knn_k: float | int = 5, chunk_size: int = 1024, prototype: str = "peak", backend: str = "exact", kmeans_iters: int = 10,
                   seed: int = 0, kmeans_init: str = "kmeans++") -> Clustering:
    """Dispatch to :func:`dpc_knn` or :func:`kmeans` (``method`` in CLUSTERING_METHODS)."""
    if method == "dpc-knn":
        return dpc_knn(x, n_clusters, knn_k, chunk_size, prototype=prototype, backend=backend)
    if method == "kmeans":
        return kmeans(x, n_clusters, kmeans_iters, seed, chunk_size, kmeans_init)
    raise ValueError(f"unknown clustering {method!r}; expected one of {CLUSTERING_METHODS}")
