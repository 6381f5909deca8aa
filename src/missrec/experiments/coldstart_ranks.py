"""Ranking the test users once held-out items are back: each target's rank, the held-out
items above it and in the top of the list (``missrec experiment coldstart``)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..data.store import SPLIT_TRAIN, Dataset
from ..serve.recommender import Recommender

MISS = 2**40
"""The rank of a target a model cannot rank: beyond every cutoff."""
TOP = 10
"""The list length at which the exposure of added items is counted."""


class Ranked(NamedTuple):
    """What one trained model's full rankings of the test users show."""

    ranks: np.ndarray
    """0-based rank of every target over the whole catalogue (:data:`MISS`: not ranked)."""
    held_above: np.ndarray | None
    """How many held-out items rank above each target (None: the model ranks none)."""
    held_top: np.ndarray | None
    """How many held-out items each user's top :data:`TOP` holds (-1: no ranking): the
    exposure new items get, whoever the target is."""
    calibration: dict | None = None
    """What ``calibrate`` found (:class:`missrec.serve.calibration.Calibration`), if it ran."""


def target_ranks(rec: Recommender, histories: list[list[str]], targets: list[str],
                 held: set[str] = frozenset()) -> Ranked:
    """Every target's rank over the recommender's whole catalogue (:data:`MISS` for a
    target it does not hold or a history it knows nothing of), the ``held`` items ranked
    above it, and the ``held`` items in each user's top :data:`TOP`."""
    ranks = np.full(len(targets), MISS, dtype=np.int64)
    held_above = np.zeros(len(targets), dtype=np.int64)
    held_top = np.full(len(targets), -1, dtype=np.int64)
    known = [[h for h in hist if h in rec.catalogue.index] for hist in histories]
    todo = [i for i, h in enumerate(known) if h]
    for start in range(0, len(todo), 256):
        chunk = todo[start:start + 256]
        for i, res in zip(chunk, rec.recommend([known[i] for i in chunk], rec.n_items, unknown="skip")):
            held_top[i] = sum(e in held for e in res.items[:TOP])
            if targets[i] in res.items:
                ranks[i] = res.items.index(targets[i])
                held_above[i] = sum(e in held for e in res.items[:ranks[i]])
    return Ranked(ranks, held_above, held_top)


def popularity_ranks(reduced: Dataset, targets: list[str], n_items: int) -> np.ndarray:
    """0-based rank by training interactions among ``n_items`` items (held-out ones have
    none), ties pessimistic (a target ranks after every item as popular as it)."""
    it = reduced.interactions
    counts = np.bincount(it.item[it.split == SPLIT_TRAIN], minlength=reduced.n_items + 1)
    count_of = {e: int(counts[i]) for i, e in enumerate(reduced.items.ids) if i > 0}
    universe = np.sort(np.r_[counts[1:], np.zeros(n_items - reduced.n_items, dtype=counts.dtype)])
    c = np.asarray([count_of.get(t, 0) for t in targets])
    higher = len(universe) - np.searchsorted(universe, c, "right")
    equal = np.searchsorted(universe, c, "right") - np.searchsorted(universe, c, "left")
    return (higher + equal - 1).astype(np.int64)
