"""Full-ranking evaluation over all items, one batch of users at a time.

Only each user's target rank is kept, and the catalogue is scored in blocks of
``EvalProtocol.block_size`` items: each user's target score first, then, block by block, the
count of items scoring above and equal to it. Memory is one ``batch x block`` score matrix,
never ``batch x items`` (4 GB at a million items and 1024 users) nor users x items.

A NaN or ``+inf`` score is an error naming the run, never a metric: a rank computed from it
means nothing. ``-inf`` is allowed: it is how a model says an item cannot be ranked at all
(an item without any modality, eq. 2), and such an item simply ranks last.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from ..config import TrainConfig
from ..data.batching import Examples, SequenceBatch, iterate_batches
from ..errors import MissrecError
from ..model.base import SequentialRecommender
from ..model.cache import ItemCache
from .metrics import metrics_from_ranks, ranks_from_counts, tie_fractions


@dataclass
class EvalProtocol:
    """The evaluation choices, printed with every report."""

    ks: list[int] = field(default_factory=lambda: [10, 50])
    mask_history: bool = False
    ties: str = "pessimistic"
    batch_size: int = 1024
    block_size: int = TrainConfig.eval_block_size

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
             name: str | None = None, cache: ItemCache | None = None) -> EvalResult:
    """Rank every item for every example's user and return the mean metrics and the ranks.

    ``name`` (the run or checkpoint) is what an error about non-finite scores names;
    ``cache`` ranks another catalogue than the model's own :meth:`item_cache` (e.g. with
    modalities removed, :mod:`.modalities`).
    """
    was_training = model.training
    model.eval()
    start = time.perf_counter()
    cache = model.item_cache() if cache is None else cache.to(device)
    ranks = []
    # Score users in order of history length so each batch pads little; ranks are put back
    # in example order afterwards.
    order = np.argsort(examples.lengths, kind="stable")
    batches = iterate_batches(examples.subset(order), protocol.batch_size)
    n_batches = (len(examples) + protocol.batch_size - 1) // protocol.batch_size
    for batch in tqdm(batches, total=n_batches, desc=desc, disable=not progress, leave=False):
        batch = batch.to(device)
        ranks.append(batch_ranks(model, batch, cache, protocol, name or type(model).__name__, desc).cpu())
    seconds = time.perf_counter() - start
    model.train(was_training)
    r = np.empty(len(examples), dtype=np.int64)
    if ranks:
        r[order] = torch.cat(ranks).numpy()
    return EvalResult(metrics_from_ranks(r, protocol.ks), r, examples.targets.copy(), seconds)


def batch_ranks(model: SequentialRecommender, batch: SequenceBatch, cache, protocol: EvalProtocol,
                name: str, desc: str) -> torch.Tensor:
    """0-based rank of each row's target among every item, scored one block at a time.

    With several blocks the target scores come first, as one small block of the batch's
    targets; a target whose score there is not bit-identical to its score inside its
    catalogue block (kernels of other shapes may round differently) is counted again
    against the in-block score, so ranks never depend on the block size.
    """
    n = cache.n_rows
    size = protocol.block_size
    blocks = [slice(start, min(start + size, n)) for start in range(0, n, size)]
    score = model.score_block
    users = model.user_vectors(batch, cache)
    hist = None
    if protocol.mask_history:
        hist = batch.items.clone()
        # keep the target rankable even if it also occurs in the history
        hist[hist == batch.targets[:, None]] = 0
    target = None
    if len(blocks) > 1:
        target = score(users, cache, batch.targets).float().diagonal()[:, None]
    higher, equal, in_block = _count(score, users, cache, batch, blocks, hist, target, name, desc)
    if target is not None and not torch.equal(in_block, target):
        higher, equal, _ = _count(score, users, cache, batch, blocks, hist, in_block, name, desc)
    fractions = tie_fractions(batch.users, batch.targets) if protocol.ties == "random" else None
    return ranks_from_counts(higher, equal, protocol.ties, fractions)


def _count(score: Callable, users, cache, batch: SequenceBatch, blocks: list[slice],
           hist: torch.Tensor | None, target: torch.Tensor | None, name: str, desc: str
           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per row: items scoring above ``target`` [B, 1], items equal to it (the target
    included), and the target's own score read from its block. ``target=None`` (one block
    only) compares with that in-block score."""
    rows = len(batch.targets)
    higher = torch.zeros(rows, dtype=torch.long, device=batch.targets.device)
    equal = torch.zeros_like(higher)
    in_block = torch.full((rows, 1), torch.nan, device=batch.targets.device)
    bad = None
    for items in blocks:
        scores = score(users, cache, items).float()
        bad = _first_bad(scores, items.start, bad)
        _mask(scores, items.start, hist)
        local = batch.targets - items.start
        inside = ((local >= 0) & (local < scores.shape[1]))[:, None]
        here = scores.gather(1, local.clamp(0, scores.shape[1] - 1)[:, None])
        in_block = torch.where(inside, here, in_block)
        against = here if target is None else target
        higher += (scores > against).sum(1)
        equal += (scores == against).sum(1)
    if bad is not None:
        row, item, value = bad
        raise MissrecError(f"{name}: the model scored item {item} {value} for user {int(batch.users[row])} on the "
                           f"{desc} split; no metric is computed from non-finite scores")
    return higher, equal, in_block


def _mask(scores: torch.Tensor, start: int, hist: torch.Tensor | None) -> None:
    """Score ``-inf`` the padding item and (``hist`` given) the history items in this block."""
    if start == 0:
        scores[:, 0] = -torch.inf
    if hist is None:
        return
    local = hist - start
    row, col = torch.nonzero((local >= 0) & (local < scores.shape[1]), as_tuple=True)
    scores[row, local[row, col]] = -torch.inf


def _first_bad(scores: torch.Tensor, start: int, found: tuple[int, int, float] | None
               ) -> tuple[int, int, float] | None:
    """The first (row, item, score) scored NaN or ``+inf``, in row-then-item order over the
    blocks seen so far (``found``) and this one; the padding item is never checked."""
    skip = 1 if start == 0 else 0
    bad = ~(scores[:, skip:] < torch.inf)  # one pass: NaN and +inf fail the comparison, -inf passes
    if not bool(bad.any()):
        return found
    row, col = (int(i) for i in torch.nonzero(bad)[0])
    if found is not None and found[0] <= row:  # an earlier block holds this row's first item
        return found
    return row, start + skip + col, float(scores[row, skip + col])
