"""Interest discovery at scale: the cell index's searches, the 'approximate' and 'auto'
backends of DPC-KNN against the exact one, the agreement measures, ``missrec bench cluster``."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from missrec.cli import main
from missrec.model.cell_index import CellIndex, CellParams
from missrec.model.interests import (
    AUTO_EXACT_MAX_TOKENS, assign_nearest, density_peaks, dpc_knn, knn, resolve_backend,
)
from missrec.model.interests_bench import (
    Mixture, adjusted_rand_index, agreement, bench_cluster, matched_share,
)

EVERY_CELL = CellParams(n_cells=12, n_probe=12, max_union=12)
"""Every query probes every cell: the cell searches must then be exact."""


def _mixture(tokens: int = 3000, dim: int = 16, components: int = 60, seed: int = 0) -> tuple:
    x, truth = Mixture(tokens, dim, components, seed).sample()
    return x, truth


def test_full_probe_cell_searches_are_exact() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(300, 5, generator=g, dtype=torch.float64)
    index = CellIndex.build(x, EVERY_CELL, chunk_size=17)
    d2, idx = index.knn(4, chunk_size=17)
    ref_d2, ref_idx = knn(x, 4)
    torch.testing.assert_close(d2, ref_d2, rtol=1e-9, atol=1e-9)
    assert torch.equal(idx, ref_idx)
    centers = torch.randperm(300, generator=g)[:20]
    assert torch.equal(index.nearest_member(centers, chunk_size=17), assign_nearest(x, x[centers]))


def test_cells_are_bounded_and_home_is_a_probed_cell() -> None:
    x, _ = _mixture(4000, 32, 80)
    for capacity in (4.0, 1.5):
        index = CellIndex.build(x, CellParams(capacity=capacity))
        sizes = torch.bincount(index.home, minlength=index.n_cells)
        room = math.ceil(capacity * 4000 / index.n_cells)
        # only a token whose probed cells are all full may overflow (into its nearest cell)
        overflow = (sizes - room).clamp_min(0).sum()
        assert overflow == 0 if capacity == 4.0 else overflow <= 40
        assert bool((index.probes == index.home[:, None]).any(1).all())
    # the tokens stored by cell are the tokens, each once
    assert torch.equal(torch.sort(index.tokens.pos).values, torch.arange(4000))
    torch.testing.assert_close(index.tokens.x, x[index.tokens.pos])


def test_full_probe_dpc_equals_exact_dpc() -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(400, 6, generator=g, dtype=torch.float64)
    exact_peaks = density_peaks(x, 5)
    index = CellIndex.build(x, EVERY_CELL, chunk_size=33)
    approx_peaks = density_peaks(x, 5, chunk_size=33, backend="approximate", index=index)
    torch.testing.assert_close(approx_peaks.log_rho, exact_peaks.log_rho, rtol=1e-10, atol=0)
    torch.testing.assert_close(approx_peaks.delta, exact_peaks.delta, rtol=1e-10, atol=1e-12)
    exact = dpc_knn(x, 40, 5)
    approx = dpc_knn(x, 40, 5, chunk_size=33, backend="approximate", cells=EVERY_CELL)
    assert torch.equal(approx.centers, exact.centers)
    assert torch.equal(approx.assignment, exact.assignment)


def test_exact_fallbacks_of_the_cell_searches() -> None:
    """One probed cell of one token: no token has k others or a denser one among its
    candidates, so eq. 3, eq. 4 and the assignment all take their exact fallback."""
    g = torch.Generator().manual_seed(2)
    x = torch.randn(120, 4, generator=g, dtype=torch.float64)
    lonely = CellParams(n_cells=120, n_probe=1, max_union=1)
    report: dict[str, float] = {}
    approx = dpc_knn(x, 12, 4, chunk_size=16, col_chunk_size=20, backend="approximate",
                     cells=lonely, report=report)
    exact = dpc_knn(x, 12, 4)
    assert torch.equal(approx.centers, exact.centers)
    assert torch.equal(approx.assignment, exact.assignment)
    assert report["knn_exact_tokens"] > 0 and report["delta_exact_tokens"] > 0
    assert report["assign_exact_tokens"] > 0
    for step in ("index", "knn", "density", "delta", "select", "assign"):
        assert report[f"{step}_seconds"] >= 0


def test_nearest_denser_exact_scans_only_denser_tokens() -> None:
    g = torch.Generator().manual_seed(3)
    x = torch.randn(90, 3, generator=g, dtype=torch.float64)
    peaks = density_peaks(x, 4)
    rank = torch.empty_like(peaks.order)
    rank[peaks.order] = torch.arange(90)
    index = CellIndex.build(x, CellParams(n_cells=5, n_probe=1))
    rows = torch.arange(90)
    got = index.nearest_denser_exact(rows, rank, peaks.order, chunk_size=7, col_chunk_size=11)
    dist2 = torch.cdist(x, x) ** 2
    for i in range(90):
        denser = rank < rank[i]
        want = dist2[i][denser].min() if denser.any() else torch.tensor(float("inf"))
        torch.testing.assert_close(got[i], want.to(got.dtype), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("ratio", [0.02, 0.5])
def test_approximate_agrees_with_exact_on_a_seeded_mixture(ratio: float) -> None:
    x, _ = _mixture()
    exact = dpc_knn(x, ratio, 5)
    approx = dpc_knn(x, ratio, 5, backend="approximate")
    agree = agreement(approx, exact)
    assert agree["assignment"] >= 0.95
    assert agree["ari"] >= 0.9
    assert agree["prototypes"] >= 0.9


def test_exact_recovers_the_mixture_at_one_cluster_per_component() -> None:
    x, truth = _mixture()
    res = dpc_knn(x, 60, 5)
    assert adjusted_rand_index(res.assignment.numpy(), truth) > 0.95


def test_auto_backend_is_exact_on_small_catalogues() -> None:
    assert resolve_backend("auto", AUTO_EXACT_MAX_TOKENS) == "exact"
    assert resolve_backend("auto", AUTO_EXACT_MAX_TOKENS + 1) == "approximate"
    assert resolve_backend("faiss", 10) == "faiss"
    with pytest.raises(ValueError):
        resolve_backend("annoy", 10)
    x, _ = _mixture(500, 8, 10)
    exact, auto = dpc_knn(x, 0.1, 5), dpc_knn(x, 0.1, 5, backend="auto")
    assert torch.equal(auto.centers, exact.centers)
    assert torch.equal(auto.assignment, exact.assignment)


def test_ari_matches_sklearn() -> None:
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    cases = [(rng.integers(0, 7, 200), rng.integers(0, 5, 200)) for _ in range(5)]
    base = rng.integers(0, 10, 300)
    noisy = base.copy()
    noisy[:30] = rng.integers(0, 10, 30)
    cases += [(base, noisy), (base, (base + 3) % 10), (np.zeros(50), np.zeros(50)),
              (np.arange(50), np.arange(50)), (np.zeros(50), np.arange(50)), (np.array([4]), np.array([9]))]
    for a, b in cases:
        assert adjusted_rand_index(a, b) == pytest.approx(sklearn_metrics.adjusted_rand_score(a, b), abs=1e-12)


def test_matched_share_counts_tokens_after_one_to_one_matching() -> None:
    a = np.array([0, 0, 0, 1, 1, 2, 2, 2])
    assert matched_share(a, (a + 5) * 3) == 1.0  # relabelled: identical partitions
    # b merges clusters 0 and 1 of a: only one of them can be matched to it
    b = np.array([7, 7, 7, 7, 7, 9, 9, 9])
    assert matched_share(a, b) == pytest.approx(6 / 8)
    with pytest.raises(ValueError):
        matched_share(a, b[:-1])


def test_bench_cluster_library_and_errors() -> None:
    res = bench_cluster(400, 8, 0.05, approximate=True, compare_exact=True)
    assert res["clusters"] == 20 and res["components"] == 8 and res["backend"] == "approximate"
    assert set(res["steps"]) == {"index", "knn", "density", "delta", "select", "assign"}
    assert 0.0 <= res["agreement"]["ari"] <= 1.0
    again = bench_cluster(400, 8, 0.05, approximate=True)
    assert again["truth_ari"] == res["truth_ari"]  # same seed, same mixture and result


def test_bench_cluster_command_prints_one_json_object() -> None:
    args = ["bench", "cluster", "--tokens", "300", "--dim", "6", "--ratio", "0.1", "--approximate",
            "--compare-exact", "--seed", "3", "--json"]
    res = CliRunner().invoke(main, args, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    for key in ("tokens", "dim", "clusters", "seconds", "peak_memory_gb", "steps", "agreement"):
        assert key in out
    assert (out["tokens"], out["dim"], out["clusters"]) == (300, 6, 30)
    assert out["peak_memory_gb"] > 0
    assert {"assignment", "ari"} <= set(out["agreement"])
    bad = CliRunner().invoke(main, ["bench", "cluster", "--tokens", "50", "--dim", "3", "--ratio", "1.5"])
    assert bad.exit_code == 1
    assert bad.output.startswith("error:") and "--ratio" in bad.output
