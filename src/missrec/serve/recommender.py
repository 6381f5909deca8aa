"""Top-K recommendations from a self-describing checkpoint, for histories of external ids."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ..data.batching import SequenceBatch
from ..errors import MissrecError
from ..train.checkpoint import load_model, read_checkpoint


@dataclass
class Recommendation:
    item_id: str
    score: float
    text: str


class Recommender:
    """Loads a checkpoint once; :meth:`recommend` ranks the whole catalogue for a history.

    Seen-item filtering is an explicit option (``exclude_seen``), applied after scoring.
    """

    def __init__(self, checkpoint: str | Path, device: str = "cpu"):
        self.payload = read_checkpoint(checkpoint)
        self.model, self.config = load_model(self.payload)
        self.model.to(device)
        self.device = device
        self.item_ids: list[str] = self.payload["item_ids"]
        self.item_text: list[str] = self.payload.get("item_text") or [""] * len(self.item_ids)
        self._index = {e: i for i, e in enumerate(self.item_ids) if i > 0}
        self.max_len = int(getattr(self.config, "max_len", 50))
        with torch.no_grad():
            self._cache = self.model.item_cache()

    @property
    def n_items(self) -> int:
        return len(self.item_ids) - 1

    def indexes(self, history: list[str]) -> list[int]:
        unknown = [h for h in history if h not in self._index]
        if unknown:
            raise MissrecError(f"unknown item id(s): {', '.join(unknown[:5])}")
        return [self._index[h] for h in history]

    @torch.no_grad()
    def recommend_many(self, histories: list[list[str]], k: int = 10,
                       exclude_seen: bool = False) -> list[list[Recommendation]]:
        if not histories or any(len(h) == 0 for h in histories):
            raise MissrecError("every history needs at least one item")
        idx = [self.indexes(h)[-self.max_len:] for h in histories]
        width = max(len(h) for h in idx)
        items = torch.zeros(len(idx), width, dtype=torch.long)
        for r, h in enumerate(idx):
            items[r, :len(h)] = torch.tensor(h)
        lengths = torch.tensor([len(h) for h in idx])
        batch = SequenceBatch(items, lengths, torch.zeros(len(idx), dtype=torch.long),
                              torch.zeros(len(idx), dtype=torch.long)).to(self.device)
        scores = self.model.score_all(batch, self._cache).float()
        scores[:, 0] = -torch.inf
        if exclude_seen:
            scores.scatter_(1, batch.items, -torch.inf)
        k = min(k, self.n_items)
        top = scores.topk(k, dim=1)
        out = []
        for r in range(len(idx)):
            out.append([Recommendation(self.item_ids[i], float(s), self.item_text[i])
                        for s, i in zip(top.values[r].tolist(), top.indices[r].tolist()) if s > -float("inf")])
        return out

    def recommend(self, history: list[str], k: int = 10, exclude_seen: bool = False) -> list[Recommendation]:
        return self.recommend_many([history], k, exclude_seen)[0]
