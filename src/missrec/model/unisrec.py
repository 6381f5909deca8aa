"""UniSRec-style baseline (Hou et al., KDD 2022), fine-tuned in this pipeline.

* Item representation: each modality's frozen feature goes through its own mixture of
  whitening experts (the ``moe`` adapter of :mod:`missrec.model.adapters`: per expert a
  learnable whitening bias and a linear map, mixed by a softmax gate); an item's vector is
  the sum over the modalities it has. ``mode='transductive'`` adds an item-id embedding
  (UniSRec_{T+ID}); ``'inductive'`` uses features only (UniSRec_T).
* Sequence encoder: the SASRec causal Transformer (:class:`~missrec.model.sasrec.CausalTransformer`)
  over the item vectors, read at the last position.
* Objective: softmax over all items of cosine similarities divided by a temperature
  (``tau``), i.e. the sequence and item vectors are L2-normalised, as UniSRec's fine-tuning.

Not implemented here: UniSRec's own multi-domain pre-training (sequence-item and
sequence-sequence contrast). Runs of this model are trained from scratch on the target
domain, whereas the paper's UniSRec numbers come after pre-training.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ..config import check_ranges
from ..data.batching import SequenceBatch
from ..errors import ModelConfigError
from .adapters import MoEAdapter, make_adapter
from .base import VectorRecommender, check_feature_dims, present_rows
from .cache import ItemVectors
from .sasrec import CausalTransformer, SASRecConfig, _init_weights


@dataclass
class UniSRecConfig(SASRecConfig):
    """UniSRec hyper-parameters (defaults: the UniSRec release's fine-tuning settings); the
    Transformer fields are SASRec's."""

    hidden: int = 300
    """Width of the adapted item vectors and of the Transformer."""
    adapter_dropout: float = 0.2
    """Dropout on the features entering the experts (the gate reads the raw feature)."""
    n_experts: int = 8
    """Whitening experts per modality adapter."""
    tau: float = 0.07
    """Temperature of the softmax over cosine similarities."""
    mode: str = "inductive"
    """'inductive' (features only, UniSRec_T) or 'transductive' (adds an item-id embedding,
    UniSRec_{T+ID})."""
    modalities: list[str] = field(default_factory=lambda: ["text"])
    """Frozen feature matrices read from the store, each with its own MoE adapter."""

    def validate(self) -> None:
        """Raise ModelConfigError (a ValueError) naming the first invalid field."""
        if self.mode not in ("inductive", "transductive"):
            raise ModelConfigError(f"model.mode={self.mode!r}; expected 'inductive' or 'transductive'")
        super().validate()
        if not self.modalities or len(set(self.modalities)) != len(self.modalities):
            raise ModelConfigError(f"model.modalities={self.modalities!r}: need one or more distinct names")
        check_ranges(self, "model", [("tau", self.tau >= 1e-6, ">= 1e-6 (scores are divided by it)"), ("n_experts", self.n_experts >= 1, ">= 1"),
                                     ("adapter_dropout", 0 <= self.adapter_dropout < 1, "in [0, 1)")],
                     ModelConfigError)


class UniSRec(VectorRecommender):
    """UniSRec-style recommender over a catalogue of ``n_items`` items (see module doc)."""

    def __init__(self, config: UniSRecConfig, n_items: int, feature_dims: dict[str, int]):
        super().__init__()
        config.validate()
        check_feature_dims("unisrec", config.modalities, feature_dims)
        self.config = config
        self.n_items = int(n_items)
        self.modalities = list(config.modalities)
        self.adapters = nn.ModuleDict({
            m: make_adapter("moe", int(feature_dims[m]), config.hidden, config.n_experts, config.adapter_dropout)
            for m in self.modalities})
        self.item_id = (nn.Embedding(n_items + 1, config.hidden, padding_idx=0)
                        if config.mode == "transductive" else None)
        self.encoder = CausalTransformer(config.hidden, config.n_layers, config.n_heads, config.inner,
                                         config.dropout, config.attn_dropout, config.max_len)
        self.apply(_init_weights)
        for a in self.adapters.values():
            if isinstance(a, MoEAdapter):
                nn.init.normal_(a.experts, std=0.02)
                nn.init.zeros_(a.gate.weight)  # uniform routing at start
        if self.item_id is not None:
            with torch.no_grad():
                self.item_id.weight[0].zero_()
        for m in self.modalities:
            self.register_buffer(f"_feat_{m}", None, persistent=False)
            self.register_buffer(f"_present_{m}", None, persistent=False)

    def attach_catalogue(self, features: dict[str, torch.Tensor], present: dict[str, torch.Tensor]) -> None:
        """Attach [n_items + 1, d_m] features and presence masks (kept out of the state dict)."""
        dev = self.encoder.pos.weight.device
        for m in self.modalities:
            f = torch.as_tensor(features[m], dtype=torch.float32)
            p = torch.as_tensor(present[m], dtype=torch.bool).clone()
            if f.shape[0] != self.n_items + 1 or p.shape != (self.n_items + 1,):
                raise ValueError(f"catalogue {m!r}: {tuple(f.shape)} features / {tuple(p.shape)} mask, "
                                 f"expected {self.n_items + 1} rows")
            p[0] = False
            f = torch.where(p[:, None], f, torch.zeros((), dtype=f.dtype))
            setattr(self, f"_feat_{m}", f.to(dev))
            setattr(self, f"_present_{m}", p.to(dev))

    def item_vectors(self) -> torch.Tensor:
        """Un-normalised item representations of the whole catalogue [n_items + 1, hidden]."""
        feats = {m: getattr(self, f"_feat_{m}") for m in self.modalities}
        if any(f is None for f in feats.values()):
            raise RuntimeError("UniSRec: call attach_catalogue(features, present) first")
        out = self.feature_vectors(feats, {m: getattr(self, f"_present_{m}") for m in self.modalities})
        if self.item_id is not None:
            out = out + self.item_id.weight
        return out

    def feature_vectors(self, features: dict[str, torch.Tensor], present: dict[str, torch.Tensor]) -> torch.Tensor:
        """The feature part of item vectors [k, hidden]: the sum of each present modality's
        MoE-adapted feature (rows of features [k, d_m] and presence masks [k])."""
        out = None
        for m in self.modalities:
            f, p = features[m], present[m]
            x = self.adapters[m](f) * p[:, None].to(f.dtype)
            out = x if out is None else out + x
        return out

    def _user(self, batch: SequenceBatch, table: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.encoder(table[batch.items], batch.lengths), dim=-1)

    def training_loss(self, batch: SequenceBatch) -> tuple[torch.Tensor, dict[str, float]]:
        table = self.item_vectors()
        logits = self._user(batch, table) @ F.normalize(table, dim=-1).T / self.config.tau
        logits[:, 0] = float("-inf")
        loss = F.cross_entropy(logits, batch.targets)
        return loss, {"loss": float(loss.detach())}

    def item_cache(self) -> ItemVectors:
        """Raw item vectors for the sequence side, normalised ones for candidates."""
        with torch.no_grad():
            vectors = self.item_vectors()
            return ItemVectors(vectors, F.normalize(vectors, dim=-1))

    @torch.no_grad()
    def encode_items(self, features: dict[str, torch.Tensor], present: dict[str, torch.Tensor],
                     ids: torch.Tensor) -> ItemVectors:
        """Item vectors from features, plus the id embedding of a trained item (transductive;
        an item the model was not trained with has none)."""
        dev = self.encoder.pos.weight.device
        vectors = self.feature_vectors(*present_rows(self.modalities, features, present, dev))
        if self.item_id is not None:
            ids = ids.to(dev)
            vectors = vectors + self.item_id(ids.clamp_min(0)) * (ids > 0)[:, None].to(vectors.dtype)
        return ItemVectors(vectors, F.normalize(vectors, dim=-1))

    def user_vectors(self, batch: SequenceBatch, cache: ItemVectors | None = None) -> torch.Tensor:
        """Normalised sequence representations [B, hidden]."""
        return self._user(batch, self.own(cache).vectors)

    def transfer_parameters(self, mode: str) -> list[str]:
        """UniSRec's parameter-efficient fine-tuning: the MoE adapters (plus the id table in
        transductive mode); the Transformer stays frozen."""
        names = [n for n, _ in self.named_parameters() if n.startswith("adapters.")]
        if mode == "transductive" and self.item_id is not None:
            names.append("item_id.weight")
        return names
