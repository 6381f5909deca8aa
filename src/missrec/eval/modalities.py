"""Missing modalities at test time: how much an item's score depends on which of its
modalities it has.

* :class:`Drop` removes a modality from chosen items (the test targets, every item, or a
  seeded fraction) before ranking, so the cost of a missing modality is a metric
  (``missrec evaluate RUN --data STORE --drop image:targets``).
* :func:`twin_ranks` gives every test target a twin, a new item with the target's content
  minus one modality, and ranks both against the rest of the catalogue: a model whose
  scores are on one scale whatever modalities an item has ranks the twin near the original
  (a little lower, having less content), never far above it.

Items are re-encoded through the model's own item encoding (:meth:`encode_items`), as the
service encodes an item sent with fewer modalities; an item never loses its last modality.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..data.batching import Examples, iterate_batches
from ..data.store import ModalityFeatures
from ..errors import MissrecError
from ..model.base import SequentialRecommender
from ..model.cache import ItemCache

WHICH = ("targets", "all")


@dataclass(frozen=True)
class Drop:
    """Remove ``modality`` from ``which`` items: 'targets' (the evaluated split's targets),
    'all', or a fraction in (0, 1] of the items that can lose it (seeded)."""

    modality: str
    which: str | float

    @classmethod
    def parse(cls, text: str) -> "Drop":
        """``MODALITY:WHICH``, e.g. ``image:targets``, ``text:all``, ``image:0.5``."""
        modality, sep, which = text.partition(":")
        if not sep or not modality:
            raise MissrecError(f"--drop {text!r}: expected MODALITY:WHICH with WHICH one of "
                               f"{', '.join(WHICH)} or a fraction in (0, 1], e.g. image:targets")
        if which in WHICH:
            return cls(modality, which)
        try:
            share = float(which)
        except ValueError:
            share = -1.0
        if not 0 < share <= 1:
            raise MissrecError(f"--drop {text!r}: WHICH must be one of {', '.join(WHICH)} or a fraction "
                               f"in (0, 1], got {which!r}")
        return cls(modality, share)

    def __str__(self) -> str:
        return f"{self.modality}:{self.which}"


def droppable(present: dict[str, np.ndarray], modality: str) -> np.ndarray:
    """Rows that have ``modality`` and at least one other modality (row 0 never)."""
    others = [p for m, p in present.items() if m != modality]
    rows = present[modality] & (np.logical_or.reduce(others) if others else False)
    rows[0] = False
    return rows


def drop_rows(drop: Drop, present: dict[str, np.ndarray], targets: np.ndarray, seed: int) -> np.ndarray:
    """Item rows that lose ``drop.modality``."""
    if drop.modality not in present:
        raise MissrecError(f"--drop {drop}: the model reads no {drop.modality!r} "
                           f"(it reads {', '.join(present)})")
    can = droppable(present, drop.modality)
    if drop.which == "targets":
        chosen = np.zeros_like(can)
        chosen[np.unique(targets)] = True
        return np.nonzero(can & chosen)[0]
    rows = np.nonzero(can)[0]
    if drop.which == "all":
        return rows
    n = int(round(float(drop.which) * len(rows)))
    return np.sort(np.random.default_rng(seed).choice(rows, n, replace=False))


def drop_modalities(model: SequentialRecommender, cache: ItemCache, features: dict[str, ModalityFeatures],
                    drops: list[Drop], targets: np.ndarray, seed: int = 0) -> tuple[ItemCache, dict[str, int]]:
    """``cache`` with the items each :class:`Drop` chooses re-encoded without its modality;
    returns it and how many items lost each modality."""
    if not drops:
        return cache, {}
    present = {m: features[m].present.copy() for m in model.modalities}
    original = {m: p.copy() for m, p in present.items()}
    counts = {}
    for drop in drops:
        rows = drop_rows(drop, present, targets, seed)
        present[drop.modality][rows] = False
        counts[str(drop)] = int(len(rows))
    changed = np.nonzero(np.logical_or.reduce([present[m] != original[m] for m in present]))[0]
    if not len(changed):
        return cache, counts
    index = torch.from_numpy(changed)
    new = model.encode_items({m: torch.from_numpy(features[m].matrix[changed]) for m in present},
                             {m: torch.from_numpy(present[m][changed]) for m in present}, index)
    return cache.put(index, new), counts


@dataclass
class TwinRanks:
    """Per evaluated user: 0-based ranks of the target and of its twin among the other items."""

    original: np.ndarray
    twin: np.ndarray

    @property
    def ratios(self) -> np.ndarray:
        """(twin rank + 1) / (original rank + 1): above 1 when the twin ranks lower."""
        return (self.twin + 1.0) / (self.original + 1.0)

    def summary(self) -> dict[str, float]:
        r = self.ratios
        return {"users": int(len(r)), "median_ratio": float(np.median(r)) if len(r) else float("nan"),
                "twin_above_original": float(np.mean(self.twin < self.original)) if len(r) else float("nan"),
                "median_original_rank": float(np.median(self.original)) if len(r) else float("nan"),
                "median_twin_rank": float(np.median(self.twin)) if len(r) else float("nan")}


@torch.no_grad()
def twin_ranks(model: SequentialRecommender, cache: ItemCache, examples: Examples,
               features: dict[str, ModalityFeatures], modality: str, batch_size: int = 256,
               device: str | torch.device = "cpu") -> TwinRanks:
    """Ranks of every test target and of its twin without ``modality`` (users whose target
    cannot lose it are left out), each among the catalogue without the target."""
    present = {m: features[m].present for m in model.modalities}
    if modality not in present:
        raise MissrecError(f"twins without {modality!r}: the model reads no {modality!r} "
                           f"(it reads {', '.join(present)})")
    keep = np.nonzero(droppable(present, modality)[examples.targets])[0]
    examples = examples.subset(keep)
    targets = np.unique(examples.targets)
    twin_present = {m: torch.from_numpy(present[m][targets] & (m != modality)) for m in present}
    twins = model.encode_items({m: torch.from_numpy(features[m].matrix[targets]) for m in present},
                               twin_present, torch.zeros(len(targets), dtype=torch.long))
    n = cache.n_rows
    extended = cache.put(torch.arange(n, n + len(targets)), twins).to(device)
    twin_of = torch.zeros(int(targets.max()) + 1 if len(targets) else 1, dtype=torch.long)
    twin_of[torch.from_numpy(targets)] = torch.arange(n, n + len(targets))
    model.eval()
    original, twin = [], []
    for batch in iterate_batches(examples, batch_size):
        batch = batch.to(device)
        users = model.user_vectors(batch, extended)
        scores = model.score_block(users, extended, slice(0, n)).float()
        scores[:, 0] = -torch.inf
        own = scores.gather(1, batch.targets[:, None])
        other = model.score_rows(users, extended, twin_of.to(device)[batch.targets][:, None]).float()
        original.append((scores > own).sum(1).cpu())
        twin.append(((scores > other).sum(1) - (own > other).squeeze(1).long()).cpu())
    cat = (lambda parts: torch.cat(parts).numpy() if parts else np.zeros(0, dtype=np.int64))
    return TwinRanks(cat(original), cat(twin))
