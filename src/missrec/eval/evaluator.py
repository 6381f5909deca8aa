"""Full-ranking evaluation over all items, one batch of users at a time.

Only each user's target rank is kept, so memory is one ``batch x items`` score block, never
a users x items matrix.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from ..data.batching import Examples, iterate_batches
from ..model.base import SequentialRecommender
from .metrics import metrics_from_ranks, target_ranks, tie_fractions


@dataclass
class EvalProtocol:
    """The evaluation choices, printed with every report."""

    ks: list[int] = field(default_factory=lambda: [10, 50])
    mask_history: bool = False
    ties: str = "pessimistic"
    batch_size: int = 1024

    def describe(self) -> str:
        return (f"full ranking over all items; leave-one-out; history "
                f"{'masked' if self.mask_history else 'not masked'}; ties {self.ties}")


@dataclass
class EvalResult:
    metrics: dict[str, float]
    ranks: np.ndarray
    targets: np.ndarray
    seconds: float

    @property
    def users_per_second(self) -> float:
        return len(self.ranks) / self.seconds if self.seconds > 0 else float("inf")


@torch.no_grad()
def evaluate(model: SequentialRecommender, examples: Examples, protocol: EvalProtocol,
             device: str | torch.device = "cpu", progress: bool = False, desc: str = "eval") -> EvalResult:
    """Rank every item for every example's user and return the mean metrics and the ranks."""
    was_training = model.training
    model.eval()
    start = time.perf_counter()
    cache = model.item_cache()
    ranks = []
    # Score users in order of history length so each batch pads little; ranks are put back
    # in example order afterwards.
    order = np.argsort(examples.lengths, kind="stable")
    batches = iterate_batches(examples.subset(order), protocol.batch_size)
    n_batches = (len(examples) + protocol.batch_size - 1) // protocol.batch_size
    for batch in tqdm(batches, total=n_batches, desc=desc, disable=not progress, leave=False):
        batch = batch.to(device)
        scores = model.score_all(batch, cache).float()
        scores[:, 0] = -torch.inf
        if protocol.mask_history:
            hist = batch.items.clone()
            # keep the target rankable even if it also occurs in the history
            hist[hist == batch.targets[:, None]] = 0
            scores.scatter_(1, hist, -torch.inf)
            scores[:, 0] = -torch.inf
        fractions = (tie_fractions(batch.users, batch.targets) if protocol.ties == "random"
                     else None)
        ranks.append(target_ranks(scores, batch.targets, protocol.ties, fractions).cpu())
    seconds = time.perf_counter() - start
    model.train(was_training)
    r = np.empty(len(examples), dtype=np.int64)
    if ranks:
        r[order] = torch.cat(ranks).numpy()
    return EvalResult(metrics_from_ranks(r, protocol.ks), r, examples.targets.copy(), seconds)
