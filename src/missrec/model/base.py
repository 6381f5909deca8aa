"""The contract between a recommender and everything that uses it.

Training, the evaluator, bundle export and the HTTP service drive every model through these
methods only, so a catalogue is ranked by one piece of code wherever it is ranked:

* **item side**: :meth:`SequentialRecommender.encode_items` turns items (raw features,
  presence masks, ids) into an :class:`~missrec.model.cache.ItemCache`;
  :meth:`~SequentialRecommender.item_cache` is that for the catalogue the model was trained
  on. A cache is rows: the service adds, replaces and removes items by editing it.
* **user side**: :meth:`~SequentialRecommender.user_vectors` reads a batch of histories
  against a cache (history items are rows of the cache).
* **scoring**: :meth:`~SequentialRecommender.score_block` scores users against a block of
  the cache's items, :meth:`~SequentialRecommender.score_rows` against chosen items per
  user; :meth:`~SequentialRecommender.retrieval_tables` are the inner-product tables an
  approximate index searches before the exact re-scoring.
* **training**: :meth:`~SequentialRecommender.on_epoch_start` (per-epoch work such as
  interest clustering), :meth:`~SequentialRecommender.training_loss`, and
  :meth:`~SequentialRecommender.transfer_parameters` for parameter-efficient transfer.
"""

from __future__ import annotations

from abc import ABCMeta, abstractmethod
from typing import ClassVar

import torch
from torch import nn

from ..data.batching import SequenceBatch
from ..errors import MissrecError
from .cache import ItemCache, ItemVectors


class SequentialRecommender(nn.Module, metaclass=ABCMeta):
    """Next-item recommender over a catalogue of ``n_items`` (indexes 1..n_items; 0 = padding)."""

    n_items: int
    cache_type: ClassVar[type[ItemCache]]
    """The :class:`ItemCache` subclass :meth:`item_cache` and :meth:`encode_items` return
    (a stored cache is read back as this type)."""
    modalities: list[str] = []
    """Feature matrices the model reads (empty for a model of item ids only, which cannot
    encode an item it was not trained with)."""

    # ------------------------------------------------------------------ training

    def on_epoch_start(self, epoch: int) -> dict[str, float]:
        """Per-epoch work such as interest clustering; returns timing/diagnostic figures."""
        return {}

    @abstractmethod
    def training_loss(self, batch: SequenceBatch) -> tuple[torch.Tensor, dict[str, float]]:
        """Scalar loss to minimise plus named components for logging."""

    def transfer_parameters(self, mode: str) -> list[str]:
        """Names of parameters that parameter-efficient transfer trains (default: all)."""
        return [n for n, _ in self.named_parameters()]

    def adapter_weights(self) -> list[str]:
        """State-dict names of the maps from item features to the model's space (its
        modality adapters), which transfer may start afresh (default: none)."""
        return []

    # ------------------------------------------------------------------ item side

    def attach_catalogue(self, features: dict[str, torch.Tensor], present: dict[str, torch.Tensor]) -> None:
        """Attach the training catalogue's features [n_items + 1, d_m] and presence masks
        [n_items + 1] per modality (a model of ids only reads none)."""
        if self.modalities:
            raise NotImplementedError(f"{type(self).__name__} reads {self.modalities} but attaches no catalogue")

    @abstractmethod
    def encode_items(self, features: dict[str, torch.Tensor], present: dict[str, torch.Tensor],
                     ids: torch.Tensor) -> ItemCache:
        """Cache rows of ``k`` items from their raw features [k, d_m] and presence [k] (bool)
        per modality the model reads, and ``ids`` [k]: each item's row in the catalogue the
        model was trained on (its id embedding, for a model that has them), 0 for an item
        it was not trained with. Rows equal those :meth:`item_cache` gives for the same items."""

    @abstractmethod
    def item_cache(self) -> ItemCache:
        """The cache of the attached catalogue (row 0 padding), computed without gradients."""

    # ------------------------------------------------------------------ user side and scoring

    @abstractmethod
    def user_vectors(self, batch: SequenceBatch, cache: ItemCache | None = None) -> torch.Tensor:
        """User vectors [B, d] of a batch of histories whose items are rows of ``cache``
        (None: :meth:`item_cache`)."""

    @abstractmethod
    def score_block(self, users: torch.Tensor, cache: ItemCache, items: slice | torch.Tensor) -> torch.Tensor:
        """Scores [B, C] of the items ``items`` (a slice of rows or a 1-D index tensor, the
        same for every user) for ``users`` from :meth:`user_vectors`."""

    @abstractmethod
    def score_rows(self, users: torch.Tensor, cache: ItemCache, items: torch.Tensor) -> torch.Tensor:
        """Scores [B, C] of chosen items ``items`` [B, C] (per user), equal to the matching
        columns of :meth:`score_block`: ranking a short candidate list needs no full catalogue."""

    @abstractmethod
    def retrieval_tables(self, cache: ItemCache) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(vectors [n, d], usable [n]) tables whose inner products with the user vectors find
        the items an exact score ranks high (an approximate index searches them, then
        :meth:`score_rows` re-scores what they return)."""

    def own(self, cache: ItemCache | None) -> ItemCache:
        """``cache``, or the model's own :meth:`item_cache` when it is None."""
        return self.item_cache() if cache is None else cache

    def score_all(self, batch: SequenceBatch, cache: ItemCache | None = None) -> torch.Tensor:
        """Scores [B, rows of the cache] of every item; column 0 (padding) is ignored by callers."""
        cache = self.own(cache)
        return self.score_block(self.user_vectors(batch, cache), cache, slice(None))

    def score_items(self, batch: SequenceBatch, items: torch.Tensor, cache: ItemCache | None = None) -> torch.Tensor:
        """Scores [B, C] of chosen items ``items`` [B, C] for a batch of histories."""
        cache = self.own(cache)
        users = self.user_vectors(batch, cache)
        return self.score_rows(users, cache, items.to(users.device))


class VectorRecommender(SequentialRecommender):
    """A recommender whose items are one vector each (:class:`ItemVectors`), scored by the
    inner product with the user vector."""

    cache_type = ItemVectors

    def score_block(self, users: torch.Tensor, cache: ItemVectors, items: slice | torch.Tensor) -> torch.Tensor:
        return users @ cache.scored[items].T

    def score_rows(self, users: torch.Tensor, cache: ItemVectors, items: torch.Tensor) -> torch.Tensor:
        return torch.einsum("bd,bcd->bc", users, cache.scored[items])

    def retrieval_tables(self, cache: ItemVectors) -> list[tuple[torch.Tensor, torch.Tensor]]:
        usable = torch.ones(cache.n_rows, dtype=torch.bool, device=cache.vectors.device)
        usable[0] = False
        return [(cache.scored, usable)]


def check_feature_dims(model: str, modalities: list[str], feature_dims: dict[str, int]) -> None:
    """Raise ValueError when a configured modality has no feature width."""
    missing = [m for m in modalities if m not in feature_dims]
    if missing:
        raise ValueError(f"{model} needs features for {missing}; the catalogue has {sorted(feature_dims)}")


def present_rows(modalities: list[str], features: dict[str, torch.Tensor], present: dict[str, torch.Tensor],
                 device: torch.device) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Feature rows and presence masks of ``modalities`` on ``device``, the rows of a missing
    modality zeroed (whatever they held, NaN included, can never reach a vector)."""
    pres = {m: present[m].to(device, torch.bool) for m in modalities}
    feats = {m: torch.where(pres[m][:, None], features[m].to(device, torch.float32), torch.zeros((), device=device))
             for m in modalities}
    return feats, pres


def cannot_encode_new(model: str) -> MissrecError:
    """The error of a model of item ids asked to encode an item it was not trained with."""
    return MissrecError(f"model {model!r} scores item ids only: it cannot encode items it was not trained with")
