"""Hyper-parameters of MISSRec, typed and checked where the config is built.

Defaults follow the paper (§4.2.4) and, where it is silent, UniSRec and the released code.
Fields that exist only to reproduce the official code say so; their code lives in
:mod:`.released`, and the ``released`` preset sets them all (``missrec train --preset released``).
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from ...config import check_ranges, from_dict
from ...errors import ModelConfigError
from ...presets import read_preset
from ..adapters import AdapterKind

ClusteringMethod = Literal["dpc-knn", "kmeans"]
KMeansInit = Literal["kmeans++", "random"]

@dataclass
class MISSRecConfig:
    """Hyper-parameters of :class:`MISSRec`; defaults follow the paper (§4.2.4)."""

    REMOVED: ClassVar[dict[str, Any]] = {"dpc_scale_by_dim": False, "alpha_learnable": True,
                                         "cluster_seed": 0}
    """Options that no longer exist and the value every run had (saved configs holding it
    still load, see :func:`missrec.config.from_dict`)."""

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
    modality_dropout: float = 0.0
    """Training only: each of an item's modalities is dropped with this probability in a
    step (an item keeps at least one), for the whole catalogue at once, in histories and
    among candidates alike. A catalogue where every item has every modality never shows the
    loss an item with one missing; this does, so such an item is scored on the same scale
    (docs/serving.md, missing modalities)."""
    id_dropout: float = 0.0
    """Transductive mode: dropout on the item-id embeddings z while training (history
    tokens and candidates alike), against an id table that overfits within a few epochs.
    Neither the paper nor the released code has it; docs/tuning.md shows its effect."""
    adapter: AdapterKind = "linear"
    """Adapter ψ: 'linear' | 'moe' | 'none' (identity, needs d == feature dim)."""
    n_experts: int = 8
    """Experts of the 'moe' adapter."""
    modalities: list[str] = field(default_factory=lambda: ["text", "image"])
    """Modalities used, in this order (names of the catalogue's feature matrices)."""
    mode: Literal["inductive", "transductive"] = "inductive"
    """'inductive' (ID-agnostic, eq. 9) or 'transductive' (adds an item-id embedding, eq. 10)."""
    tokens: Literal["separate", "added"] = "separate"
    """'separate': one token per (item, present modality), the paper's fusion in context;
    'added': one token per item, the sum of its present modality tokens (released code)."""
    arrangement: Literal["paper", "released"] = "paper"
    """'paper': encoder reads item tokens, decoder queries are interest tokens, u = mean of
    decoded ξ. 'released': encoder reads interest tokens, decoder queries are item tokens
    (see ``item_attention``), u = decoder output at the last item; the interest prototypes
    enter the encoder as they are (no input LayerNorm), as in the official code."""
    item_attention: Literal["full", "causal"] = "full"
    """Self-attention among item tokens in the 'released' arrangement's decoder: 'full'
    (every item sees the whole history, as the official code runs it: its decoder mask is
    built with ``is_casual=False``) or 'causal' (an item sees itself and earlier items)."""
    id_scoring: Literal["added", "late"] = "added"
    """How item ids enter candidate scores in transductive mode: 'added' (eq. 10: z is
    added to every modality embedding, ``<u, v + z>``; ids also shape the clustering) or
    'late' (the official code: ``(2 <u, v> + <u, z/|z|>) / 3`` with v fused from the
    modality embeddings alone, which are also what is clustered)."""
    readout: Literal["mean", "recent"] = "mean"
    """How the 'paper' arrangement makes u: 'mean' (§3.4.2: the mean of the decoded interest
    tokens ξ, which carries no notion of which item came last) or 'recent' (the encoder's
    token of the most recent item is one more decoder query, beside the interest tokens, and
    its decoded output is u; the regulariser still acts on ξ alone)."""
    decoder: Literal["interest", "none"] = "interest"
    """'interest' (the decoder) or 'none' (u = mean of the encoder output; with
    n_enc_layers=2 this is the "2-layer context encoder" variant). 'none' needs
    arrangement 'paper'."""
    clustering: ClusteringMethod = "dpc-knn"
    """Interest discovery (§3.3.1): 'dpc-knn' (the paper) or 'kmeans' (released code)."""
    n_clusters: float = 0.5
    """K_c: a ratio of the token count if < 1, else an absolute count. Released code: 0.5
    for fine-tuning, 0.02 for pre-training."""
    knn_k: float = 5
    """k of eq. 3: a ratio of the token count if < 1, else an absolute count (5 as in
    TCFormer's DPC-KNN; the released fine-tuning config uses the ratio 0.1)."""
    prototype: Literal["peak", "mean"] = "peak"
    """DPC-KNN prototype vectors: 'peak' (the density-peak tokens) or 'mean' (cluster means,
    as the released code). k-means always uses its centroids."""
    kmeans_iters: int = 10
    """Lloyd iterations of k-means."""
    kmeans_init: KMeansInit = "kmeans++"
    """k-means initial centres: 'kmeans++' (the same seed every epoch) or 'random' (K
    distinct tokens, drawn afresh every epoch, seeded by the epoch).
    The official code's torchpq MinibatchKMeans amounts to 'random' with one Lloyd step:
    the catalogue fits in one of its mini-batches, and its stopping test compares the
    centroids with themselves after the first update, so it always stops there."""
    cluster_backend: Literal["exact", "faiss", "approximate", "auto"] = "exact"
    """'exact' (chunked torch, N² time), 'faiss' (approximate eq. 3 neighbours; needs
    faiss-cpu), 'approximate' (a cell index for eq. 3, eq. 4 and the assignment: sub-quadratic,
    for large catalogues, docs/scale.md) or 'auto' (exact up to 32,768 tokens)."""
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
    alpha_param: Literal["softplus", "free"] = "softplus"
    """A learnable α as 'softplus' (α = softplus(raw) >= 0, the paper's constraint) or
    'free' (α = raw, any sign, as the official code's ``fusion_factor``; may start at 0)."""
    normalize: bool = True
    """L2-normalise u and candidate modality embeddings before inner products."""
    reg_normalize: bool = True
    """Compute the regulariser of eqs. 7-8 on L2-normalised ξ ('paper' form only)."""
    reg_form: Literal["paper", "released"] = "paper"
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
    positions: Literal["recent", "start"] = "recent"
    """'recent' (the last item is position 0) or 'start' (the first item is position 0)."""
    layer_norm_eps: float = 1e-12
    """LayerNorm epsilon (RecBole / released code value)."""
    init_std: float = 0.02
    """Std of the normal initialisation of linear and embedding weights."""
    adapter_init: Literal["normal", "torch"] = "normal"
    """Initialisation of linear adapters: 'normal' (std ``init_std``, zero bias, like every
    other weight) or 'torch' (nn.Linear's own uniform init of weight and bias, which the
    official code's adapters keep because they are created after its re-initialisation)."""
    attn_init: Literal["normal", "xavier"] = "normal"
    """Initialisation of the attention input projections (q, k, v): 'normal' (std
    ``init_std``, like every other weight) or 'xavier' (uniform Xavier, which the official
    code's nn.Transformer keeps because its normal re-initialisation skips them)."""
    bucket_tokens: int = 1024
    """Padded tokens per bucket: a batch is split into buckets of rows with similar token
    counts, each padded only to its own widest row. Efficiency only (results do not depend
    on it); 0 encodes the batch in one piece."""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise :class:`ModelConfigError` naming the first invalid field."""
        check_choices(self, "model")
        check_ranges(self, "model", self._range_checks(), ModelConfigError)
        if self.d % self.n_heads:
            _fail(f"model.d={self.d} must be divisible by model.n_heads={self.n_heads}")
        if not self.modalities or len(set(self.modalities)) != len(self.modalities):
            _fail(f"model.modalities={self.modalities!r}: need distinct names")
        if not all(m.isidentifier() for m in self.modalities):
            _fail(f"model.modalities={self.modalities!r}: names must be Python identifiers")
        if self.reg_form == "released" and self.arrangement != "released":
            _fail("model.reg_form='released' needs model.arrangement='released'")
        if self.readout == "recent" and self.arrangement != "paper":
            _fail("model.readout='recent' needs model.arrangement='paper' (the 'released' "
                  "arrangement already reads u at the last item)")
        if self.decoder == "none" and self.arrangement != "paper":
            _fail("model.decoder='none' needs model.arrangement='paper'")
        if self.decoder == "interest" and self.n_dec_layers < 1:
            _fail("model.n_dec_layers must be >= 1 (or set model.decoder='none')")
        for name in ("dropout", "attn_dropout", "ffn_dropout", "feature_dropout", "adapter_dropout",
                     "item_drop", "id_dropout", "modality_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                _fail(f"model.{name} must be in [0, 1), got {getattr(self, name)}")

    def _range_checks(self) -> list[tuple[str, bool, str]]:
        """(field, within range, what is expected) for every numeric field with a bound."""
        positive = [(n, getattr(self, n) >= 1, ">= 1") for n in (
            "d", "n_heads", "n_enc_layers", "ffn_dim", "n_experts", "max_len", "kmeans_iters", "cluster_chunk")]
        counts = [(n, _is_ratio_or_count(getattr(self, n)), "a ratio in (0, 1) or a whole count >= 1")
                  for n in ("n_clusters", "knn_k")]
        return [*positive, *counts,
                ("n_dec_layers", self.n_dec_layers >= 0, ">= 0"), ("bucket_tokens", self.bucket_tokens >= 0, ">= 0"),
                ("tau", self.tau >= 1e-6, ">= 1e-6 (scores are divided by it)"), ("gamma", self.gamma >= 0, ">= 0"),
                ("lambda_ss", self.lambda_ss >= 0, ">= 0"), ("layer_norm_eps", self.layer_norm_eps >= 1e-30, ">= 1e-30 (above float32 underflow)"),
                ("init_std", self.init_std > 0, "> 0"),
                ("alpha_init", self.alpha_param == "free" or self.alpha_init > 0,
                 "> 0 with model.alpha_param='softplus' (alpha = softplus(raw))")]

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> "MISSRecConfig":
        """A named preset's model settings (``presets/missrec/NAME.yaml``): 'paper'
        (§4.2.4, the defaults), 'released' (the official code's fine-tuning settings) and
        'released-pretrain' (its pre-training settings), with ``overrides`` on top."""
        return from_dict(cls, {**read_preset("missrec", name)["model"], **overrides}, "model")

    @staticmethod
    def preset_train(name: str) -> dict[str, Any]:
        """Training settings that belong to a preset (e.g. the released fine-tuning batch size)."""
        return read_preset("missrec", name)["train"]


def preset(name: str, **overrides: Any) -> MISSRecConfig:
    """Module-level alias of :meth:`MISSRecConfig.preset`."""
    return MISSRecConfig.preset(name, **overrides)


def _fail(message: str) -> typing.NoReturn:
    raise ModelConfigError(message)


def _is_ratio_or_count(spec: float) -> bool:
    """K_c and k of eq. 3: a ratio in (0, 1) or a whole count (see ``interests.resolve_count``)."""
    return 0 < spec < 1 or (spec >= 1 and float(spec).is_integer())


@functools.cache
def _choice_fields(cls: type) -> dict[str, tuple]:
    """Each ``Literal[...]``-typed field of dataclass ``cls`` and its allowed values."""
    hints = typing.get_type_hints(cls)
    return {f.name: typing.get_args(hints[f.name]) for f in dataclasses.fields(cls)
            if typing.get_origin(hints[f.name]) is Literal}


def check_choices(config: Any, section: str) -> None:
    """Raise :class:`ModelConfigError` for the first ``Literal`` field holding another value."""
    for name, allowed in _choice_fields(type(config)).items():
        value = getattr(config, name)
        if value not in allowed:
            _fail(f"{section}.{name}={value!r}; expected one of {list(allowed)}")
