"""The popularity reference: every user gets the same ranking, items by how often the kept
training users interacted with them. Nothing is trained; it is ranked by the same full-ranking
evaluator as the models, so its metrics and test ranks compare with theirs user by user."""

from __future__ import annotations

import numpy as np
import torch

from ..data.batching import SequenceBatch
from ..data.store import SPLIT_TRAIN, Dataset
from ..errors import MissrecError
from .base import VectorRecommender
from .cache import ItemVectors


def train_counts(ds: Dataset, users: np.ndarray) -> np.ndarray:
    """Training-split interactions of every item index (0 = padding) by ``users``."""
    it = ds.interactions
    keep = (it.split == SPLIT_TRAIN) & np.isin(it.user, users)
    return np.bincount(it.item[keep], minlength=ds.n_items + 1)


class Popularity(VectorRecommender):
    """Scores every item by its rank in a fixed popularity order: most interactions first,
    ties broken by item index (so no two items tie, as a sorted list would present them).
    An item is a one-number vector (its score) and every user the vector 1."""

    def __init__(self, counts: np.ndarray):
        super().__init__()
        n = len(counts) - 1
        self.n_items = n
        order = np.lexsort((np.arange(n + 1), -np.asarray(counts)))
        score = np.empty(n + 1, dtype=np.float32)
        score[order] = np.arange(n + 1, 0, -1, dtype=np.float32)  # exact integers up to 2**24 items
        self.register_buffer("score", torch.from_numpy(score))

    def training_loss(self, batch: SequenceBatch) -> tuple[torch.Tensor, dict[str, float]]:
        raise MissrecError("the popularity reference is counted, not trained")

    def encode_items(self, features: dict[str, torch.Tensor], present: dict[str, torch.Tensor],
                     ids: torch.Tensor) -> ItemVectors:
        """An item's score is its place in the order it was counted in (0 for an item it was not)."""
        known = (ids >= 0) & (ids <= self.n_items)
        return ItemVectors(torch.where(known, self.score[ids.clamp(0, self.n_items)], 0.0)[:, None])

    def item_cache(self) -> ItemVectors:
        return ItemVectors(self.score[:, None])

    def user_vectors(self, batch: SequenceBatch, cache: ItemVectors | None = None) -> torch.Tensor:
        return torch.ones(len(batch), 1, device=self.score.device)


__all__ = ["Popularity", "train_counts"]
