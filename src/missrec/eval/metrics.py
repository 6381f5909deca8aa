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
(0.6, 0.3052, 0.3222)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

METRICS = ("recall", "ndcg", "mrr")
TIE_POLICIES = ("pessimistic", "optimistic")


def target_ranks(scores: torch.Tensor, targets: torch.Tensor, ties: str = "pessimistic") -> torch.Tensor:
    """0-based rank of each row's target among all columns.

    ``ties='pessimistic'`` places the target after every other item with an equal score (so a
    model that scores everything equally ranks last, not first); ``'optimistic'`` before them.
    Columns scored ``-inf`` (padding, masked history) never outrank a finite target.
    """
    if ties not in TIE_POLICIES:
        raise ValueError(f"ties must be one of {TIE_POLICIES}, got {ties!r}")
    target_scores = scores.gather(1, targets[:, None])
    higher = (scores > target_scores).sum(1)
    if ties == "optimistic":
        return higher
    equal = (scores == target_scores).sum(1) - 1  # the target equals itself
    return higher + equal


def metrics_from_ranks(ranks: np.ndarray, ks: Sequence[int]) -> dict[str, float]:
    """Mean recall@K, ndcg@K and mrr@K over users (keys like ``recall@10``)."""
    ranks = np.asarray(ranks, dtype=np.float64)
    out: dict[str, float] = {}
    for k in ks:
        hit = ranks < k
        out[f"recall@{k}"] = float(hit.mean()) if len(ranks) else 0.0
        out[f"ndcg@{k}"] = float((hit / np.log2(ranks + 2)).mean()) if len(ranks) else 0.0
        out[f"mrr@{k}"] = float((hit / (ranks + 1)).mean()) if len(ranks) else 0.0
    return out
