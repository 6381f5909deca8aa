"""The popularity reference: every user gets the same ranking, items by how often the kept
training users interacted with them. Nothing is trained; it is ranked by the same full-ranking
evaluator as the models, so its metrics and test ranks compare with theirs user by user."""

from __future__ import annotations

import numpy as np
import torch

from ..data.batching import SequenceBatch
from ..data.store import SPLIT_TRAIN, Dataset
from ..model.base import SequentialRecommender


def train_counts(ds: Dataset, users: np.ndarray) -> np.ndarray:
    """Training-split interactions of every item index (0 = padding) by ``users``."""
    it = ds.interactions
    keep = (it.split == SPLIT_TRAIN) & np.isin(it.user, users)
    return np.bincount(it.item[keep], minlength=ds.n_items + 1)


class Popularity(SequentialRecommender):
    """Scores every item by its rank in a fixed popularity order: most interactions first,
    ties broken by item index (so no two items tie, as a sorted list would present them)."""

    def __init__(self, counts: np.ndarray):
        super().__init__()
        n = len(counts) - 1
        self.n_items = n
        order = np.lexsort((np.arange(n + 1), -np.asarray(counts)))
        score = np.empty(n + 1, dtype=np.float32)
        score[order] = np.arange(n + 1, 0, -1, dtype=np.float32)  # exact integers up to 2**24 items
        self.register_buffer("score", torch.from_numpy(score))

    def item_cache(self) -> torch.Tensor:
        return self.score

    def user_vectors(self, batch: SequenceBatch, cache=None) -> torch.Tensor:
        return torch.zeros(len(batch), 1, device=self.score.device)

    def score_block(self, users: torch.Tensor, cache, items: slice | torch.Tensor) -> torch.Tensor:
        # a copy per row, not an expanded view: the evaluator writes into the scores it gets
        return self.score[items].repeat(users.shape[0], 1)

    def score_all(self, batch: SequenceBatch, cache=None) -> torch.Tensor:
        return self.score.repeat(len(batch), 1)


__all__ = ["Popularity", "train_counts"]
