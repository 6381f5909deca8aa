"""SASRec over text features (the paper's "SASRec_T" baseline, Table 2).

SASRec (:mod:`missrec.model.sasrec`) with its item-id table replaced by a trainable linear
projection of frozen item features: ``e_i = Σ_m present_m(i) · (W_m f_m(i) + b_m)``. With the
default ``modalities: ['text']`` that is one projection of the text feature. Input tokens and
candidate items share the projection, candidates are scored by inner product with the
sequence representation against the whole catalogue, and the loss is the softmax
cross-entropy over all items, exactly as for SASRec on ids.

The model never sees an item id, so it is inductive: new items only need features.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ..data.batching import SequenceBatch
from ..errors import ModelConfigError
from .base import VectorRecommender, check_feature_dims, present_rows
from .cache import ItemVectors
from .sasrec import CausalTransformer, SASRecConfig, _init_weights


@dataclass
class SASRecTextConfig(SASRecConfig):
    """SASRec_T hyper-parameters (SASRec's; width 300 like the text-based baselines)."""

    hidden: int = 300
    """Width of the projected item embeddings and of the Transformer."""
    modalities: list[str] = field(default_factory=lambda: ["text"])
    """Frozen feature matrices projected into item embeddings (summed over the present ones)."""

    def validate(self) -> None:
        """Raise ModelConfigError (a ValueError) naming the first invalid field."""
        super().validate()
        if not self.modalities or len(set(self.modalities)) != len(self.modalities):
            raise ModelConfigError(f"model.modalities={self.modalities!r}: need one or more distinct names")


class FeatureProjection(nn.Module):
    """Item embeddings from frozen features: a linear map per modality, summed over the
    modalities an item has (an item with none gets the zero vector; row 0 is padding)."""

    def __init__(self, feature_dims: dict[str, int], hidden: int):
        super().__init__()
        self.modalities = list(feature_dims)
        self.proj = nn.ModuleDict({m: nn.Linear(d, hidden) for m, d in feature_dims.items()})
        for m in self.modalities:
            self.register_buffer(f"_feat_{m}", None, persistent=False)
            self.register_buffer(f"_present_{m}", None, persistent=False)

    def attach(self, features: dict[str, torch.Tensor], present: dict[str, torch.Tensor]) -> None:
        """Attach [n_items + 1, d_m] features and [n_items + 1] presence masks (not saved in
        the state dict; the checkpoint carries the catalogue separately)."""
        dev = next(self.parameters()).device
        for m in self.modalities:
            f = torch.as_tensor(features[m], dtype=torch.float32)
            p = torch.as_tensor(present[m], dtype=torch.bool).clone()
            p[0] = False
            f = torch.where(p[:, None], f, torch.zeros((), dtype=f.dtype))
            setattr(self, f"_feat_{m}", f.to(dev))
            setattr(self, f"_present_{m}", p.to(dev))

    def forward(self, ids: torch.Tensor | None = None) -> torch.Tensor:
        """Embeddings of ``ids`` (any shape) or of the whole catalogue [n_items + 1, hidden]."""
        feats, present = {}, {}
        for m in self.modalities:
            f, p = getattr(self, f"_feat_{m}"), getattr(self, f"_present_{m}")
            if f is None:
                raise RuntimeError("feature projection: call attach(features, present) first")
            feats[m], present[m] = (f, p) if ids is None else (f[ids], p[ids])
        return self.embed(feats, present)

    def embed(self, features: dict[str, torch.Tensor], present: dict[str, torch.Tensor]) -> torch.Tensor:
        """Embeddings [..., hidden] of items with features [..., d_m] and presence [...]."""
        out = None
        for m in self.modalities:
            f, p = features[m], present[m]
            x = self.proj[m](f) * p[..., None].to(f.dtype)
            out = x if out is None else out + x
        return out


class SASRecText(VectorRecommender):
    """SASRec whose item embeddings are projections of frozen features (see module doc)."""

    def __init__(self, config: SASRecTextConfig, n_items: int, feature_dims: dict[str, int]):
        super().__init__()
        config.validate()
        check_feature_dims("sasrec-text", config.modalities, feature_dims)
        self.config = config
        self.n_items = int(n_items)
        self.modalities = list(config.modalities)
        self.items = FeatureProjection({m: int(feature_dims[m]) for m in config.modalities}, config.hidden)
        self.encoder = CausalTransformer(config.hidden, config.n_layers, config.n_heads, config.inner,
                                         config.dropout, config.attn_dropout, config.max_len)
        self.apply(_init_weights)

    def _device(self) -> torch.device:
        return self.encoder.pos.weight.device

    def attach_catalogue(self, features: dict[str, torch.Tensor], present: dict[str, torch.Tensor]) -> None:
        self.items.attach(features, present)

    def training_loss(self, batch: SequenceBatch) -> tuple[torch.Tensor, dict[str, float]]:
        table = self.items()
        logits = self.encoder(table[batch.items], batch.lengths) @ table.T
        logits[:, 0] = float("-inf")
        loss = F.cross_entropy(logits, batch.targets)
        return loss, {"loss": float(loss.detach())}

    def item_cache(self) -> ItemVectors:
        with torch.no_grad():
            return ItemVectors(self.items())

    @torch.no_grad()
    def encode_items(self, features: dict[str, torch.Tensor], present: dict[str, torch.Tensor],
                     ids: torch.Tensor) -> ItemVectors:
        """Item embeddings from features alone (the model has no ids)."""
        return ItemVectors(self.items.embed(*present_rows(self.items.modalities, features, present, self._device())))

    def user_vectors(self, batch: SequenceBatch, cache: ItemVectors | None = None) -> torch.Tensor:
        return self.encoder(self.own(cache).vectors[batch.items], batch.lengths)

    def transfer_parameters(self, mode: str) -> list[str]:
        """Parameter-efficient transfer tunes the feature projections only."""
        return [n for n, _ in self.named_parameters() if n.startswith("items.")]

