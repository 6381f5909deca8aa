"""Top-K metrics from the 0-based rank of each user's single held-out item.

With one relevant item per user (leave-one-out), every metric is a function of the rank
``r`` (number of items placed before the target):

- ``recall@K = 1[r < K]``  (equal to hit rate with one target)
- ``ndcg@K   = 1[r < K] / log2(r + 2)``  (the ideal DCG is 1)
- ``mrr@K    = 1[r < K] / (r + 1)``

>>> import numpy as np
>>> ranks = np.array([0, 1, 9, 10, 49])
>>> m = metrics_from_ranks(ranks, [10])
>>> m["recall@10"], round(m["ndcg@10"], 4), round(m["mrr@10"], 4)
(0.6, 0.384, 0.32)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ..config import METRICS, TIE_POLICIES  # noqa: F401 - the metric and tie names, defined with the config


def target_ranks(scores: torch.Tensor, targets: torch.Tensor, ties: str = "pessimistic",
                 fractions: torch.Tensor | None = None) -> torch.Tensor:
    """0-based rank of each row's target among all columns.

    ``ties='pessimistic'`` places the target after every other item with an equal score (so a
    model that scores everything equally ranks last, not first); ``'optimistic'`` before them;
    ``'random'`` at a uniformly drawn place among them (as an evaluator that sorts with an
    arbitrary tie order would, on average), drawn from ``fractions`` [B] in [0, 1) (see
    :func:`tie_fractions`). Columns scored ``-inf`` (padding, masked history) never outrank a
    finite target.
    """
    target_scores = scores.gather(1, targets[:, None])
    higher = (scores > target_scores).sum(1)
    equal = (scores == target_scores).sum(1)
    return ranks_from_counts(higher, equal, ties, fractions)


def ranks_from_counts(higher: torch.Tensor, equal: torch.Tensor, ties: str = "pessimistic",
                      fractions: torch.Tensor | None = None) -> torch.Tensor:
    """:func:`target_ranks` from each row's count of columns scoring above its target
    (``higher``) and equal to it, the target included (``equal``): counts can be summed over
    blocks of the catalogue."""
    if ties not in TIE_POLICIES:
        raise ValueError(f"ties must be one of {TIE_POLICIES}, got {ties!r}")
    if ties == "optimistic":
        return higher
    equal = equal - 1  # the target equals itself
    if ties == "pessimistic":
        return higher + equal
    if fractions is None:
        raise ValueError("ties='random' needs one fraction in [0, 1) per row")
    place = (fractions.to(torch.float64) * (equal + 1).to(torch.float64)).floor().long()
    return higher + place.clamp_max(equal)


def tie_fractions(users: torch.Tensor, targets: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """A fixed pseudo-random fraction in [0, 1) per (user, target): a hash, so the tie-break of
    ``ties='random'`` depends neither on batch size nor on the order users are scored in.

    >>> f = tie_fractions(torch.arange(4), torch.tensor([5, 5, 6, 6]))
    >>> bool(((f >= 0) & (f < 1)).all()), torch.equal(f, tie_fractions(torch.arange(4), torch.tensor([5, 5, 6, 6])))
    (True, True)
    """
    mask = (1 << 32) - 1
    x = (users.to(torch.int64) * 2654435761 + targets.to(torch.int64) * 40503 + seed * 97 + 1) & mask
    for _ in range(2):  # two xor-shift-multiply rounds mix the low bits
        x = ((x ^ (x >> 16)) * 0x45D9F3B) & mask
    x = x ^ (x >> 16)
    return x.to(torch.float64) / float(1 << 32)


def metrics_from_ranks(ranks: np.ndarray, ks: Sequence[int]) -> dict[str, float]:
    """Mean recall@K, ndcg@K and mrr@K over users (keys like ``recall@10``)."""
    ranks = np.asarray(ranks, dtype=np.float64)
    return {f"{m}@{k}": float(per_user_metric(ranks, f"{m}@{k}").mean()) if len(ranks) else 0.0
            for k in ks for m in METRICS}


def per_user_metric(ranks: np.ndarray, name: str) -> np.ndarray:
    """Each user's value of metric ``name`` (``recall@10``, ``ndcg@50``, ``mrr@10``...) from
    0-based ranks: the per-user terms :func:`metrics_from_ranks` averages.

    >>> per_user_metric(np.array([0, 1, 10]), "ndcg@10").round(4).tolist()
    [1.0, 0.6309, 0.0]
    """
    metric, k = parse_metric(name)
    ranks = np.asarray(ranks, dtype=np.float64)
    hit = ranks < k
    if metric == "recall":
        return hit.astype(np.float64)
    return hit / (np.log2(ranks + 2) if metric == "ndcg" else ranks + 1)


def parse_metric(name: str) -> tuple[str, int]:
    """``"ndcg@10"`` -> ``("ndcg", 10)``; ValueError naming what was expected otherwise."""
    metric, _, k = name.partition("@")
    if metric not in METRICS or not k.isdigit() or int(k) < 1:
        raise ValueError(f"metric {name!r}: expected one of {', '.join(METRICS)} then @K, e.g. ndcg@10")
    return metric, int(k)
