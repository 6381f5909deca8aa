"""Seeded choices of users: the training users a run keeps (``train.train_fraction``) and the
users pre-training holds out (``train.heldout_share``).

A choice depends only on the seed and the set of users, never on a generator that other code
also draws from, so two runs with the same seed on the same store choose the same users
whatever else they do (a pre-trained and a from-scratch run see the same training users).
Users are taken in the order of one seeded permutation, so a smaller share is a subset of a
larger one at the same seed.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np

SALT = 0x75736572
"""Mixed into the seed so the permutation is not the one the run's own generators draw first."""

E = TypeVar("E")


def choose_users(users: np.ndarray, share: float, seed: int) -> np.ndarray:
    """``round(share * n)`` (at least one) of the distinct ``users``, sorted; all of them at share 1."""
    distinct = np.unique(users)
    if share >= 1 or len(distinct) == 0:
        return distinct
    k = min(len(distinct), max(1, int(round(share * len(distinct)))))
    order = np.random.default_rng([seed, SALT]).permutation(len(distinct))
    return np.sort(distinct[order[:k]])


def rows_of_users(users: np.ndarray, chosen: np.ndarray) -> np.ndarray:
    """Indexes of the rows of ``users`` that belong to ``chosen``, in order."""
    return np.flatnonzero(np.isin(users, chosen))


def keep_user_fraction(examples: E, fraction: float, seed: int) -> E:
    """Every example of a seeded ``fraction`` of the users of ``examples`` (an
    :class:`~missrec.data.batching.Examples` or a :class:`~missrec.data.compact.CompactExamples`:
    anything with ``users`` and ``subset``), in their order; ``examples`` itself at 1."""
    if fraction >= 1:
        return examples
    users = np.asarray(examples.users)
    return examples.subset(rows_of_users(users, choose_users(users, fraction, seed)))


def hold_out_users(examples: E, share: float, seed: int) -> tuple[E, E | None]:
    """(the examples of the users kept for training, those of a seeded ``share`` of the users
    held out), at least one user on each side; no held-out part with fewer than two users."""
    users = np.asarray(examples.users)
    distinct = np.unique(users)
    if share <= 0 or len(distinct) < 2:
        return examples, None
    held = choose_users(distinct, share, seed)[: len(distinct) - 1]
    is_held = np.isin(users, held)
    return examples.subset(np.flatnonzero(~is_held)), examples.subset(np.flatnonzero(is_held))


__all__ = ["choose_users", "hold_out_users", "keep_user_fraction", "rows_of_users"]
