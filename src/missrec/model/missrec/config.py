"""Hyper-parameters of MISSRec, typed and checked where the config is built.

:class:`MISSRecConfig` is the paper's model: its defaults follow the paper (§4.2.4) and,
where it is silent, UniSRec and the released code. What the official code does differently
is one component, :class:`OfficialCode` (``MISSRecConfig.official``): None is the paper's
model; the ``released`` preset sets it with every official choice, and the default model
keeps the official arrangement with the paper's regulariser. The code these choices select
lives in :mod:`.released`.

Counts of tokens are explicit: ``n_clusters`` and ``knn_k`` are a share of the tokens
clustered (``"50%"``) or a number of them (``300``). Configs saved before either change
(flat official-code fields, counts as ratios below 1) still load (:meth:`MISSRecConfig.upgrade`).
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from ...config import check_ranges, from_dict, to_dict
from ...errors import ModelConfigError
from ...presets import read_preset
from ..adapters import AdapterKind

ClusteringMethod = Literal["dpc-knn", "kmeans"]
KMeansInit = Literal["kmeans++", "random"]


@dataclass
class OfficialCode:
    """Where the official MISSRec code departs from the paper (docs/fidelity.md), one field
    each. Every default is the official code's; setting a field to the paper's value takes
    that departure back (the paper's value is the first one each field's docstring names
    after 'paper:')."""

    arrangement: Literal["released", "paper"] = "released"
    """'released': the encoder reads the interest tokens, the decoder's queries are the item
    tokens (see ``item_attention``) and u is the decoder output at the last item; the
    interest prototypes enter the encoder as they are (no input LayerNorm). Paper: 'paper'
    (the encoder reads item tokens, the decoder's queries are interest tokens, §3.4)."""
    item_attention: Literal["full", "causal"] = "full"
    """Self-attention among item tokens in the 'released' arrangement's decoder: 'full'
    (every item sees the whole history, as the official code runs it: its decoder mask is
    built with ``is_casual=False``) or 'causal' (an item sees itself and earlier items)."""
    tokens: Literal["added", "separate"] = "added"
    """'added': one token per item, the sum of its present modality tokens. Paper:
    'separate' (one token per item and present modality, fusion in context)."""
    positions: Literal["start", "recent"] = "start"
    """'start': the first item is position 0. Paper (unstated; UniSRec's choice): 'recent'
    (the last item is position 0, so it has the same embedding whatever the length)."""
    id_scoring: Literal["late", "added"] = "late"
    """Transductive mode: 'late' (``(2 <u, v> + <u, z/|z|>) / 3`` with v fused from the
    modality embeddings alone, which are also what is clustered). Paper: 'added' (eq. 10: z
    is added to every modality embedding, ``<u, v + z>``; ids also shape the clustering)."""
    reg_form: Literal["released", "paper"] = "released"
    """The regulariser of eqs. 7-8. 'released' (needs arrangement 'released'): on the raw
    interest-encoder outputs of a batch padded to P slots, ``Σ_rows ||(n/P) Σ_slots ξ||² / d``,
    padding slots included, summed (not averaged) over the batch and the views; its weight
    grows with the batch size. Paper: 'paper' (per sequence ``(1/M²) Σ <ξ_m, ξ_m'>``,
    averaged over the batch and the pre-training views)."""
    alpha_param: Literal["free", "softplus"] = "free"
    """'free': α = raw, any sign (the official ``fusion_factor``; may start at 0). Paper:
    'softplus' (α = softplus(raw) >= 0)."""
    ffn_dropout: float = 0.5
    """Dropout between the two layers of every feed-forward network (nn.Transformer's, at
    its single dropout rate). Paper: 0."""
    stack_norm: bool = True
    """A final LayerNorm after the encoder stack and after the decoder stack, as
    nn.Transformer adds. Paper: False."""
    attn_init: Literal["xavier", "normal"] = "xavier"
    """Attention input projections (q, k, v) keep nn.Transformer's uniform Xavier init
    (the official code's normal re-initialisation skips them). Paper: 'normal' (std
    ``init_std``, like every other weight)."""
    adapter_init: Literal["torch", "normal"] = "torch"
    """Linear adapters keep nn.Linear's own uniform init (they are created after the
    official code's re-initialisation). Paper: 'normal'."""

    def __post_init__(self) -> None:
        check_choices(self, "model.official")
        if not 0.0 <= self.ffn_dropout < 1.0:
            _fail(f"model.official.ffn_dropout must be in [0, 1), got {self.ffn_dropout}")
        if self.reg_form == "released" and self.arrangement != "released":
            _fail("model.official.reg_form='released' needs model.official.arrangement='released'")


OFFICIAL_FIELDS = tuple(f.name for f in dataclasses.fields(OfficialCode))


@dataclass
class MISSRecConfig:
    """Hyper-parameters of :class:`MISSRec`; defaults follow the paper (§4.2.4)."""

    REMOVED: ClassVar[dict[str, Any]] = {"dpc_scale_by_dim": False, "alpha_learnable": True,
                                         "cluster_seed": 0}
    """Options that no longer exist and the value every run had (saved configs holding it
    still load, see :func:`missrec.config.from_dict`)."""
    LEGACY_KEYS: ClassVar[tuple[str, ...]] = OFFICIAL_FIELDS
    """Keys of configs saved before :class:`OfficialCode` existed (flat fields), still
    accepted by ``--set`` and in files (:meth:`upgrade`)."""

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
    id_item_dropout: float = 0.0
    """Transductive mode, training only: each item loses its whole id embedding with this
    probability in a step, for the whole catalogue at once, in histories and among candidates
    alike. An item added after training has no id embedding; this shows the loss such items
    beside items that have one, as ``modality_dropout`` does for a missing modality."""
    adapter: AdapterKind = "linear"
    """Adapter ψ: 'linear' | 'moe' | 'none' (identity, needs d == feature dim)."""
    n_experts: int = 8
    """Experts of the 'moe' adapter."""
    modalities: list[str] = field(default_factory=lambda: ["text", "image"])
    """Modalities used, in this order (names of the catalogue's feature matrices)."""
    mode: Literal["inductive", "transductive"] = "inductive"
    """'inductive' (ID-agnostic, eq. 9) or 'transductive' (adds an item-id embedding, eq. 10)."""
    readout: Literal["mean", "recent"] = "mean"
    """How the paper's arrangement makes u: 'mean' (§3.4.2: the mean of the decoded interest
    tokens ξ, which carries no notion of which item came last) or 'recent' (the encoder's
    token of the most recent item is one more decoder query, beside the interest tokens, and
    its decoded output is u; the regulariser still acts on ξ alone)."""
    decoder: Literal["interest", "none"] = "interest"
    """'interest' (the decoder) or 'none' (u = mean of the encoder output; with
    n_enc_layers=2 this is the "2-layer context encoder" variant of the paper's arrangement)."""
    clustering: ClusteringMethod = "dpc-knn"
    """Interest discovery (§3.3.1): 'dpc-knn' (the paper) or 'kmeans' (the released code)."""
    n_clusters: str = "50%"
    """K_c: a share of the tokens clustered (``"50%"``) or a number of clusters (``300``).
    Released code: 50% for fine-tuning, 2% for pre-training."""
    knn_k: str = "5"
    """k of eq. 3: a number of neighbours (5, as TCFormer's DPC-KNN) or a share of the
    tokens (the released fine-tuning config: ``"10%"``)."""
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
    normalize: bool = True
    """L2-normalise u and candidate modality embeddings before inner products."""
    reg_normalize: bool = True
    """Compute the regulariser of eqs. 7-8 on L2-normalised ξ (the paper's form)."""
    item_drop: float = 0.0
    """Pre-training augmentation: probability of dropping a history item from a view; the
    same items leave every modality of that view (released code: 0.2)."""
    max_len: int = 50
    """Longest history used (most recent items); also the size of the position table."""
    layer_norm_eps: float = 1e-12
    """LayerNorm epsilon (RecBole / released code value)."""
    init_std: float = 0.02
    """Std of the normal initialisation of linear and embedding weights."""
    bucket_tokens: int = 1024
    """Padded tokens per bucket: a batch is split into buckets of rows with similar token
    counts, each padded only to its own widest row. Efficiency only (results do not depend
    on it); 0 encodes the batch in one piece."""
    official: OfficialCode | None = None
    """The official code's departures (:class:`OfficialCode`), or None: the paper's model."""

    def __post_init__(self) -> None:
        # a count given as a number (Python callers, a YAML integer) is kept as its text
        self.n_clusters, self.knn_k = token_amount(self.n_clusters), token_amount(self.knn_k)
        if isinstance(self.official, dict):
            self.official = from_dict(OfficialCode, self.official, "model.official")
        if self.official is not None and not isinstance(self.official, OfficialCode):
            _fail(f"model.official={self.official!r}; expected 'released' (the official code's every "
                  "choice), 'paper' (none) or a mapping of its fields")
        self.validate()

    @property
    def variant(self) -> OfficialCode:
        """The choice of every :class:`OfficialCode` field this model makes: the official
        code's where ``official`` says so, else the paper's."""
        return self.official if self.official is not None else PAPER

    @property
    def cluster_spec(self) -> float | int:
        """K_c as :func:`~missrec.model.interests.resolve_count` takes it."""
        return parse_amount(self.n_clusters, "model.n_clusters")

    @property
    def knn_spec(self) -> float | int:
        """k of eq. 3 as :func:`~missrec.model.interests.resolve_count` takes it."""
        return parse_amount(self.knn_k, "model.knn_k")

    def validate(self) -> None:
        """Raise :class:`ModelConfigError` naming the first invalid field."""
        check_choices(self, "model")
        check_ranges(self, "model", self._range_checks(), ModelConfigError)
        parse_amount(self.n_clusters, "model.n_clusters")
        parse_amount(self.knn_k, "model.knn_k")
        if self.d % self.n_heads:
            _fail(f"model.d={self.d} must be divisible by model.n_heads={self.n_heads}")
        if not self.modalities or len(set(self.modalities)) != len(self.modalities):
            _fail(f"model.modalities={self.modalities!r}: need distinct names")
        if not all(m.isidentifier() for m in self.modalities):
            _fail(f"model.modalities={self.modalities!r}: names must be Python identifiers")
        if self.readout == "recent" and self.variant.arrangement != "paper":
            _fail("model.readout='recent' needs the paper's arrangement (the official one already "
                  "reads u at the last item)")
        if self.decoder == "none" and self.variant.arrangement != "paper":
            _fail("model.decoder='none' needs the paper's arrangement")
        if self.decoder == "interest" and self.n_dec_layers < 1:
            _fail("model.n_dec_layers must be >= 1 (or set model.decoder='none')")
        for name in ("dropout", "attn_dropout", "feature_dropout", "adapter_dropout",
                     "item_drop", "id_dropout", "id_item_dropout", "modality_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                _fail(f"model.{name} must be in [0, 1), got {getattr(self, name)}")

    def _range_checks(self) -> list[tuple[str, bool, str]]:
        """(field, within range, what is expected) for every numeric field with a bound."""
        positive = [(n, getattr(self, n) >= 1, ">= 1") for n in (
            "d", "n_heads", "n_enc_layers", "ffn_dim", "n_experts", "max_len", "kmeans_iters", "cluster_chunk")]
        return [*positive,
                ("n_dec_layers", self.n_dec_layers >= 0, ">= 0"), ("bucket_tokens", self.bucket_tokens >= 0, ">= 0"),
                ("tau", self.tau >= 1e-6, ">= 1e-6 (scores are divided by it)"), ("gamma", self.gamma >= 0, ">= 0"),
                ("lambda_ss", self.lambda_ss >= 0, ">= 0"), ("layer_norm_eps", self.layer_norm_eps >= 1e-30, ">= 1e-30 (above float32 underflow)"),
                ("init_std", self.init_std > 0, "> 0"),
                ("alpha_init", self.variant.alpha_param == "free" or self.alpha_init > 0,
                 "> 0 with the paper's alpha = softplus(raw)")]

    @classmethod
    def upgrade(cls, data: dict[str, Any]) -> dict[str, Any]:
        """A config mapping in today's layout from one saved (or typed) in an earlier one:

        * the official-code fields at the top level (before :class:`OfficialCode`), or named
          ``official.FIELD`` (``--set official.tokens=added``), move into ``official``: over
          its current value, or over the paper's choices when it is None (one departure at a
          time), and a config that sets none of them away from the paper is the paper's model;
        * ``official`` given as ``'released'`` is the official code's every choice, as
          ``'paper'`` the paper's model;
        * ``n_clusters`` / ``knn_k`` given as a ratio below 1 become shares (``0.5`` ->
          ``"50%"``), a whole number a count.
        """
        data = dict(data)
        official = data.get("official")
        if isinstance(official, str):
            official = {"released": {}, "paper": None, "none": None, "null": None, "": None}.get(official.lower(),
                                                                                              official)
        flat = {k.removeprefix("official."): data.pop(k) for k in list(data)
                if k.removeprefix("official.") in OFFICIAL_FIELDS}
        if flat:
            base = to_dict(PAPER) if official is None else {**to_dict(OfficialCode()), **dict(official)}
            merged = {**base, **flat}
            official = None if from_dict(OfficialCode, merged, "model") == PAPER and official is None else merged
        if "official" in data or flat:
            data["official"] = official
        for key in ("n_clusters", "knn_k"):
            if key in data:
                data[key] = token_amount(data[key])
        return data

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


def token_amount(value: Any) -> Any:
    """A count of tokens in the config's text form: a ratio below 1 (how earlier configs
    wrote a share) as a percentage, a whole number as its digits; anything else unchanged
    (:func:`parse_amount` judges it)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return value.strip()
    elif isinstance(value, (int, float)):
        number = float(value)
    else:
        return value
    if 0 < number < 1:
        return f"{number * 100:.10g}%"
    return str(int(number)) if number.is_integer() else str(value)


def parse_amount(text: Any, where: str) -> float | int:
    """``"50%"`` -> 0.5 (a share of the tokens, in (0, 100)%), ``"300"`` -> 300 (a count >= 1)."""
    spec = str(text).strip()
    try:
        if spec.endswith("%"):
            share = float(spec[:-1]) / 100
            if 0 < share < 1:
                return share
        elif float(spec).is_integer() and float(spec) >= 1:
            return int(float(spec))
    except ValueError:
        pass
    _fail(f"{where}={text!r}; expected a share of the tokens such as '50%' (above 0%, below 100%) "
          "or a whole count >= 1")


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


PAPER = OfficialCode(arrangement="paper", item_attention="full", tokens="separate", positions="recent",
                     id_scoring="added", reg_form="paper", alpha_param="softplus", ffn_dropout=0.0,
                     stack_norm=False, attn_init="normal", adapter_init="normal")
"""The paper's value of every :class:`OfficialCode` choice: what ``official=None`` runs."""
