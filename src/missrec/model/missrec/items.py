"""The item side of MISSRec: the attached catalogue, its adapted modality tokens (§3.2.3),
candidate embeddings for dynamic fusion (eqs. 1-2, 9-10) and the interest clustering
(§3.3.1) that is recomputed at every epoch start.

The catalogue (features and presence masks) is not part of the state dict; the interest
clustering is (as extra state, tagged with a catalogue fingerprint and recomputed when the
catalogue differs), so an evaluation run scores with the interests it was trained with.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..base import SequentialRecommender
from ..interests import Clustering, cluster_tokens
from . import released
from .config import MISSRecConfig
from .tokens import Tables


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


class ItemSide(SequentialRecommender):
    """Catalogue, item tables and interests; :class:`MISSRec` adds the sequence side.

    Subclasses set ``config``, ``n_items``, ``modalities``, ``feature_dims``, ``adapters``
    and ``item_id`` (None when inductive), then call :meth:`_register_catalogue`.
    """

    config: MISSRecConfig
    adapters: nn.ModuleDict
    item_id: nn.Embedding | None

    def _register_catalogue(self) -> None:
        for m in self.modalities:
            self.register_buffer(f"_feat_{m}", None, persistent=False)
            self.register_buffer(f"_present_{m}", None, persistent=False)
        self.register_buffer("_interest_of", None, persistent=False)
        self.register_buffer("_prototypes", None, persistent=False)
        self._catalogue_fp = ""
        self._interest_fp = ""

    def _device(self) -> torch.device:
        raise NotImplementedError

    def _new_id_table(self, n_items: int) -> nn.Embedding:
        raise NotImplementedError

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

    # ------------------------------------------------------------------ item tables

    def _item_tables(self, ids: torch.Tensor | None = None, augment: float = 0.0) -> Tables:
        """Adapted tokens ψ^m(f) of all items (``ids`` None) or of ``ids``; ``augment`` is
        the feature dropout of §3.2.2 (training only)."""
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
        return Tables(torch.stack(toks), z, torch.stack(pres), interests)

    def _item_vectors(self, tables: Tables) -> torch.Tensor:
        """Modality tokens x^m [M, n, d], + z with 'added' id scoring (eq. 10): what
        candidates are scored by and what is clustered."""
        if tables.ids is not None and self.config.id_scoring == "added":
            return tables.tokens + tables.ids[None]
        return tables.tokens

    def _candidates(self, tables: Tables) -> torch.Tensor:
        """Candidate modality embeddings x^m (+ z, eq. 10), normalised: [M, n, d]."""
        x = self._item_vectors(tables)
        if self.config.normalize:
            x = F.normalize(x, dim=-1)
        # a missing modality's embedding is exactly zero, so its score is a finite 0 that
        # fusion can ignore (its weight is 0) without an extra masking pass
        return torch.where(tables.present[..., None], x, torch.zeros((), dtype=x.dtype, device=x.device))

    def _id_candidates(self, tables: Tables) -> torch.Tensor | None:
        """Id embeddings scored apart from the modalities ('late' id scoring), or None."""
        if tables.ids is None or self.config.id_scoring != "late":
            return None
        return released.late_id_candidates(tables.ids)

    def item_cache(self) -> ItemCache:
        """Adapted tokens and candidate embeddings of every item, computed without grad."""
        self._ensure_interests()
        with torch.no_grad():
            tables = self._item_tables()
            return ItemCache(tables.tokens, tables.ids, self._candidates(tables), tables.present,
                             self._id_candidates(tables))

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
            tables = self._item_tables()
            x = self._item_vectors(tables)
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
            x, c.clustering, c.n_clusters, c.knn_k, c.cluster_chunk,
            prototype=c.prototype, backend=c.cluster_backend, kmeans_iters=c.kmeans_iters,
            seed=max(epoch, 0) if c.kmeans_init == "random" else 0,
            kmeans_init=c.kmeans_init)

    def _ensure_interests(self) -> None:
        self._require_catalogue()
        if self._interest_of is None or self._interest_fp != self._catalogue_fp:
            self.on_epoch_start(-1)
