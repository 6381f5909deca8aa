"""The interface every recommender implements, so one trainer and evaluator serve them all."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..data.batching import SequenceBatch


class SequentialRecommender(nn.Module):
    """Next-item recommender over a catalogue of ``n_items`` (indexes 1..n_items; 0 = padding).

    Training calls :meth:`on_epoch_start` before every epoch and :meth:`training_loss` per
    batch. Evaluation calls :meth:`item_cache` once (under ``torch.no_grad``), then per batch
    :meth:`user_vectors` once and :meth:`score_block` per block of the catalogue, so that a
    large catalogue is never scored as one ``batch x items`` matrix.
    """

    n_items: int

    def on_epoch_start(self, epoch: int) -> dict[str, float]:
        """Per-epoch work such as interest clustering; returns timing/diagnostic figures."""
        return {}

    def training_loss(self, batch: SequenceBatch) -> tuple[torch.Tensor, dict[str, float]]:
        """Scalar loss to minimise plus named components for logging."""
        raise NotImplementedError

    def item_cache(self) -> Any:
        """Whatever item-side tensors scoring needs, computed once per evaluation."""
        return None

    def score_all(self, batch: SequenceBatch, cache: Any = None) -> torch.Tensor:
        """Scores [B, n_items + 1] for every item; column 0 (padding) is ignored by callers."""
        raise NotImplementedError

    def user_vectors(self, batch: SequenceBatch, cache: Any = None) -> Any:
        """The user side of :meth:`score_block`, computed once per batch. The built-in models
        return their sequence representations [B, d]; this default returns the batch itself,
        for a model that only has :meth:`score_all`."""
        return batch

    def score_block(self, users: Any, cache: Any, items: slice | torch.Tensor) -> torch.Tensor:
        """Scores [B, C] of the C items ``items`` (a slice of item indexes, column 0 being the
        padding item, or a 1-D index tensor; the same items for every row) for ``users`` from
        :meth:`user_vectors`: those columns of :meth:`score_all`. This default slices the
        full row; the built-in models score the block alone."""
        return self.score_all(users, cache)[:, items]

    def score_items(self, batch: SequenceBatch, items: torch.Tensor, cache: Any = None) -> torch.Tensor:
        """Scores [B, C] of chosen items ``items`` [B, C] (per row), equal to the matching
        columns of :meth:`score_all`: ranking a short candidate list needs no full catalogue."""
        raise NotImplementedError

    def transfer_parameters(self, mode: str) -> list[str]:
        """Names of parameters that parameter-efficient transfer trains (default: all)."""
        return [n for n, _ in self.named_parameters()]


def check_feature_dims(model: str, modalities: list[str], feature_dims: dict[str, int]) -> None:
    """Raise ValueError when a configured modality has no feature width."""
    missing = [m for m in modalities if m not in feature_dims]
    if missing:
        raise ValueError(f"{model} needs features for {missing}; the catalogue has {sorted(feature_dims)}")
