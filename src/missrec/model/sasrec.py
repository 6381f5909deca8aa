"""SASRec (Kang & McAuley, ICDM 2018): causal self-attention over item-id embeddings.

Trained as in RecBole / UniSRec: one example per (prefix, next item), the sequence
representation is the output at the last real position, and the loss is a softmax
cross-entropy over all items.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..config import check_ranges
from ..data.batching import SequenceBatch
from ..errors import ModelConfigError
from .base import VectorRecommender, cannot_encode_new
from .cache import ItemVectors
from .dropout import Dropout, use_fast_dropout


@dataclass
class SASRecConfig:
    """SASRec hyper-parameters (defaults: RecBole's SASRec, as used for the paper's baseline row)."""

    hidden: int = 64
    """Embedding and model width."""
    n_layers: int = 2
    """Transformer blocks."""
    n_heads: int = 2
    """Attention heads."""
    inner: int = 256
    """Feed-forward width."""
    dropout: float = 0.5
    """Dropout on embeddings and inside blocks."""
    attn_dropout: float = 0.5
    """Dropout on attention weights."""
    max_len: int = 50
    """Positional embeddings available (longest history)."""

    def validate(self) -> None:
        """Raise :class:`~missrec.errors.ModelConfigError` (a ValueError) naming the first
        invalid field."""
        check_ranges(self, "model", [
            *((n, getattr(self, n) >= 1, ">= 1") for n in ("hidden", "n_layers", "n_heads", "inner", "max_len")),
            *((n, 0 <= getattr(self, n) < 1, "in [0, 1)") for n in ("dropout", "attn_dropout"))], ModelConfigError)
        if self.hidden % self.n_heads:
            raise ModelConfigError(f"model.hidden={self.hidden} must be divisible by model.n_heads={self.n_heads}")


class CausalTransformer(nn.Module):
    """Position embedding + LayerNorm + dropout + causal Transformer blocks; returns the
    output at each row's last real position."""

    def __init__(self, hidden: int, n_layers: int, n_heads: int, inner: int, dropout: float,
                 attn_dropout: float, max_len: int):
        super().__init__()
        self.pos = nn.Embedding(max_len, hidden)
        self.norm = nn.LayerNorm(hidden, eps=1e-12)
        self.drop = Dropout(dropout)
        layer = nn.TransformerEncoderLayer(hidden, n_heads, inner, dropout, activation="gelu",
                                           batch_first=True, norm_first=False)
        layer.self_attn.dropout = attn_dropout
        self.blocks = use_fast_dropout(nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False))

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Outputs at each row's last real position [B, hidden] for right-padded ``tokens``
        [B, L, hidden]. A row's output depends on its own first ``length`` positions only, so
        rows of very different lengths are encoded in groups, each cut to its own longest row:
        a batch that mixes short and long histories (every batch of a run whose training
        examples fit in one, and evaluation batches) then costs its real positions, not
        B x L."""
        groups = length_groups(lengths, tokens.shape[1])
        if groups is None:
            return self._encode(tokens, lengths)
        parts = [self._encode(tokens[rows, :width], lengths[rows]) for rows, width in groups]
        order = torch.cat([rows for rows, _ in groups])
        return torch.cat(parts)[torch.argsort(order)]

    def _encode(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        B, L, _ = tokens.shape
        pos = torch.arange(L, device=tokens.device)
        x = self.drop(self.norm(tokens + self.pos(pos)[None]))
        causal = torch.triu(torch.full((L, L), float("-inf"), device=tokens.device), diagonal=1)
        # Right padding + causal mask: real positions never attend to padding, so no key
        # padding mask is needed; leaving it out keeps the fast path and avoids NaN rows.
        h = self.blocks(x, mask=causal, is_causal=True)
        return h[torch.arange(B, device=tokens.device), lengths - 1]


MIN_GROUP_ROWS = 64
"""Rows below which a group is not worth its own pass (per-call overheads dominate)."""


def length_groups(lengths: torch.Tensor, width: int) -> list[tuple[torch.Tensor, int]] | None:
    """Rows of a right-padded batch grouped by length into widths that double (1, 2, 4, ...,
    ``width``), as (row indices, group width); None when grouping would not save at least a
    third of the padded positions (a length-bucketed training batch, a small batch)."""
    if len(lengths) < 2 * MIN_GROUP_ROWS:
        return None
    caps = torch.tensor(sorted({min(1 << k, width) for k in range(width.bit_length() + 1)}),
                        device=lengths.device)
    bucket = torch.bucketize(lengths, caps)
    groups: list[tuple[torch.Tensor, int]] = []
    carry = lengths.new_empty(0, dtype=torch.long)
    for b in range(len(caps)):
        rows = torch.cat([carry, torch.nonzero(bucket == b).flatten()])
        if len(rows) < MIN_GROUP_ROWS and b < len(caps) - 1:
            carry = rows  # too few for a pass of their own: they ride with the next, wider group
            continue
        carry = carry[:0]
        if len(rows):
            groups.append((rows, int(lengths[rows].max())))
    cost = sum(len(rows) * w for rows, w in groups)
    if len(groups) < 2 or 3 * cost > 2 * len(lengths) * width:
        return None
    return groups


class SASRec(VectorRecommender):
    def __init__(self, config: SASRecConfig, n_items: int):
        super().__init__()
        self.config = config
        self.n_items = n_items
        self.item_emb = nn.Embedding(n_items + 1, config.hidden, padding_idx=0)
        self.encoder = CausalTransformer(config.hidden, config.n_layers, config.n_heads, config.inner,
                                         config.dropout, config.attn_dropout, config.max_len)
        self.apply(_init_weights)

    def training_loss(self, batch: SequenceBatch) -> tuple[torch.Tensor, dict[str, float]]:
        logits = self.encoder(self.item_emb(batch.items), batch.lengths) @ self.item_emb.weight.T
        logits[:, 0] = float("-inf")
        loss = F.cross_entropy(logits, batch.targets)
        return loss, {"loss": float(loss.detach())}

    def encode_items(self, features: dict[str, torch.Tensor], present: dict[str, torch.Tensor],
                     ids: torch.Tensor) -> ItemVectors:
        """The id embeddings of trained items (an item without one cannot be encoded)."""
        if bool((ids <= 0).any()):
            raise cannot_encode_new("sasrec")
        with torch.no_grad():
            return ItemVectors(self.item_emb.weight[ids.to(self.item_emb.weight.device)].detach())

    def item_cache(self) -> ItemVectors:
        return ItemVectors(self.item_emb.weight.detach())

    def user_vectors(self, batch: SequenceBatch, cache: ItemVectors | None = None) -> torch.Tensor:
        return self.encoder(self.own(cache).vectors[batch.items], batch.lengths)


def _init_weights(m: nn.Module) -> None:
    if isinstance(m, (nn.Linear, nn.Embedding)):
        nn.init.normal_(m.weight, std=0.02)
    if isinstance(m, nn.Linear) and m.bias is not None:
        nn.init.zeros_(m.bias)
    if isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)
