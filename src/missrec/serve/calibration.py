"""Exposure of the items added after training: one offset for their scores.

A content model ranks an item it never trained with from its features, but not always on
the trained items' footing at the top of the list: MISSRec fills about half as many top-10
places with held-out items as their share of the catalogue, where SASRec over text fills
about their share (docs/serving.md#cold-start). One offset added to the added items' scores,
chosen so that their share of the top ``k`` over a sample of histories equals their share of
the live catalogue, gives them that exposure. It reads no targets, only the model's own
rankings, so it can be computed again whenever the catalogue changes; it leaves the order
among trained items, and among added ones, as the model has it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

Tops = tuple[torch.Tensor, torch.Tensor]
"""Per history, the ``k`` best scores among trained items [B, k] and among added ones
[B, ≤k] (-inf where there are fewer)."""


@dataclass
class Calibration:
    offset: float
    """Added to the added items' scores (model score units)."""
    share_before: float
    """Added items' share of the top ``k`` before, at the offset the catalogue had."""
    share_after: float
    catalogue_share: float
    """Their share of the live catalogue: what the offset aims at."""
    users: int
    """Histories the shares are measured over."""
    k: int

    def to_json(self) -> dict:
        return asdict(self)


def top_scores(scores: torch.Tensor, added: torch.Tensor, trained: torch.Tensor, k: int) -> Tops:
    """The ``k`` best scores of each row among ``trained`` and among ``added`` columns."""
    best_trained = scores.masked_fill(~trained, -torch.inf).topk(min(k, int(trained.sum())), dim=1).values
    best_added = scores.masked_fill(~added, -torch.inf).topk(min(k, int(added.sum())), dim=1).values
    return best_trained, best_added


def added_share(tops: Tops, offset: float, k: int) -> float:
    """Share of the top ``k`` places that added items take with ``offset`` on their scores."""
    best_trained, best_added = tops
    merged = torch.cat([best_trained, best_added + offset], dim=1)
    kept = merged.topk(min(k, merged.shape[1]), dim=1)
    shown = torch.isfinite(kept.values)
    return float(((kept.indices >= best_trained.shape[1]) & shown).sum() / shown.sum().clamp_min(1))


def exposure_offset(tops: Tops, target: float, k: int, steps: int = 60) -> float:
    """The offset at which added items take a ``target`` share of the top ``k`` (bisection:
    the share grows with the offset, from none of the places to all that they can take)."""
    finite = torch.cat([t[torch.isfinite(t)] for t in tops])
    if finite.numel() == 0:
        return 0.0
    span = float(finite.max() - finite.min()) + 1.0
    lo, hi = -span, span
    for _ in range(steps):
        mid = (lo + hi) / 2
        if added_share(tops, mid, k) < target:
            lo = mid
        else:
            hi = mid
    return min((lo, hi), key=lambda d: abs(added_share(tops, d, k) - target))
