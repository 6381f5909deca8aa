"""Full-ranking evaluation over all items, one batch of users at a time.

Only each user's target rank is kept, so memory is one ``batch x items`` score block, never
a users x items matrix.

A NaN or ``+inf`` score is an error naming the run, never a metric: a rank computed from it
means nothing. ``-inf`` is allowed: it is how a model says an item cannot be ranked at all
(an item without any modality, eq. 2), and such an item simply ranks last.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from ..data.batching import Examples, SequenceBatch, iterate_batches
from ..errors import MissrecError
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
             device: str | torch.device = "cpu", progress: bool = False, desc: str = "eval",
             name: str | None = None) -> EvalResult:
    """Rank every item for every example's user and return the mean metrics and the ranks.

    ``name`` (the run or checkpoint) is what an error about non-finite scores names.
    """
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
        check_scores(scores, batch, name or type(model).__name__, desc)
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


def check_scores(scores: torch.Tensor, batch: SequenceBatch, name: str, desc: str) -> None:
    """Raise, naming ``name``, the first user and item whose score is NaN or ``+inf``
    (column 0, the padding item, is never ranked and not checked)."""
    bad = ~(scores[:, 1:] < torch.inf)  # one pass: NaN and +inf fail the comparison, -inf passes
    if not bool(bad.any()):
        return
    row, col = (int(i) for i in torch.nonzero(bad)[0])
    raise MissrecError(f"{name}: the model scored item {col + 1} {float(scores[row, col + 1])} for user "
                       f"{int(batch.users[row])} on the {desc} split; no metric is computed from non-finite "
                       f"scores")
