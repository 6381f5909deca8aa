"""MISSRec: multi-modal interest-aware sequence representation (ACM MM 2023, §3).

Pipeline for one batch of histories:

1. Item tokens (§3.2.3): every modality's frozen feature goes through its adapter ψ^m;
   in transductive mode the item-id embedding is added (§3.6.2). Missing modalities are
   never tokens: they are masked out of attention, clustering and fusion.
2. Context encoder (§3.4.1): the text and image tokens of all history items as separate
   tokens ("fusion in context"), item-wise positional embeddings shared by the tokens of
   one item, a modality-type embedding, LayerNorm + dropout, K_e bidirectional blocks.
3. Interest tokens (§3.3): before each epoch the catalogue's tokens are clustered
   (DPC-KNN, eqs. 3-4, or k-means); a sequence's interest tokens are the de-duplicated
   clusters of its tokens.
4. Interest-aware decoder (§3.4.2): the interest prototypes are the queries of K_d
   non-causal decoder blocks cross-attending to the encoder output; the decoded ξ are
   mean-pooled into the user vector u.
5. Candidate items are scored by dynamic fusion (eqs. 1-2) of their modality embeddings.

Losses: fine-tuning (eq. 8) in :meth:`MISSRec.training_loss`, pre-training (eq. 7) in
:meth:`MISSRec.pretrain_loss`.

Choices the paper leaves open (each documented where it is made):

* u and every candidate modality embedding are L2-normalised before inner products
  (``normalize``), so τ = 0.075 acts on cosine similarities, as in UniSRec and the released
  code.
* Positions count back from the most recent item (``positions='recent'``: the last item is
  always position 0), so the newest item has the same embedding whatever the length.
* Decoder queries are the prototypes computed at epoch start, held as constants (no
  gradient flows into them), like the released code's interest embedding buffer.
* The regulariser of eqs. 7-8 is computed on L2-normalised ξ (``reg_normalize``); on raw
  post-LayerNorm ξ it is minimised by shrinking the last LayerNorm's gain, which changes
  nothing else once u is normalised. ``reg_form='released'`` is the official code's form.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..data.batching import SequenceBatch
from .adapters import ADAPTER_KINDS, LinearAdapter, MoEAdapter, make_adapter
from .base import SequentialRecommender, check_feature_dims
from .fusion import Concentration, fuse_scores, modality_scores
from .interests import CLUSTERING_METHODS, KMEANS_INITS, cluster_tokens
from .layers import DecoderBlock, EncoderBlock, MultiHeadAttention, key_mask


@dataclass
class MISSRecConfig:
    """Hyper-parameters of :class:`MISSRec`; defaults follow the paper (§4.2.4)."""

    d: int = 300
    """Token / representation width (the adapters map features into this space)."""
    n_enc_layers: int = 1
    """K_e, context encoder blocks."""
    n_dec_layers: int = 1
    """K_d, interest-aware decoder blocks."""
    n_heads: int = 2
    """Attention heads per block."""
    ffn_dim: int = 256
    """Hidden width of each block's feed-forward network (UniSRec / released code: 256)."""
    dropout: float = 0.5
    """Dropout on the embedded input and on every residual branch (the paper gives none;
    0.5 as the released code, chosen on validation NDCG@10 over 0.2)."""
    attn_dropout: float = 0.5
    """Dropout on attention weights."""
    ffn_dropout: float = 0.0
    """Dropout between the two layers of every feed-forward network (nn.Transformer has
    it, at its single dropout rate: the released preset uses 0.5)."""
    stack_norm: bool = False
    """A final LayerNorm after the encoder stack and after the decoder stack, as
    nn.Transformer adds (the released preset)."""
    feature_dropout: float = 0.2
    """Feature augmentation (§3.2.2): dropout on raw features of history items, drawn
    independently for the two pre-training views. Off in fine-tuning (§3.6)."""
    adapter_dropout: float = 0.0
    """Dropout inside the adapters (UniSRec style), active whenever training."""
    id_dropout: float = 0.0
    """Transductive mode: dropout on the item-id embeddings z while training (history
    tokens and candidates alike), against an id table that overfits within a few epochs.
    Neither the paper nor the released code has it; on amazon-scientific-mm it raised
    validation NDCG@10 but lowered test scores (docs/tuning.md)."""
    adapter: str = "linear"
    """Adapter ψ: 'linear' | 'moe' | 'none' (identity, needs d == feature dim)."""
    n_experts: int = 8
    """Experts of the 'moe' adapter."""
    modalities: list[str] = field(default_factory=lambda: ["text", "image"])
    """Modalities used, in this order (names of the catalogue's feature matrices)."""
    mode: str = "inductive"
    """'inductive' (ID-agnostic, eq. 9) or 'transductive' (adds an item-id embedding, eq. 10)."""
    tokens: str = "separate"
    """'separate': one token per (item, present modality), the paper's fusion in context;
    'added': one token per item, the sum of its present modality tokens (released code)."""
    arrangement: str = "paper"
    """'paper': encoder reads item tokens, decoder queries are interest tokens, u = mean of
    decoded ξ. 'released': encoder reads interest tokens, decoder queries are item tokens
    (see ``item_attention``), u = decoder output at the last item; the interest prototypes
    enter the encoder as they are (no input LayerNorm), as in the official code."""
    item_attention: str = "full"
    """Self-attention among item tokens in the 'released' arrangement's decoder: 'full'
    (every item sees the whole history, as the official code runs it: its decoder mask is
    built with ``is_casual=False``) or 'causal' (an item sees itself and earlier items)."""
    id_scoring: str = "added"
    """How item ids enter candidate scores in transductive mode: 'added' (eq. 10: z is
    added to every modality embedding, ``<u, v + z>``; ids also shape the clustering) or
    'late' (the official code: ``(2 <u, v> + <u, z/|z|>) / 3`` with v fused from the
    modality embeddings alone, which are also what is clustered)."""
    decoder: str = "interest"
    """'interest' (the decoder) or 'none' (u = mean of the encoder output; with
    n_enc_layers=2 this is the "2-layer context encoder" variant). 'none' needs
    arrangement 'paper'."""
    clustering: str = "dpc-knn"
    """Interest discovery (§3.3.1): 'dpc-knn' (the paper) or 'kmeans' (released code)."""
    n_clusters: float = 0.5
    """K_c: a ratio of the token count if < 1, else an absolute count. Released code: 0.5
    for fine-tuning, 0.02 for pre-training."""
    knn_k: float = 5
    """k of eq. 3: a ratio of the token count if < 1, else an absolute count (5 as in
    TCFormer's DPC-KNN; the released fine-tuning config uses the ratio 0.1)."""
    dpc_scale_by_dim: bool = False
    """Divide distances by sqrt(d) in eqs. 3-4 (the released code does). This changes the
    balance between ρ and δ in ρ·δ; off = the paper's formulas."""
    prototype: str = "peak"
    """DPC-KNN prototype vectors: 'peak' (the density-peak tokens) or 'mean' (cluster means,
    as the released code). k-means always uses its centroids."""
    kmeans_iters: int = 10
    """Lloyd iterations of k-means."""
    kmeans_init: str = "kmeans++"
    """k-means initial centres: 'kmeans++' (seeded with ``cluster_seed`` every epoch) or
    'random' (K distinct tokens, drawn afresh every epoch from ``cluster_seed + epoch``).
    The official code's torchpq MinibatchKMeans amounts to 'random' with one Lloyd step:
    the catalogue fits in one of its mini-batches, and its stopping test compares the
    centroids with themselves after the first update, so it always stops there."""
    cluster_seed: int = 0
    """Seed of the k-means initialisation."""
    cluster_backend: str = "exact"
    """'exact' (chunked torch) or 'faiss' (approximate neighbours; needs faiss-cpu)."""
    cluster_chunk: int = 1024
    """Rows per block in every clustering distance computation (bounds memory)."""
    tau: float = 0.075
    """Temperature τ of eqs. 5, 6 and of the fine-tuning softmax."""
    gamma: float = 0.1
    """γ, weight of the interest regulariser in eqs. 7-8."""
    lambda_ss: float = 1.0
    """λ, weight of sequence-sequence contrast in eq. 7."""
    alpha_init: float = 1.0
    """Initial concentration α of dynamic fusion (eqs. 1-2)."""
    alpha_learnable: bool = True
    """Learn α; fixed otherwise (0 = mean fusion)."""
    alpha_param: str = "softplus"
    """A learnable α as 'softplus' (α = softplus(raw) >= 0, the paper's constraint) or
    'free' (α = raw, any sign, as the official code's ``fusion_factor``; may start at 0)."""
    normalize: bool = True
    """L2-normalise u and candidate modality embeddings before inner products."""
    reg_normalize: bool = True
    """Compute the regulariser of eqs. 7-8 on L2-normalised ξ ('paper' form only)."""
    reg_form: str = "paper"
    """The regulariser of eqs. 7-8. 'paper': per sequence ``(1/M²) Σ <ξ_m, ξ_m'>``,
    averaged over the batch (and over the two pre-training views). 'released' (needs
    arrangement 'released'): the official code's, on the raw interest-encoder outputs of
    a batch padded to P slots: ``Σ_rows ||(n/P) Σ_slots ξ||² / d``, padding slots included,
    summed (not averaged) over the batch and the views. Its weight grows with the batch
    size: at γ = 1e-4 and batch 512 it is a real force, where the 'paper' form is not."""
    item_drop: float = 0.0
    """Pre-training augmentation: probability of dropping a history item from a view; the
    same items leave every modality of that view (released code: 0.2)."""
    max_len: int = 50
    """Longest history used (most recent items); also the size of the position table."""
    positions: str = "recent"
    """'recent' (the last item is position 0) or 'start' (the first item is position 0)."""
    layer_norm_eps: float = 1e-12
    """LayerNorm epsilon (RecBole / released code value)."""
    init_std: float = 0.02
    """Std of the normal initialisation of linear and embedding weights."""
    adapter_init: str = "normal"
    """Initialisation of linear adapters: 'normal' (std ``init_std``, zero bias, like every
    other weight) or 'torch' (nn.Linear's own uniform init of weight and bias, which the
    official code's adapters keep because they are created after its re-initialisation)."""
    attn_init: str = "normal"
    """Initialisation of the attention input projections (q, k, v): 'normal' (std
    ``init_std``, like every other weight) or 'xavier' (uniform Xavier, which the official
    code's nn.Transformer keeps because its normal re-initialisation skips them)."""
    bucket_tokens: int = 1024
    """Padded tokens per bucket: a batch is split into buckets of rows with similar token
    counts, each padded only to its own widest row. Efficiency only (results do not depend
    on it); 0 encodes the batch in one piece."""

    def validate(self) -> None:
        """Raise ValueError naming the first invalid field."""
        choices = {
            "adapter": ADAPTER_KINDS, "mode": ("inductive", "transductive"),
            "tokens": ("separate", "added"), "arrangement": ("paper", "released"),
            "decoder": ("interest", "none"), "clustering": CLUSTERING_METHODS,
            "prototype": ("peak", "mean"), "cluster_backend": ("exact", "faiss"),
            "positions": ("recent", "start"), "item_attention": ("full", "causal"),
            "id_scoring": ("added", "late"), "attn_init": ("normal", "xavier"),
            "kmeans_init": KMEANS_INITS, "alpha_param": ("softplus", "free"),
            "adapter_init": ("normal", "torch"), "reg_form": ("paper", "released"),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"model.{name}={getattr(self, name)!r}; expected one of {list(allowed)}")
        if self.d % self.n_heads:
            raise ValueError(f"model.d={self.d} must be divisible by model.n_heads={self.n_heads}")
        if not self.modalities or len(set(self.modalities)) != len(self.modalities):
            raise ValueError(f"model.modalities={self.modalities!r}: need distinct names")
        if self.reg_form == "released" and self.arrangement != "released":
            raise ValueError("model.reg_form='released' needs model.arrangement='released'")
        if self.decoder == "none" and self.arrangement != "paper":
            raise ValueError("model.decoder='none' needs model.arrangement='paper'")
        if self.decoder == "interest" and self.n_dec_layers < 1:
            raise ValueError("model.n_dec_layers must be >= 1 (or set model.decoder='none')")
        if self.tau <= 0:
            raise ValueError(f"model.tau must be > 0, got {self.tau}")
        for name in ("dropout", "attn_dropout", "ffn_dropout", "feature_dropout", "adapter_dropout",
                     "item_drop", "id_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"model.{name} must be in [0, 1), got {getattr(self, name)}")

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> "MISSRecConfig":
        """Named settings: 'paper' (§4.2.4, the defaults), 'released' (the official code's
        fine-tuning settings) and 'released-pretrain' (its pre-training settings)."""
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; expected one of {sorted(PRESETS)}")
        cfg = dataclasses.replace(cls(), **PRESETS[name])
        return dataclasses.replace(cfg, **overrides)

    @staticmethod
    def preset_train(name: str) -> dict[str, Any]:
        """Training settings that belong to a preset (e.g. the released fine-tuning batch size)."""
        return dict(PRESET_TRAIN.get(name, {}))


_RELEASED = dict(
    tau=0.07, gamma=1e-4, lambda_ss=1e-3, n_heads=4, dropout=0.5, attn_dropout=0.5,
    # props/MISSRec.yaml n_layers: 2 is split into n_layers // 2 = 1 encoder and 1 decoder
    # layer of its nn.Transformer (its logs count 1,719,513 trainable parameters)
    n_enc_layers=1, n_dec_layers=1,
    tokens="added", clustering="kmeans", arrangement="released", positions="start",
    n_clusters=0.5, item_attention="full", id_scoring="late", attn_init="xavier",
    ffn_dropout=0.5, stack_norm=True, adapter_init="torch",
    # missrec.py forward(): raw encoder outputs pooled per row, /d, summed over the batch
    reg_form="released",
    # cluster_utils.cluster_kmeans: torchpq's random init and (in effect) one Lloyd step
    kmeans_init="random", kmeans_iters=1,
    # its fusion_factor: unconstrained, starts at 0 (mean fusion)
    alpha_param="free", alpha_init=0.0,
)
PRESETS: dict[str, dict[str, Any]] = {
    "paper": {},
    "released": _RELEASED,
    "released-pretrain": {**_RELEASED, "n_clusters": 0.02, "item_drop": 0.2},
}


PRESET_TRAIN: dict[str, dict[str, Any]] = {
    # props/finetune.yaml: train_batch_size 512 for fine-tuning; RecBole's training loader
    # shuffles the rows, so batches mix history lengths
    "released": {"batch_size": 512, "bucket_by_length": False},
}


def preset(name: str, **overrides: Any) -> MISSRecConfig:
    """Module-level alias of :meth:`MISSRecConfig.preset`."""
    return MISSRecConfig.preset(name, **overrides)


@dataclass
class ItemCache:
    """Item-side tensors for evaluation, computed once by :meth:`MISSRec.item_cache`."""

    tokens: torch.Tensor
    """[M, n_items + 1, d] adapted modality tokens (zero where missing)."""
    ids: torch.Tensor | None
    """[n_items + 1, d] item-id embeddings (transductive) or None."""
    candidates: torch.Tensor
    """[M, n_items + 1, d] candidate modality embeddings (x^m, + z with 'added' id scoring),
    normalised."""
    present: torch.Tensor
    """[M, n_items + 1] bool."""
    id_candidates: torch.Tensor | None = None
    """[n_items + 1, d] normalised id embeddings scored apart ('late' id scoring) or None."""


@dataclass
class _Tables:
    """Per-item lookups a batch is encoded from (rows indexed by item or local item index)."""

    tokens: torch.Tensor  # [M, n, d]
    ids: torch.Tensor | None  # [n, d]
    present: torch.Tensor  # [M, n] bool
    interests: torch.Tensor | None  # [n, M] long, -1 = none (None before clustering)


@dataclass
class _Slots:
    """The compacted token layout of a batch of histories (W = most tokens in a row)."""

    valid: torch.Tensor  # [B, W] bool
    item_pos: torch.Tensor  # [B, W] position of the token's item in the history
    item: torch.Tensor  # [B, W] item (row of the tables)
    modality: torch.Tensor | None  # [B, W] modality index ('separate' tokens)
    present: torch.Tensor | None  # [B, W, M] modalities summed into the token ('added')
    lengths: torch.Tensor  # [B] history lengths (dropped items still count)


# ----------------------------------------------------------------------------- helpers

def unique_per_row(ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """De-duplicate every row of ``ids`` [B, T] (values < 0 are ignored), with tensor ops.

    Returns (unique ids [B, Q] ascending, padded with -1; mask [B, Q]) with Q the largest
    number of distinct ids in any row (at least 1).
    """
    s = ids.sort(dim=1).values
    first = s >= 0
    first[:, 1:] &= s[:, 1:] != s[:, :-1]
    counts = first.sum(1)
    q = max(int(counts.max()) if counts.numel() else 0, 1)
    slot = torch.where(first, first.cumsum(1) - 1, torch.full_like(s, q))  # q = discard column
    out = torch.full((s.shape[0], q + 1), -1, dtype=s.dtype, device=s.device)
    out.scatter_(1, slot, torch.where(first, s, torch.full_like(s, -1)))
    out = out[:, :q]
    mask = torch.arange(q, device=s.device)[None, :] < counts[:, None]
    return out, mask


def keep_last(items: torch.Tensor, max_len: int) -> torch.Tensor:
    """Cut right-padded histories [B, L] to their last ``max_len`` items (still right-padded)."""
    if items.shape[1] <= max_len:
        return items
    lengths = (items > 0).sum(1)
    start = (lengths - max_len).clamp_min(0)
    idx = (start[:, None] + torch.arange(max_len, device=items.device)[None, :])
    out = items.gather(1, idx.clamp_max(items.shape[1] - 1))
    return out.masked_fill(idx >= lengths[:, None], 0)


def _buckets(order: torch.Tensor, sorted_counts: list[int], budget: int) -> list[torch.Tensor]:
    """Split rows (``order``, ascending token count) into consecutive buckets whose padded
    size (rows x widest row) stays within ``budget`` (a bucket holds at least one row)."""
    out, start = [], 0
    n = len(sorted_counts)
    while start < n:
        end = start + 1
        while end < n and (end + 1 - start) * max(sorted_counts[end], 1) <= budget:
            end += 1
        out.append(order[start:end])
        start = end
    return out


def _masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over dim 1 of ``x`` [B, T, d] where ``mask`` [B, T]; rows need >= 1 True."""
    w = mask.to(x.dtype)
    return (x * w[..., None]).sum(1) / w.sum(1, keepdim=True).clamp_min(1.0)


def _late_ids(fused: torch.Tensor, id_scores: torch.Tensor) -> torch.Tensor:
    """The official code's transductive score: modalities weigh 2/3, the id 1/3."""
    return (2.0 * fused + id_scores) / 3.0


def _ensure_one(valid: torch.Tensor) -> torch.Tensor:
    """Mark column 0 valid in rows with no valid entry, so no attention row is all-masked.

    Only degenerate rows (e.g. a history whose items have no modality) are affected; their
    column 0 holds a content-free token (zero features)."""
    empty = ~valid.any(1)
    if bool(empty.any()):
        valid = valid.clone()
        valid[empty, 0] = True
    return valid


# ----------------------------------------------------------------------------- the model

class MISSRec(SequentialRecommender):
    """The MISSRec sequence model (§3) over a catalogue of ``n_items`` items.

    Construct with the config, the catalogue size and each modality's feature width, then
    :meth:`attach_catalogue` before training or scoring. The catalogue (features and
    presence masks) is not part of the state dict; the interest clustering is (as extra
    state, tagged with a catalogue fingerprint and recomputed when the catalogue differs).
    """

    def __init__(self, config: MISSRecConfig, n_items: int, feature_dims: dict[str, int]):
        super().__init__()
        config.validate()
        check_feature_dims("missrec", config.modalities, feature_dims)
        for m in config.modalities:
            if not m.isidentifier():
                raise ValueError(f"modality name {m!r} must be a Python identifier")
        self.config = config
        self.n_items = int(n_items)
        self.modalities = list(config.modalities)
        self.feature_dims = {m: int(feature_dims[m]) for m in self.modalities}
        c, d = config, config.d

        self.adapters = nn.ModuleDict({
            m: make_adapter(c.adapter, self.feature_dims[m], d, c.n_experts, c.adapter_dropout)
            for m in self.modalities})
        self.alpha = Concentration(c.alpha_init, c.alpha_learnable, c.alpha_param == "softplus")
        self.position = nn.Embedding(c.max_len, d)
        # modules are only created when used, so DDP needs no find_unused_parameters
        self.modality_type = (nn.Embedding(len(self.modalities), d)
                              if c.tokens == "separate" else None)
        self.input_norm = nn.LayerNorm(d, eps=c.layer_norm_eps)
        self.query_norm = (nn.LayerNorm(d, eps=c.layer_norm_eps)
                           if c.decoder == "interest" and c.arrangement == "paper" else None)
        self.input_dropout = nn.Dropout(c.dropout)
        block = (d, c.n_heads, c.ffn_dim, c.dropout, c.attn_dropout, c.layer_norm_eps,
                 c.ffn_dropout)
        self.encoder = nn.ModuleList([EncoderBlock(*block) for _ in range(c.n_enc_layers)])
        n_dec = c.n_dec_layers if c.decoder == "interest" else 0
        self.decoder = nn.ModuleList([DecoderBlock(*block) for _ in range(n_dec)])
        self.encoder_norm = nn.LayerNorm(d, eps=c.layer_norm_eps) if c.stack_norm else None
        self.decoder_norm = (nn.LayerNorm(d, eps=c.layer_norm_eps)
                             if c.stack_norm and n_dec else None)
        self.item_id = self._new_id_table(self.n_items) if c.mode == "transductive" else None
        self.apply(self._init_weights)
        if c.attn_init == "xavier":
            for module in self.modules():
                if isinstance(module, MultiHeadAttention):
                    nn.init.xavier_uniform_(module.in_proj.weight)
        for a in self.adapters.values():
            if isinstance(a, MoEAdapter):
                nn.init.zeros_(a.gate.weight)  # uniform routing at start
            elif isinstance(a, LinearAdapter) and c.adapter_init == "torch":
                a.linear.reset_parameters()

        for m in self.modalities:
            self.register_buffer(f"_feat_{m}", None, persistent=False)
            self.register_buffer(f"_present_{m}", None, persistent=False)
        self.register_buffer("_interest_of", None, persistent=False)
        self.register_buffer("_prototypes", None, persistent=False)
        self._catalogue_fp = ""
        self._interest_fp = ""

    # ------------------------------------------------------------------ set-up

    def _init_weights(self, module: nn.Module) -> None:
        std = self.config.init_std
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, std=std)
            if module.padding_idx is not None:
                with torch.no_grad():
                    module.weight[module.padding_idx].zero_()
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)

    def _new_id_table(self, n_items: int) -> nn.Embedding:
        table = nn.Embedding(n_items + 1, self.config.d, padding_idx=0)
        self._init_weights(table)
        return table

    def _device(self) -> torch.device:
        return self.position.weight.device

    def attach_catalogue(self, features: dict[str, torch.Tensor],
                         present: dict[str, torch.Tensor]) -> None:
        """Attach every item's features [n_items+1, d_in] and presence masks [n_items+1].

        Stored as non-persistent buffers (they follow ``.to(device)`` but stay out of the
        state dict). Rows of missing modalities are zeroed here, so whatever a missing row
        holds (zeros, NaN) can never reach a token or a gradient. Row 0 is padding.
        """
        n = self.n_items + 1
        for m in self.modalities:
            if m not in features or m not in present:
                raise ValueError(f"catalogue lacks modality {m!r}")
            f = torch.as_tensor(features[m], dtype=torch.float32)
            p = torch.as_tensor(present[m], dtype=torch.bool)
            if f.shape != (n, self.feature_dims[m]) or p.shape != (n,):
                raise ValueError(
                    f"catalogue {m!r}: features {tuple(f.shape)} / presence {tuple(p.shape)}, "
                    f"expected ({n}, {self.feature_dims[m]}) / ({n},); "
                    "for a catalogue of another size call reset_items(n_items) first")
            p = p.clone()
            p[0] = False
            f = torch.where(p[:, None], f, torch.zeros((), dtype=f.dtype))
            setattr(self, f"_feat_{m}", f.to(self._device()))
            setattr(self, f"_present_{m}", p.to(self._device()))
        self._catalogue_fp = self._fingerprint()

    def _fingerprint(self) -> str:
        """A cheap identity of the attached catalogue (sizes, sums, presence counts)."""
        parts = [str(self.n_items)]
        for m in self.modalities:
            f, p = getattr(self, f"_feat_{m}"), getattr(self, f"_present_{m}")
            parts.append(f"{m}:{int(p.sum())}:{float(f.double().sum()):.10g}:"
                         f"{float(f.double().abs().sum()):.10g}")
        return "|".join(parts)

    def reset_items(self, n_items: int) -> None:
        """Switch to a catalogue of ``n_items`` items (transfer to a new domain).

        Re-creates the item-id table (transductive mode, freshly initialised) and forgets the
        attached catalogue and interest clustering; call :meth:`attach_catalogue` next (and
        :meth:`freeze_for_transfer` after this, since the new table starts trainable).
        """
        self.n_items = int(n_items)
        if self.item_id is not None:
            self.item_id = self._new_id_table(self.n_items).to(self._device())
        for m in self.modalities:
            setattr(self, f"_feat_{m}", None)
            setattr(self, f"_present_{m}", None)
        self._interest_of = None
        self._prototypes = None
        self._catalogue_fp = ""
        self._interest_fp = ""

    def _require_catalogue(self) -> None:
        if getattr(self, f"_feat_{self.modalities[0]}") is None:
            raise RuntimeError("MISSRec: call attach_catalogue(features, present) first")

    # state dict extra: the clustering, so an evaluation run scores with the same interests
    def get_extra_state(self) -> dict[str, Any]:
        if self._interest_of is None:
            return {}
        return {"interest_of": self._interest_of.cpu(), "prototypes": self._prototypes.cpu(),
                "catalogue": self._interest_fp}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        if not state:  # saved before any clustering: recompute on first use
            self._interest_of, self._prototypes, self._interest_fp = None, None, ""
            return
        dev = self._device()
        self._interest_of = state["interest_of"].to(dev)
        self._prototypes = state["prototypes"].to(dev)
        self._interest_fp = str(state["catalogue"])

    # ------------------------------------------------------------------ item side

    def _item_tables(self, ids: torch.Tensor | None = None, augment: float = 0.0) -> _Tables:
        """Adapted tokens of all items (``ids`` None) or of ``ids``; ``augment`` = feature dropout."""
        toks, pres = [], []
        for m in self.modalities:
            f = getattr(self, f"_feat_{m}")
            p = getattr(self, f"_present_{m}")
            if ids is not None:
                f, p = f[ids], p[ids]
            if augment > 0 and self.training:
                f = F.dropout(f, augment, training=True)
            x = self.adapters[m](f)
            toks.append(torch.where(p[:, None], x, torch.zeros((), dtype=x.dtype, device=x.device)))
            pres.append(p)
        z = None
        if self.item_id is not None:
            z = self.item_id.weight if ids is None else self.item_id(ids)
            z = F.dropout(z, self.config.id_dropout, training=self.training)
        interests = self._interest_of
        if interests is not None and ids is not None:
            interests = interests[ids]
        return _Tables(torch.stack(toks), z, torch.stack(pres), interests)

    def _item_vectors(self, tables: _Tables) -> torch.Tensor:
        """Modality tokens x^m [M, n, d], + z with 'added' id scoring (eq. 10): what
        candidates are scored by and what is clustered."""
        if tables.ids is not None and self.config.id_scoring == "added":
            return tables.tokens + tables.ids[None]
        return tables.tokens

    def _id_candidates(self, tables: _Tables) -> torch.Tensor | None:
        """Id embeddings scored apart from the modalities ('late' id scoring), normalised."""
        if tables.ids is None or self.config.id_scoring != "late":
            return None
        return F.normalize(tables.ids, dim=-1)

    def _score(self, u: torch.Tensor, candidates: torch.Tensor, present: torch.Tensor,
               id_candidates: torch.Tensor | None) -> torch.Tensor:
        """Scores of every candidate: eq. 2's fusion, then the official code's late id term."""
        fused = fuse_scores(modality_scores(u, candidates), present, self.alpha())
        return fused if id_candidates is None else _late_ids(fused, u @ id_candidates.t())

    def _candidates(self, tables: _Tables) -> torch.Tensor:
        """Candidate modality embeddings x^m (+ z, eq. 10), normalised: [M, n, d]."""
        x = self._item_vectors(tables)
        if self.config.normalize:
            x = F.normalize(x, dim=-1)
        # a missing modality's embedding is exactly zero, so its score is a finite 0 that
        # fusion can ignore (its weight is 0) without an extra masking pass
        return torch.where(tables.present[..., None], x, torch.zeros((), dtype=x.dtype, device=x.device))

    def _cluster_inputs(self, tables: _Tables) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(tokens [N, d], item index [N], modality index [N]) of every present token."""
        x = self._item_vectors(tables)
        mod, item = torch.nonzero(tables.present, as_tuple=True)
        return x[mod, item], item, mod

    # ------------------------------------------------------------------ interests

    @torch.no_grad()
    def on_epoch_start(self, epoch: int) -> dict[str, float]:
        """Re-cluster the catalogue's tokens into interests (§3.3.1), in eval mode.

        Builds ``interest_of[item, modality]`` (-1 where the modality is missing) and the
        prototype matrix used as decoder queries during the epoch.
        """
        self._require_catalogue()
        start = time.perf_counter()
        was_training = self.training
        self.eval()
        try:
            c = self.config
            x, item, mod = self._cluster_inputs(self._item_tables())
            if x.shape[0] == 0:
                raise RuntimeError("MISSRec: the catalogue has no present modality to cluster")
            scale = 1.0 / math.sqrt(x.shape[1]) if c.dpc_scale_by_dim else 1.0
            result = cluster_tokens(
                x, c.clustering, c.n_clusters, c.knn_k, c.cluster_chunk, dist_scale=scale,
                prototype=c.prototype, backend=c.cluster_backend, kmeans_iters=c.kmeans_iters,
                seed=c.cluster_seed + (max(epoch, 0) if c.kmeans_init == "random" else 0),
                kmeans_init=c.kmeans_init)
            table = torch.full((self.n_items + 1, len(self.modalities)), -1,
                               dtype=torch.long, device=x.device)
            table[item, mod] = result.assignment
            self._interest_of = table
            self._prototypes = result.prototypes.detach().clone()
            self._interest_fp = self._catalogue_fp
        finally:
            self.train(was_training)
        return {"cluster_seconds": time.perf_counter() - start,
                "n_clusters": float(result.n_clusters)}

    def _ensure_interests(self) -> None:
        self._require_catalogue()
        if self._interest_of is None or self._interest_fp != self._catalogue_fp:
            self.on_epoch_start(-1)

    # ------------------------------------------------------------------ sequence side

    def _token_slots(self, items: torch.Tensor, tables: _Tables, keep: torch.Tensor | None
                     ) -> "_Slots":
        """Where a history's tokens come from, compacted so present tokens come first.

        A missing modality (or a dropped / padding item) yields no slot at all, which both
        keeps it out of attention and saves the compute of padding it.
        """
        bsz, length = items.shape
        m = len(self.modalities)
        real = items > 0
        if keep is not None:
            real = real & keep
        present = tables.present[:, items].permute(1, 2, 0) & real[..., None]  # [B, L, M]
        steps = torch.arange(length, device=items.device)
        if self.config.tokens == "separate":
            valid = present.reshape(bsz, length * m)
            slot_item = steps.repeat_interleave(m)
            slot_mod = torch.arange(m, device=items.device).repeat(length)
        else:
            valid = present.any(-1)
            slot_item, slot_mod = steps, None
        counts = valid.sum(1)
        width = max(int(counts.max()), 1)
        # stable sort of "not valid" puts a row's valid slots first, in their original order
        order = torch.sort((~valid).to(torch.int8), dim=1, stable=True).indices[:, :width]
        pos = slot_item[order]  # [B, W] item position of every token
        return _Slots(
            valid=_ensure_one(valid.gather(1, order)),
            item_pos=pos,
            item=items.gather(1, pos),
            modality=None if slot_mod is None else slot_mod[order],
            present=None if slot_mod is not None else present.gather(
                1, pos[..., None].expand(-1, -1, m)),
            lengths=(items > 0).sum(1),
        )

    def _token_counts(self, items: torch.Tensor, tables: _Tables,
                      keep: torch.Tensor | None) -> torch.Tensor:
        real = items > 0
        if keep is not None:
            real = real & keep
        present = tables.present[:, items] & real[None]  # [M, B, L]
        if self.config.tokens == "separate":
            return present.sum((0, 2))
        return present.any(0).sum(1)

    def _user_vectors(self, items: torch.Tensor, tables: _Tables,
                      keep: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """User vectors u [B, d] (unnormalised) and regulariser values [B] for histories.

        ``items`` [B, L] indexes rows of ``tables`` (0 = padding); ``keep`` [B, L] drops
        items (pre-training item dropping). Rows are processed in buckets of similar token
        counts, each padded only to its own widest row (results do not depend on it).
        """
        budget = self.config.bucket_tokens
        counts = self._token_counts(items, tables, keep)
        if budget <= 0 or int(counts.max()) * items.shape[0] <= budget:
            return self._encode_rows(items, tables, keep)
        order = torch.argsort(counts, stable=True)
        parts_u, parts_r = [], []
        for rows in _buckets(order, counts[order].tolist(), budget):
            sub_keep = None if keep is None else keep[rows]
            pu, pr = self._encode_rows(items[rows], tables, sub_keep)
            parts_u.append(pu)
            parts_r.append(pr)
        inverse = torch.empty_like(order)
        inverse[order] = torch.arange(len(order), device=order.device)
        return torch.cat(parts_u)[inverse], torch.cat(parts_r)[inverse]

    def _embed_items(self, slots: "_Slots", tables: _Tables) -> torch.Tensor:
        """Encoder input (§3.4.1): tokens + item-wise position (+ modality type), then
        LayerNorm and dropout. [B, W, d]."""
        c = self.config
        it = slots.item
        if c.tokens == "separate":
            x = tables.tokens[slots.modality, it] + self.modality_type(slots.modality)
        else:
            pres = slots.present.permute(2, 0, 1).to(tables.tokens.dtype)  # [M, B, W]
            x = (tables.tokens[:, it] * pres[..., None]).sum(0)
        if tables.ids is not None:
            x = x + tables.ids[it]
        if c.positions == "recent":
            pos = (slots.lengths[:, None] - 1 - slots.item_pos).clamp_min(0)
        else:
            pos = slots.item_pos
        x = x + self.position(pos.clamp_max(c.max_len - 1))
        return self.input_dropout(self.input_norm(x))

    def _token_interests(self, slots: "_Slots", tables: _Tables) -> torch.Tensor:
        """Interest id of every token [B, W] (-1 for padding); for 'added' tokens, the
        interests of all the item's present modalities [B, W·M]."""
        if slots.modality is not None:
            ids = tables.interests[slots.item, slots.modality]
            return ids.masked_fill(~slots.valid, -1)
        ids = tables.interests[slots.item]  # [B, W, M]
        ids = ids.masked_fill(~(slots.present & slots.valid[..., None]), -1)
        return ids.flatten(1)

    def _interest_queries(self, interest_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Interest tokens (§3.3.2): de-duplicated prototypes of a row's tokens, [B, Q, d] + mask."""
        uniq, mask = unique_per_row(interest_ids)
        mask = _ensure_one(mask)
        protos = self._prototypes[uniq.clamp_min(0)]
        protos = protos.masked_fill(~mask[..., None], 0.0)
        return (protos if self.query_norm is None else self.query_norm(protos)), mask

    def _encode_rows(self, items: torch.Tensor, tables: _Tables, keep: torch.Tensor | None
                     ) -> tuple[torch.Tensor, torch.Tensor]:
        slots = self._token_slots(items, tables, keep)
        x = self._embed_items(slots, tables)
        interest_ids = self._token_interests(slots, tables)
        if self.config.arrangement == "released":
            return self._released_forward(x, slots, interest_ids)
        x = self.encode(x, slots.valid)
        if self.config.decoder == "none":
            xi, xi_mask = x, slots.valid
        else:
            q, q_mask = self._interest_queries(interest_ids)
            xi, xi_mask = self.decode(q, q_mask, x, slots.valid), q_mask
        return _masked_mean(xi, xi_mask), self._regulariser(xi, xi_mask)

    def encode(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """The encoder stack over tokens ``x`` [B, T, d] (padding masked as keys)."""
        mask = key_mask(valid)
        for blk in self.encoder:
            x = blk(x, mask)
        return x if self.encoder_norm is None else self.encoder_norm(x)

    def decode(self, queries: torch.Tensor, query_valid: torch.Tensor, memory: torch.Tensor,
               memory_valid: torch.Tensor) -> torch.Tensor:
        """Interest-aware decoder (§3.4.2): non-causal self-attention among the queries,
        cross-attention to the encoder output; returns the decoded ξ [B, Q, d].

        Nothing depends on the order of the queries (no positions, no causal mask), so the
        mean of ξ over the valid queries is permutation-invariant.
        """
        return self._decoder_stack(queries, key_mask(query_valid), memory, key_mask(memory_valid))

    def _decoder_stack(self, x: torch.Tensor, self_mask: torch.Tensor, memory: torch.Tensor,
                       memory_mask: torch.Tensor) -> torch.Tensor:
        for blk in self.decoder:
            x = blk(x, memory, self_mask, memory_mask)
        return x if self.decoder_norm is None else self.decoder_norm(x)

    def _released_forward(self, x: torch.Tensor, slots: "_Slots", interest_ids: torch.Tensor
                          ) -> tuple[torch.Tensor, torch.Tensor]:
        """Released-code arrangement: encoder over interest tokens, decoder over items."""
        mem, mem_valid = self._interest_queries(interest_ids)
        if self.config.reg_form == "released":
            # a zero query, masked as a key: its output is what the official code's padding
            # slots hold, which its regulariser weighs in (see _reduce_regulariser)
            mem, mem_valid = F.pad(mem, (0, 0, 0, 1)), F.pad(mem_valid, (0, 1))
        mem = self.encode(mem, mem_valid)
        pos, valid = slots.item_pos, slots.valid
        if self.config.item_attention == "causal":
            allowed = (pos[:, None, :] <= pos[:, :, None]) & valid[:, None, :]  # key <= query
            eye = torch.eye(pos.shape[1], dtype=torch.bool, device=x.device)
            self_mask = (allowed | eye[None])[:, None]  # never all-masked
        else:
            self_mask = key_mask(valid)
        x = self._decoder_stack(x, self_mask, mem, key_mask(mem_valid))
        # u: the last item that has a token (mean of its modality tokens when separate)
        last = torch.where(valid, pos, -1).max(1).values
        at_last = valid & (pos == last[:, None])
        return _masked_mean(x, at_last), self._regulariser(mem, mem_valid)

    def _regulariser(self, xi: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Per-row ``(1/M²) Σ_{m,m'} <ξ_m, ξ_m'>`` of eqs. 7-8 (padding queries excluded).

        Equals ``||mean_m ξ_m||²``, which is how it is computed (O(M d), not O(M² d)).
        With ``reg_form='released'`` the parts :meth:`_reduce_regulariser` needs instead,
        [B, 2d + 1]: the sum of the valid ξ, the padding query's output (the last column,
        added by :meth:`_released_forward`) and the count n of valid ξ.
        """
        if self.config.reg_form == "released":
            w = mask.to(xi.dtype)
            return torch.cat([(xi * w[..., None]).sum(1), xi[:, -1], w.sum(1, keepdim=True)], 1)
        if self.config.reg_normalize:
            xi = F.normalize(xi, dim=-1)
        pooled = _masked_mean(xi, mask)
        return (pooled * pooled).sum(-1)

    def _reduce_regulariser(self, *views: torch.Tensor) -> torch.Tensor:
        """One regulariser value from the per-row values of one or more views: their mean
        ('paper'), or ('released') the official code's sum over rows and views.

        The official code pads each batch's interest tokens to P slots, the most any row
        has plus one (its histories are padded to 50 items, and the padding's interest id
        takes a slot), pools each row as ``(n/P) Σ_slots ξ`` (every padding slot holds
        the padding query's output) and adds ``||pooled||² / d`` over the rows.
        """
        if self.config.reg_form != "released":
            return torch.stack([r.mean() for r in views]).mean()
        d = self.config.d
        total = []
        for parts in views:
            valid_sum, pad, n = parts[:, :d], parts[:, d:2 * d], parts[:, 2 * d]
            width = n.max() + 1
            pooled = (n / width)[:, None] * (valid_sum + (width - n)[:, None] * pad)
            total.append((pooled * pooled).sum() / d)
        return torch.stack(total).sum()

    def _finish_user(self, u: torch.Tensor) -> torch.Tensor:
        return F.normalize(u, dim=-1) if self.config.normalize else u

    def _prepare(self, items: torch.Tensor) -> torch.Tensor:
        return keep_last(items.to(self._device()), self.config.max_len)

    # ------------------------------------------------------------------ public API

    def forward(self, batch: SequenceBatch, objective: str = "finetune"
                ) -> tuple[torch.Tensor, dict[str, float]]:
        """``objective``: 'finetune' (eq. 8, :meth:`training_loss`) or 'pretrain' (eq. 7,
        :meth:`pretrain_loss`). Going through ``forward`` lets DistributedDataParallel see
        the call and synchronise gradients."""
        if objective == "finetune":
            return self.training_loss(batch)
        if objective == "pretrain":
            return self.pretrain_loss(batch)
        raise ValueError(f"objective {objective!r}; expected 'finetune' or 'pretrain'")

    def user_vectors(self, batch: SequenceBatch, cache: ItemCache | None = None) -> torch.Tensor:
        """Sequence representations u [B, d] (normalised if ``config.normalize``)."""
        self._ensure_interests()
        if cache is None:
            cache = self.item_cache()
        tables = _Tables(cache.tokens, cache.ids, cache.present, self._interest_of)
        u, _ = self._user_vectors(self._prepare(batch.items), tables)
        return self._finish_user(u)

    def item_cache(self) -> ItemCache:
        """Adapted tokens and candidate embeddings of every item, computed without grad."""
        self._ensure_interests()
        with torch.no_grad():
            tables = self._item_tables()
            return ItemCache(tables.tokens, tables.ids, self._candidates(tables), tables.present,
                             self._id_candidates(tables))

    def score_all(self, batch: SequenceBatch, cache: ItemCache | None = None) -> torch.Tensor:
        """Fused scores (eq. 2) of every item: [B, n_items+1]; column 0 and items with no
        modality are ``-inf``. Not divided by τ (rankings are the same)."""
        if cache is None:
            cache = self.item_cache()
        u = self.user_vectors(batch, cache)
        return self._score(u, cache.candidates, cache.present, cache.id_candidates)

    def score_items(self, batch: SequenceBatch, items: torch.Tensor,
                    cache: ItemCache | None = None) -> torch.Tensor:
        """Fused scores of chosen items: ``items`` [B, C] (per row) -> [B, C]."""
        if cache is None:
            cache = self.item_cache()
        u = self.user_vectors(batch, cache)
        items = items.to(u.device)
        cand = cache.candidates[:, items]  # [M, B, C, d]
        scores = torch.einsum("bd,mbcd->mbc", u, cand)
        fused = fuse_scores(scores, cache.present[:, items], self.alpha())
        if cache.id_candidates is None:
            return fused
        return _late_ids(fused, torch.einsum("bd,bcd->bc", u, cache.id_candidates[items]))

    def training_loss(self, batch: SequenceBatch) -> tuple[torch.Tensor, dict[str, float]]:
        """Fine-tuning objective, eq. 8: softmax over the whole catalogue + γ · regulariser.

        ``ℓ = CE(<u, v_k>/τ, target) + γ/M² Σ <ξ_m, ξ_m'>``, averaged over the batch, with
        ``<u, v_k>`` the dynamic-fusion score of eq. 2 (eq. 9 / eq. 10 by mode).
        """
        self._ensure_interests()
        c = self.config
        tables = self._item_tables()
        u, reg = self._user_vectors(self._prepare(batch.items), tables)
        u = self._finish_user(u)
        scores = self._score(u, self._candidates(tables), tables.present,
                             self._id_candidates(tables))
        loss_si = F.cross_entropy(scores / c.tau, batch.targets.to(u.device))
        loss_reg = self._reduce_regulariser(reg)
        loss = loss_si + c.gamma * loss_reg
        return loss, {"loss_si": float(loss_si.detach()), "loss_reg": float(loss_reg.detach()),
                      "alpha": float(self.alpha().detach())}

    def pretrain_loss(self, batch: SequenceBatch) -> tuple[torch.Tensor, dict[str, float]]:
        """Pre-training objective, eq. 7, on two augmented views of every history.

        * Views (§3.2.2): independent feature dropout (``feature_dropout``) on every
          modality, and optionally item dropping (``item_drop``) that removes the same items
          from every modality of a view.
        * Sequence-item contrast (eq. 5) of view 1 against the batch's targets, scored by
          dynamic fusion (eq. 2). In-batch negatives whose item equals the positive's are
          masked out (they are not negatives).
        * Sequence-sequence contrast (eq. 6): u_i vs u'_i, negatives u_j and u'_j (j != i).
          The literal eq. 6 also counts ``<u_i, u_i>`` in the denominator; that constant
          term (1/τ after normalisation) only caps the loss, so it is left out, as in NT-Xent.
        * Regulariser: mean of the two views' (eqs. 7-8).
        """
        self._ensure_interests()
        c = self.config
        items = self._prepare(batch.items)
        targets = batch.targets.to(items.device)
        bsz, length = items.shape
        zero = torch.zeros(1, dtype=items.dtype, device=items.device)
        ids, inverse = torch.unique(torch.cat([zero, items.flatten(), targets]),
                                    return_inverse=True)
        local = inverse[1:1 + bsz * length].view(bsz, length)
        local_t = inverse[1 + bsz * length:]
        u_views, regs = [], []
        for _ in range(2):
            tables = self._item_tables(ids, augment=c.feature_dropout)
            keep = self._item_drop_mask(items) if c.item_drop > 0 else None
            u, reg = self._user_vectors(local, tables, keep)
            u_views.append(self._finish_user(u))
            regs.append(reg)
        clean = self._item_tables(ids)
        cand = self._candidates(clean)[:, local_t]  # [M, B, d]
        scores = fuse_scores(modality_scores(u_views[0], cand), clean.present[:, local_t],
                             self.alpha())  # [B, B]
        same = targets[:, None] == targets[None, :]
        eye = torch.eye(bsz, dtype=torch.bool, device=items.device)
        scores = scores.masked_fill(same & ~eye, float("-inf"))
        labels = torch.arange(bsz, device=items.device)
        loss_si = F.cross_entropy(scores / c.tau, labels)
        u1, u2 = u_views
        cross = u1 @ u2.t()
        within = (u1 @ u1.t()).masked_fill(eye, float("-inf"))
        loss_ss = F.cross_entropy(torch.cat([cross, within], 1) / c.tau, labels)
        loss_reg = self._reduce_regulariser(*regs)
        loss = loss_si + c.lambda_ss * loss_ss + c.gamma * loss_reg
        return loss, {"loss_si": float(loss_si.detach()), "loss_ss": float(loss_ss.detach()),
                      "loss_reg": float(loss_reg.detach()), "alpha": float(self.alpha().detach())}

    def _item_drop_mask(self, items: torch.Tensor) -> torch.Tensor:
        """[B, L] True where a history item stays in the view; every row keeps >= 1 item."""
        real = items > 0
        keep = (torch.rand(items.shape, device=items.device) >= self.config.item_drop) & real
        lengths = real.sum(1)
        lost = ~keep.any(1)
        if bool(lost.any()):
            rows = torch.nonzero(lost).squeeze(1)
            keep[rows, (lengths[rows] - 1).clamp_min(0)] = True
        return keep

    # ------------------------------------------------------------------ transfer

    def transfer_parameters(self, mode: str) -> list[str]:
        """Parameters trained in parameter-efficient transfer (§3.6).

        'inductive': the adapters, α and the input LayerNorms (item tokens and interest
        queries); 'transductive': those plus the item-id table; 'full': every parameter.
        """
        names = [n for n, _ in self.named_parameters()]
        if mode == "full":
            return names
        if mode not in ("inductive", "transductive"):
            raise ValueError(f"transfer mode {mode!r}; expected 'inductive', 'transductive' or 'full'")
        prefixes = ("adapters.", "alpha.", "input_norm.", "query_norm.")
        chosen = [n for n in names if n.startswith(prefixes)]
        if mode == "transductive":
            if self.item_id is None:
                raise ValueError("transductive transfer needs a model built with mode='transductive'")
            chosen.append("item_id.weight")
        return chosen

    def freeze_for_transfer(self, mode: str) -> list[str]:
        """Set ``requires_grad`` to train only :meth:`transfer_parameters`; returns their names."""
        chosen = set(self.transfer_parameters(mode))
        for n, p in self.named_parameters():
            p.requires_grad_(n in chosen)
        return sorted(chosen)
