"""Interest discovery (§3.3.1) against literal brute-force implementations of eqs. 3-4."""

from __future__ import annotations

import math

import pytest
import torch

from missrec.model.interests import (
    assign_nearest, cluster_tokens, density_peaks, dpc_knn, kmeans, knn, resolve_count,
)
from missrec.model.missrec import unique_per_row


def brute_dpc(x: torch.Tensor, k: int, n_clusters: int):
    """Eqs. 3-4 written out literally on the full distance matrix, tie rule: lower index
    counts as denser among equal ρ; equal ρ·δ taken in index order; centres own themselves."""
    n = x.shape[0]
    dist = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1).sqrt()
    rho = torch.empty(n, dtype=x.dtype)
    for i in range(n):
        others = sorted(float(dist[i, j]) for j in range(n) if j != i)
        rho[i] = math.exp(-sum(d * d for d in others[:k]) / k)
    delta = torch.empty(n, dtype=x.dtype)
    for i in range(n):
        denser = [j for j in range(n) if rho[j] > rho[i] or (rho[j] == rho[i] and j < i)]
        if denser:
            delta[i] = min(float(dist[i, j]) for j in denser)
        else:
            delta[i] = max(float(dist[i, j]) for j in range(n))
    score = rho * delta
    centers = sorted(range(n), key=lambda i: (-float(score[i]), i))[:n_clusters]
    assign = []
    for i in range(n):
        if i in centers:
            assign.append(centers.index(i))
            continue
        d = [float(dist[i, c]) for c in centers]
        assign.append(d.index(min(d)))
    return rho, delta, torch.tensor(centers), torch.tensor(assign)


@pytest.mark.parametrize("chunk,col_chunk", [(1024, 16384), (7, 5), (1, 3)])
def test_dpc_knn_matches_brute_force(chunk: int, col_chunk: int) -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(60, 4, generator=g, dtype=torch.float64) * 0.4
    k, n_c = 5, 9
    rho, delta, centers, assign = brute_dpc(x, k, n_c)
    peaks = density_peaks(x, k, chunk_size=chunk, col_chunk_size=col_chunk)
    torch.testing.assert_close(peaks.rho, rho, rtol=1e-10, atol=0)
    torch.testing.assert_close(peaks.delta, delta, rtol=1e-10, atol=1e-12)
    res = dpc_knn(x, n_c, k, chunk_size=chunk, col_chunk_size=col_chunk)
    assert res.centers.tolist() == centers.tolist()
    assert res.assignment.tolist() == assign.tolist()
    torch.testing.assert_close(res.prototypes, x[centers])


def test_dpc_knn_tie_rule_on_duplicates() -> None:
    # integer points: many exact duplicates and exactly tied densities / distances
    g = torch.Generator().manual_seed(3)
    x = torch.randint(0, 3, (40, 3), generator=g).double()
    rho, delta, _, _ = brute_dpc(x, 4, 5)
    peaks = density_peaks(x, 4, chunk_size=6, col_chunk_size=7)
    torch.testing.assert_close(peaks.rho, rho, rtol=1e-12, atol=0)
    torch.testing.assert_close(peaks.delta, delta, rtol=1e-12, atol=0)
    # exactly one token (the first densest) takes eq. 4's max branch
    first = int(peaks.order[0])
    assert first == min(i for i in range(40) if rho[i] == rho.max())


def test_dpc_mean_prototypes_and_ratios() -> None:
    g = torch.Generator().manual_seed(2)
    x = torch.randn(50, 3, generator=g, dtype=torch.float64)
    res = dpc_knn(x, 0.2, 0.1, prototype="mean")
    assert res.n_clusters == 10
    for c in range(10):
        torch.testing.assert_close(res.prototypes[c], x[res.assignment == c].mean(0))


def test_knn_chunked_equals_full() -> None:
    g = torch.Generator().manual_seed(4)
    x = torch.randn(37, 6, generator=g, dtype=torch.float64)
    d2, idx = knn(x, 4, chunk_size=5, col_chunk_size=6)
    full = torch.cdist(x, x) ** 2
    full.fill_diagonal_(float("inf"))
    ref_d2, ref_idx = full.topk(4, dim=1, largest=False)
    torch.testing.assert_close(d2, ref_d2, rtol=1e-9, atol=1e-9)
    assert torch.equal(idx, ref_idx)


def test_assign_nearest_ties_go_to_lower_index() -> None:
    x = torch.tensor([[0.0], [1.0], [2.0]])
    centers = torch.tensor([[1.0], [1.0], [0.0]])
    assert assign_nearest(x, centers, chunk_size=2).tolist() == [2, 0, 0]


def test_kmeans_recovers_separated_blobs_and_is_seeded() -> None:
    g = torch.Generator().manual_seed(5)
    means = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])
    truth = torch.arange(4).repeat_interleave(25)
    x = means[truth] + 0.1 * torch.randn(100, 2, generator=g)
    res = kmeans(x, 4, n_iter=10, seed=0, chunk_size=16)
    # same partition as the truth (labels may be permuted)
    pairs = {(int(a), int(b)) for a, b in zip(truth, res.assignment)}
    assert len(pairs) == 4
    torch.testing.assert_close(res.assignment, assign_nearest(x, res.prototypes))
    again = kmeans(x, 4, n_iter=10, seed=0, chunk_size=7)
    assert torch.equal(res.assignment, again.assignment)


def test_random_init_kmeans_with_one_step_is_literal() -> None:
    """init='random', n_iter=1: K distinct tokens as centres, one assignment, cluster means,
    final assignment (what the official torchpq call amounts to), written out with a full
    distance matrix."""
    g = torch.Generator().manual_seed(3)
    x = torch.randn(40, 5, generator=g)
    res = kmeans(x, 0.5, n_iter=1, seed=11, chunk_size=6, init="random")
    chosen = torch.randperm(40, generator=torch.Generator().manual_seed(11))[:20]
    assert len(set(chosen.tolist())) == 20
    centres = x[chosen]
    first = torch.cdist(x, centres).argmin(1)
    means = torch.stack([x[first == j].mean(0) if (first == j).any() else centres[j]
                         for j in range(20)])
    torch.testing.assert_close(res.prototypes, means)
    assert torch.equal(res.assignment, torch.cdist(x, means).argmin(1))
    with pytest.raises(ValueError):
        kmeans(x, 4, init="forgy")


def test_cluster_tokens_dispatch_and_errors() -> None:
    x = torch.randn(20, 3)
    assert cluster_tokens(x, "kmeans", 3).n_clusters == 3
    assert cluster_tokens(x, "dpc-knn", 4, 3).n_clusters == 4
    with pytest.raises(ValueError):
        cluster_tokens(x, "spectral", 3)


def test_resolve_count() -> None:
    assert resolve_count(0.5, 10) == 5
    assert resolve_count(0.02, 10) == 1
    assert resolve_count(5, 10) == 5
    assert resolve_count(5.0, 10) == 5
    assert resolve_count(1, 10) == 1
    assert resolve_count(50, 10) == 10
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError):
            resolve_count(bad, 10)


def test_faiss_backend_close_to_exact() -> None:
    pytest.importorskip("faiss")
    g = torch.Generator().manual_seed(6)
    x = torch.randn(200, 8, generator=g)
    exact = density_peaks(x, 5)
    approx = density_peaks(x, 5, backend="faiss")
    # HNSW may miss a neighbour now and then; almost every density must be exact
    same = torch.isclose(approx.log_rho, exact.log_rho, rtol=1e-4, atol=1e-4)
    assert same.float().mean() > 0.95


def test_unique_per_row_matches_python_sets() -> None:
    g = torch.Generator().manual_seed(7)
    ids = torch.randint(-1, 6, (50, 9), generator=g)
    ids[3] = -1  # a row with no interest at all
    uniq, mask = unique_per_row(ids)
    for row, u, m in zip(ids.tolist(), uniq.tolist(), mask.tolist()):
        expected = sorted({v for v in row if v >= 0})
        got = [v for v, keep in zip(u, m) if keep]
        assert got == expected
        assert all(v == -1 for v, keep in zip(u, m) if not keep)
    assert uniq.shape[1] == max(len({v for v in r if v >= 0}) for r in ids.tolist())
