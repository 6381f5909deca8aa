"""The item side of MISSRec: the attached catalogue, its adapted modality tokens (§3.2.3),
candidate embeddings for dynamic fusion (eqs. 1-2, 9-10) and the interest clustering
(§3.3.1) that is recomputed at every epoch start.

The catalogue (features and presence masks) is not part of the state dict; the interest
clustering is (as extra state, tagged with a catalogue fingerprint and recomputed when the
catalogue differs), so an evaluation run scores with the interests it was trained with.

Items the model was not trained with are encoded by the same code (:meth:`ItemSide.encode_items`):
their features go through the trained adapters ψ^m, and two things are not redone:

* **Interests** (§3.3): the clustering stays the one the model was trained with (the
  decoder's queries are its prototypes). A new item's modality tokens join the interest of
  their nearest prototype, by the distance the clustering itself uses.
* **Item ids** (transductive mode, eq. 10): a new item has no id embedding; it is embedded
  and scored by its features alone (with 'added' id scoring its candidates are its
  normalised modality tokens; with 'late' id scoring its id is left out of the weighted
  mean, :func:`.released.late_ids`). ``id_item_dropout`` shows training such items.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..adapters import make_adapter
from ..base import SequentialRecommender, present_rows
from ..cache import ItemCache, rows
from ..dropout import dropout
from ..interests import Clustering, assign_nearest, cluster_tokens
from . import released
from .config import MISSRecConfig
from .tokens import Tables


@dataclass(frozen=True)
class MISSRecItems(ItemCache):
    """MISSRec's item cache: what scoring and the user side read of every item."""

    tokens: torch.Tensor = rows(axis=1)
    """[M, n, d] adapted modality tokens (zero where missing)."""
    candidates: torch.Tensor = rows(axis=1)
    """[M, n, d] candidate modality embeddings (x^m, + z with 'added' id scoring),
    normalised, zero where missing."""
    present: torch.Tensor = rows(axis=1)
    """[M, n] bool."""
    ids: torch.Tensor | None = rows(optional=True)
    """[n, d] item-id embeddings (transductive) or None."""
    id_candidates: torch.Tensor | None = rows(optional=True)
    """[n, d] normalised id embeddings scored apart ('late' id scoring) or None."""
    interests: torch.Tensor | None = rows(optional=True)
    """[n, M] interest (prototype index) of every item's modality tokens, -1 where missing."""

    def restore_dtypes(self) -> "MISSRecItems":
        return self if self.present.dtype == torch.bool else \
            MISSRecItems(self.tokens, self.candidates, self.present.bool(), self.ids, self.id_candidates,
                         self.interests)

    def tables(self) -> Tables:
        """The per-item lookups a batch of histories is encoded from."""
        return Tables(self.tokens, self.ids, self.present, self.interests)


class ItemSide(SequentialRecommender):
    """MISSRec's item side: the adapters ψ^m, the item-id table (transductive), the attached
    catalogue and the interest clustering; :class:`~.network.MISSRec` adds the sequence side.

    The id table is created by the sequence side, after its own modules: modules are
    registered, and so initialised from the RNG, in a fixed order.
    """

    cache_type = MISSRecItems

    def __init__(self, config: MISSRecConfig, n_items: int, feature_dims: dict[str, int]):
        super().__init__()
        self.config = config
        self.n_items = int(n_items)
        self.modalities = list(config.modalities)
        self.feature_dims = {m: int(feature_dims[m]) for m in self.modalities}
        c = config
        self.adapters = nn.ModuleDict({
            m: make_adapter(c.adapter, self.feature_dims[m], c.d, c.n_experts, c.adapter_dropout)
            for m in self.modalities})
        self.item_id: nn.Embedding | None = None
        for m in self.modalities:
            self.register_buffer(f"_feat_{m}", None, persistent=False)
            self.register_buffer(f"_present_{m}", None, persistent=False)
        self.register_buffer("_interest_of", None, persistent=False)
        self.register_buffer("_prototypes", None, persistent=False)
        self._catalogue_fp = ""
        self._interest_fp = ""

    def _device(self) -> torch.device:
        return next(self.parameters()).device

    def new_id_table(self, n_items: int) -> nn.Embedding:
        """A freshly initialised item-id table for ``n_items`` items (row 0 padding)."""
        table = nn.Embedding(n_items + 1, self.config.d, padding_idx=0)
        init_weights(table, self.config.init_std)
        return table

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
            self.item_id = self.new_id_table(self.n_items).to(self._device())
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

    # ------------------------------------------------------------------ item tables

    def item_tables(self, ids: torch.Tensor | None = None, augment: float = 0.0) -> Tables:
        """Adapted tokens ψ^m(f) of all attached items (``ids`` None) or of ``ids``, their
        id embeddings and interests; ``augment`` is the feature dropout of §3.2.2 (training
        only)."""
        feats, present = {}, {}
        for m in self.modalities:
            f, p = getattr(self, f"_feat_{m}"), getattr(self, f"_present_{m}")
            feats[m], present[m] = (f, p) if ids is None else (f[ids], p[ids])
        tokens, pres = self._modality_tokens(feats, present, augment)
        z = None
        if self.item_id is not None:
            z = self.item_id.weight if ids is None else self.item_id(ids)
            z = dropout(z, self.config.id_dropout, self.training)
        interests = self._interest_of
        if interests is not None and ids is not None:
            interests = interests[ids]
        return Tables(tokens, z, pres, interests)

    def _modality_tokens(self, features: dict[str, torch.Tensor], present: dict[str, torch.Tensor],
                         augment: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
        """[M, k, d] tokens ψ^m(f) (zero where missing) and [M, k] presence of k items."""
        toks, pres = [], []
        for m in self.modalities:
            f, p = features[m], present[m]
            if augment > 0 and self.training:
                f = dropout(f, augment)
            x = self.adapters[m](f)
            toks.append(torch.where(p[:, None], x, torch.zeros((), dtype=x.dtype, device=x.device)))
            pres.append(p)
        return torch.stack(toks), torch.stack(pres)

    def item_vectors(self, tables: Tables) -> torch.Tensor:
        """Modality tokens x^m [M, n, d], + z with 'added' id scoring (eq. 10): what
        candidates are scored by and what is clustered."""
        if tables.ids is not None and self.config.variant.id_scoring == "added":
            return tables.tokens + tables.ids[None]
        return tables.tokens

    def candidates(self, tables: Tables) -> torch.Tensor:
        """Candidate modality embeddings x^m (+ z, eq. 10), normalised: [M, n, d]."""
        x = self.item_vectors(tables)
        if self.config.normalize:
            x = F.normalize(x, dim=-1)
        # a missing modality's embedding is exactly zero, so its score is a finite 0 that
        # fusion can ignore (its weight is 0) without an extra masking pass
        return torch.where(tables.present[..., None], x, torch.zeros((), dtype=x.dtype, device=x.device))

    def id_candidates(self, tables: Tables) -> torch.Tensor | None:
        """Id embeddings scored apart from the modalities ('late' id scoring), or None."""
        if tables.ids is None or self.config.variant.id_scoring != "late":
            return None
        return released.late_id_candidates(tables.ids)

    def _cache_of(self, tables: Tables, interests: torch.Tensor | None) -> MISSRecItems:
        return MISSRecItems(tables.tokens, self.candidates(tables), tables.present, tables.ids,
                            self.id_candidates(tables), interests)

    def item_cache(self) -> MISSRecItems:
        """Tokens, candidate embeddings and interests of every attached item, without grad."""
        self.ensure_interests()
        with torch.no_grad():
            return self._cache_of(self.item_tables(), self._interest_of)

    @torch.no_grad()
    def encode_items(self, features: dict[str, torch.Tensor], present: dict[str, torch.Tensor],
                     ids: torch.Tensor) -> MISSRecItems:
        """Cache rows of items from their raw features (see the module doc): the trained
        adapters, the id embedding of a trained item (transductive), and the interest of the
        nearest trained prototype for each modality token."""
        self.ensure_interests()
        dev = self._device()
        tokens, pres = self._modality_tokens(*present_rows(self.modalities, features, present, dev))
        z = None
        if self.item_id is not None:
            ids = ids.to(dev)
            z = self.item_id(ids.clamp_min(0)) * (ids > 0)[:, None].to(tokens.dtype)
        tables = Tables(tokens, z, pres, None)
        return self._cache_of(tables, self.nearest_interests(self.item_vectors(tables), pres))

    def nearest_interests(self, vectors: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """[k, M] index of the nearest trained prototype of every present token (-1 if absent)."""
        out = torch.full(present.t().shape, -1, dtype=torch.long, device=vectors.device)
        for j in range(vectors.shape[0]):
            nearest = assign_nearest(vectors[j], self._prototypes.to(vectors.dtype), self.config.cluster_chunk)
            out[:, j] = torch.where(present[j], nearest, out[:, j])
        return out

    # ------------------------------------------------------------------ interests

    @torch.no_grad()
    def on_epoch_start(self, epoch: int) -> dict[str, float]:
        """Re-cluster the catalogue's tokens into interests (§3.3.1), in eval mode.

        Builds ``interest_of[item, modality]`` (-1 where the modality is missing) and the
        prototype matrix used as interest tokens (§3.3.2) during the epoch.
        """
        self._require_catalogue()
        start = time.perf_counter()
        was_training = self.training
        self.eval()
        try:
            tables = self.item_tables()
            x = self.item_vectors(tables)
            mod, item = torch.nonzero(tables.present, as_tuple=True)
            if mod.shape[0] == 0:
                raise RuntimeError("MISSRec: the catalogue has no present modality to cluster")
            result = self._cluster(x[mod, item], epoch)
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

    def _cluster(self, x: torch.Tensor, epoch: int) -> Clustering:
        """DPC-KNN (eqs. 3-4) or k-means over the present tokens ``x`` [N, d]. 'random'
        k-means starts are drawn afresh each epoch (as the official code's are), so the
        seed follows the epoch."""
        c = self.config
        return cluster_tokens(
            x, c.clustering, c.cluster_spec, c.knn_spec, c.cluster_chunk,
            prototype=c.prototype, backend=c.cluster_backend, kmeans_iters=c.kmeans_iters,
            seed=max(epoch, 0) if c.kmeans_init == "random" else 0,
            kmeans_init=c.kmeans_init)

    def ensure_interests(self) -> None:
        """Cluster the attached catalogue unless the current clustering is of it."""
        self._require_catalogue()
        if self._interest_of is None or self._interest_fp != self._catalogue_fp:
            self.on_epoch_start(-1)


def init_weights(module: nn.Module, std: float) -> None:
    """Normal(0, std) linear and embedding weights (zero bias, zero padding row), unit
    LayerNorms."""
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
