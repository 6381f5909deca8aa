"""The item side of new or changed items, computed the way the model computes its catalogue.

MISSRec ranks an item by its content alone (inductive mode), so an item it never saw is
embedded by passing its raw features through the trained adapters ψ^m (§3.2.3): its
candidate embeddings are exactly what :meth:`MISSRec.item_cache` would give for a catalogue
that included it. Two things a catalogue change does *not* redo:

* **Interests** (§3.3): the clustering stays the one the model was trained with (the
  decoder's queries are its prototypes). A new item's modality tokens join the interest of
  their nearest prototype, by the Euclidean distance the clustering itself uses; when such
  an item is in a history, its interest token is that prototype.
* **Item ids** (transductive mode, eq. 10): a new item has no id embedding; it is embedded
  and scored by its features alone (its id vector is zero, so with 'added' id scoring its
  candidates are its normalised modality tokens, and with 'late' id scoring its id term is
  0). A replaced trained item keeps its id embedding.

UniSRec and SASRec over text features embed an item from its features alone (the MoE
adapters, the feature projection), plus, for transductive UniSRec, the id embedding of a
trained item; their new rows come from the model's own ``feature_vectors`` and
``cache_rows``, the code its ``item_cache`` runs, so a trained item re-added with its
features gets the row it was trained with.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from ..model.missrec import ItemCache


@dataclass
class ItemRows:
    """Item-side rows for ``k`` items, laid out like :class:`ItemCache` (row axis = items)."""

    tokens: torch.Tensor  # [M, k, d]
    ids: torch.Tensor | None  # [k, d]
    candidates: torch.Tensor  # [M, k, d]
    present: torch.Tensor  # [M, k]
    id_candidates: torch.Tensor | None  # [k, d]
    interests: torch.Tensor  # [k, M]


@torch.no_grad()
def embed_items(model, raw: dict[str, torch.Tensor], present: dict[str, torch.Tensor],
                ids: torch.Tensor | None) -> ItemRows:
    """Adapted tokens, candidate embeddings and interests of items with raw features ``raw``
    ([k, d_in] per modality) and presence ``present`` ([k] bool); ``ids`` [k, d] are their id
    embeddings (transductive; zero rows for items without one)."""
    cfg = model.config
    dev = next(model.parameters()).device
    toks, pres = [], []
    for m in model.modalities:
        p = present[m].to(dev, torch.bool)
        x = model.adapters[m](raw[m].to(dev, torch.float32))
        toks.append(torch.where(p[:, None], x, torch.zeros((), dtype=x.dtype, device=dev)))
        pres.append(p)
    tokens, present_t = torch.stack(toks), torch.stack(pres)
    if ids is not None:
        ids = ids.to(dev)
    vectors = tokens + ids[None] if ids is not None and cfg.id_scoring == "added" else tokens
    cand = F.normalize(vectors, dim=-1) if cfg.normalize else vectors
    cand = torch.where(present_t[..., None], cand, torch.zeros((), dtype=cand.dtype, device=dev))
    id_cand = F.normalize(ids, dim=-1) if ids is not None and cfg.id_scoring == "late" else None
    return ItemRows(tokens, ids, cand, present_t, id_cand, nearest_interest(model, vectors, present_t))


@torch.no_grad()
def embed_feature_rows(model, raw: dict[str, torch.Tensor], present: dict[str, torch.Tensor],
                       ids: torch.Tensor | None) -> Any:
    """Cache rows (the model's layout) of items with raw features ``raw`` ([k, d_in] per
    modality) and presence ``present`` ([k] bool), for a model whose item vectors are its
    ``feature_vectors`` plus, if given, id embeddings ``ids`` [k, d] (zero for new items)."""
    dev = next(model.parameters()).device
    feats = {m: raw[m].to(dev, torch.float32) for m in model.config.modalities}
    pres = {m: present[m].to(dev, torch.bool) for m in model.config.modalities}
    feats = {m: torch.where(pres[m][:, None], f, torch.zeros((), dtype=f.dtype, device=dev))
             for m, f in feats.items()}
    vectors = model.feature_vectors(feats, pres)
    if ids is not None:
        vectors = vectors + ids.to(dev)
    return model.cache_rows(vectors)


def nearest_interest(model, vectors: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """[k, M] index of the nearest trained prototype of every present token (-1 if absent)."""
    protos = model._prototypes  # the clustering the model was trained with
    out = torch.full(present.t().shape, -1, dtype=torch.long, device=vectors.device)
    if protos is None or vectors.shape[1] == 0:
        return out
    for j in range(vectors.shape[0]):
        nearest = torch.cdist(vectors[j], protos.to(vectors.dtype)).argmin(1)
        out[:, j] = torch.where(present[j], nearest, out[:, j])
    return out


def set_rows(cache: Any, interests: torch.Tensor | None, rows: torch.Tensor, new: Any
             ) -> tuple[Any, torch.Tensor | None]:
    """A copy of ``cache`` / ``interests`` with ``rows`` overwritten and rows past the end
    appended (``rows`` beyond the current size must be consecutive from the end). ``cache``
    is an :class:`ItemCache` with ``new`` its :class:`ItemRows`, or a tensor / tuple of
    tensors (row axis 0) with ``new`` the same layout over ``rows``."""
    n = cache.present.shape[1] if isinstance(cache, ItemCache) else _parts(cache)[0].shape[0]
    grow = int(rows.max()) + 1 - n if len(rows) else 0

    def put(table: torch.Tensor | None, values: torch.Tensor | None, axis: int) -> torch.Tensor | None:
        if table is None:
            return None
        if grow > 0:
            shape = list(table.shape)
            shape[axis] = grow
            table = torch.cat([table, torch.zeros(shape, dtype=table.dtype, device=table.device)], axis)
        else:
            table = table.clone()
        index = (slice(None),) * axis + (rows.to(table.device),)
        table[index] = values.to(table.dtype) if values is not None else 0
        return table

    if not isinstance(cache, ItemCache):
        return _like(cache, [put(t, v, 0) for t, v in zip(_parts(cache), _parts(new))]), None
    return (ItemCache(put(cache.tokens, new.tokens, 1), put(cache.ids, new.ids, 0),
                      put(cache.candidates, new.candidates, 1), put(cache.present, new.present, 1),
                      put(cache.id_candidates, new.id_candidates, 0)),
            put(interests, new.interests, 0))


def take_rows(cache: Any, interests: torch.Tensor | None, rows: torch.Tensor
              ) -> tuple[Any, torch.Tensor | None]:
    """``cache`` and ``interests`` restricted to ``rows`` (in that order)."""
    def take(table: torch.Tensor | None, axis: int) -> torch.Tensor | None:
        return None if table is None else table.index_select(axis, rows.to(table.device))

    if not isinstance(cache, ItemCache):
        return _like(cache, [take(t, 0) for t in _parts(cache)]), take(interests, 0)
    return (ItemCache(take(cache.tokens, 1), take(cache.ids, 0), take(cache.candidates, 1),
                      take(cache.present, 1), take(cache.id_candidates, 0)), take(interests, 0))


def _parts(cache: Any) -> tuple[torch.Tensor, ...]:
    return (cache,) if torch.is_tensor(cache) else tuple(cache)


def _like(cache: Any, parts: list[torch.Tensor]) -> Any:
    return parts[0] if torch.is_tensor(cache) else tuple(parts)
