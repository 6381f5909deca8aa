"""``missrec bench cluster``: DPC-KNN (eqs. 3-4) on a seeded Gaussian mixture.

The mixture has one component per :data:`TOKENS_PER_COMPONENT` tokens by default (the
pre-training ratio 0.02 finds one cluster per component), so the data has structure at
every ratio and the agreement of the approximate backend with the exact one is
meaningful; ``components`` sets another count (``tokens / 2`` makes the data nearly
structureless in high dimension, where no nearest-neighbour index has a high recall). Reported: seconds per step, total seconds, peak resident memory and, on
request, the agreement with the exact result: the share of identical prototypes, the share
of tokens whose cluster matches after matching the clusters one to one, and the adjusted
Rand index of the two assignments.
"""

from __future__ import annotations

import resource
import sys
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..errors import MissrecError
from .cell_index import CellParams
from .interests import Clustering, dpc_knn, resolve_count


TOKENS_PER_COMPONENT = 50


@dataclass(frozen=True)
class Mixture:
    """A seeded isotropic Gaussian mixture on the scale of unit vectors: means drawn from
    N(0, I/dim) (norm about 1), tokens scattered around them with std ``noise/sqrt(dim)``
    per coordinate."""

    tokens: int
    dim: int
    components: int
    seed: int = 0
    noise: float = 0.5
    """Relative spread: a squared distance within a component is about ``2·noise²``,
    between components about ``2·(1 + noise²)``, so each component has one clear density
    peak and eq. 4's δ separates peaks from the rest."""

    def sample(self, block: int = 65536) -> tuple[torch.Tensor, np.ndarray]:
        """Tokens [N, dim] float32 and each token's component [N], drawn in blocks (no
        float64 copy of the whole matrix)."""
        gen = torch.Generator().manual_seed(self.seed)
        scale = self.dim ** -0.5
        means = torch.randn(self.components, self.dim, generator=gen) * scale
        labels = torch.randint(self.components, (self.tokens,), generator=gen)
        x = torch.empty(self.tokens, self.dim)
        for start in range(0, self.tokens, block):
            stop = min(start + block, self.tokens)
            noise = torch.randn(stop - start, self.dim, generator=gen)
            x[start:stop] = means[labels[start:stop]] + (self.noise * scale) * noise
        return x, labels.numpy()


def peak_memory_gib() -> float:
    """Peak resident memory of this process so far, GiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**30 if sys.platform == "darwin" else peak / 2**20


def _contingency(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(label of a, label of b, count) of every pair of labels that occurs together."""
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    if a.shape != b.shape:
        raise ValueError(f"two labelings of different lengths: {a.shape} and {b.shape}")
    _, a = np.unique(a, return_inverse=True)
    _, b = np.unique(b, return_inverse=True)
    width = int(b.max()) + 1 if len(b) else 1
    pairs, counts = np.unique(a * width + b, return_counts=True)
    return pairs // width, pairs % width, counts


def adjusted_rand_index(a: np.ndarray, b: np.ndarray) -> float:
    """Adjusted Rand index of two labelings (Hubert & Arabie 1985); 1.0 for identical
    partitions, about 0 for independent ones."""
    n = len(a)
    _, _, counts = _contingency(a, b)
    if n < 2:
        return 1.0

    def pairs(c: np.ndarray) -> float:
        c = c.astype(np.float64)
        return float((c * (c - 1) / 2).sum())

    joint = pairs(counts)
    sum_a = pairs(np.unique(np.asarray(a), return_counts=True)[1])
    sum_b = pairs(np.unique(np.asarray(b), return_counts=True)[1])
    expected = sum_a * sum_b / (n * (n - 1) / 2)
    best = (sum_a + sum_b) / 2
    if best == expected:  # both all-in-one or both all-singletons: identical partitions
        return 1.0
    return (joint - expected) / (best - expected)


def matched_share(a: np.ndarray, b: np.ndarray) -> float:
    """Share of tokens in the same cluster once each cluster of ``a`` is matched to at most
    one of ``b`` (greedily, largest overlaps first)."""
    la, lb, counts = _contingency(a, b)
    used_a: set[int] = set()
    used_b: set[int] = set()
    same = 0
    for i in np.argsort(-counts, kind="stable"):
        pa, pb = int(la[i]), int(lb[i])
        if pa in used_a or pb in used_b:
            continue
        used_a.add(pa)
        used_b.add(pb)
        same += int(counts[i])
    return same / max(len(a), 1)


def agreement(approx: Clustering, exact: Clustering) -> dict[str, float]:
    """How far an approximate DPC-KNN result is from the exact one."""
    a = approx.assignment.cpu().numpy()
    e = exact.assignment.cpu().numpy()
    same_peaks = np.intersect1d(approx.centers.cpu().numpy(), exact.centers.cpu().numpy())
    return {
        "prototypes": len(same_peaks) / exact.n_clusters,
        "assignment": matched_share(a, e),
        "ari": adjusted_rand_index(a, e),
    }


def bench_cluster(tokens: int, dim: int, ratio: float = 0.02, approximate: bool = False,
                  compare_exact: bool = False, seed: int = 0, knn_k: int = 5,
                  components: int | None = None,
                  cells: CellParams = CellParams()) -> dict[str, Any]:
    """Cluster a seeded mixture of ``tokens`` x ``dim`` into ``ratio`` (or a count) clusters."""
    if tokens < 2 or dim < 1:
        raise MissrecError(f"bench cluster: need --tokens >= 2 and --dim >= 1, got {tokens} and {dim}")
    try:
        resolve_count(ratio, tokens, "--ratio")
    except ValueError as e:
        raise MissrecError(f"bench cluster: {e}") from None
    mixture = Mixture(tokens, dim, components or max(1, tokens // TOKENS_PER_COMPONENT), seed)
    start = time.perf_counter()
    x, truth = mixture.sample()
    data_seconds = time.perf_counter() - start
    backend = "approximate" if approximate else "exact"
    report: dict[str, float] = {}
    start = time.perf_counter()
    result = dpc_knn(x, ratio, knn_k, backend=backend, cells=cells, report=report)
    seconds = time.perf_counter() - start
    out: dict[str, Any] = {
        "tokens": tokens, "dim": dim, "clusters": result.n_clusters, "ratio": ratio,
        "components": mixture.components, "knn_k": knn_k, "backend": backend, "seed": seed,
        "seconds": round(seconds, 3), "peak_memory_gb": round(peak_memory_gib(), 3),
        "steps": {k[:-len("_seconds")]: round(v, 3) for k, v in report.items()
                  if k.endswith("_seconds")},
        "exact_fallback_tokens": {k: int(v) for k, v in report.items()
                                  if not k.endswith("_seconds")},
        "truth_ari": round(adjusted_rand_index(result.assignment.numpy(), truth), 4),
        "data_seconds": round(data_seconds, 3), "threads": torch.get_num_threads(),
    }
    if approximate:
        out["cells"] = {"n_probe": cells.n_probe, "max_union": cells.max_union}
    if compare_exact:
        exact, exact_seconds = result, seconds
        if approximate:
            start = time.perf_counter()
            exact = dpc_knn(x, ratio, knn_k, backend="exact")
            exact_seconds = time.perf_counter() - start
        out["agreement"] = {k: round(v, 4) for k, v in agreement(result, exact).items()}
        out["agreement"]["exact_seconds"] = round(exact_seconds, 3)
    return out
