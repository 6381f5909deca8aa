"""Training examples that reference one flat item array instead of copying histories.

:class:`~missrec.data.batching.Examples` stores every example's history (up to ``max_len``
items) as its own copy, so its memory grows as users x length x length. A
:class:`CompactExamples` keeps each user's sequence once (``items``, int32, ordered by user
then position, ``user_start`` marking where each user begins) and, per example, only where
its target sits (``ends``) and whose it is (``users``); a history is the slice
``items[max(user_start[u], end - max_len):end]``, cut when a batch is built. Its batches are
those of the copying form (same examples, same order), so training is unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .store import SPLIT_TEST, SPLIT_TRAIN, SPLIT_VALID, Dataset

SPLIT_CODES = {"train": SPLIT_TRAIN, "valid": SPLIT_VALID, "test": SPLIT_TEST}


@dataclass
class UserSequences:
    """Every user's items and split labels, flat, in (user, position) order."""

    items: np.ndarray  # int32 [n_interactions]
    splits: np.ndarray  # int8 [n_interactions]
    user_start: np.ndarray  # int64 [n_users + 2]: user u's items are items[user_start[u]:user_start[u + 1]]

    @classmethod
    def of(cls, ds: Dataset) -> "UserSequences":
        it = ds.interactions
        order = np.lexsort((it.position, it.user))
        start = np.searchsorted(it.user[order], np.arange(ds.n_users + 2)).astype(np.int64)
        return cls(it.item[order].astype(np.int32), it.split[order].astype(np.int8), start)


@dataclass
class CompactExamples:
    """Next-item examples over a shared flat item array (see the module docstring).

    Offers what :func:`~missrec.data.batching.iterate_batches` needs of an example set:
    ``len``, ``lengths``, :meth:`rows` and :meth:`subset`.
    """

    items: np.ndarray  # int32, shared by every example (may be memory-mapped)
    user_start: np.ndarray  # int64 [n_users + 2]
    ends: np.ndarray  # int64 [n]: index in ``items`` of each example's target
    users: np.ndarray  # int32 [n]
    max_len: int

    def __len__(self) -> int:
        return len(self.ends)

    def starts_of(self, idx: np.ndarray | slice) -> np.ndarray:
        ends = self.ends[idx]
        return np.maximum(self.user_start[self.users[idx]], ends - self.max_len)

    @property
    def lengths(self) -> np.ndarray:
        return self.ends - self.starts_of(slice(None))

    @property
    def targets(self) -> np.ndarray:
        return self.items[self.ends].astype(np.int64)

    def rows(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(history starts in :attr:`items`, lengths, targets, users) of examples ``idx``."""
        ends = self.ends[idx]
        starts = self.starts_of(idx)
        return starts, ends - starts, self.items[ends].astype(np.int64), self.users[idx].astype(np.int64)

    @property
    def flat(self) -> np.ndarray:
        """The array that :meth:`rows`' starts index (named as in ``Examples``)."""
        return self.items

    def subset(self, idx: np.ndarray) -> "CompactExamples":
        return CompactExamples(self.items, self.user_start, self.ends[idx], self.users[idx], self.max_len)

    def history(self, i: int) -> np.ndarray:
        start = int(self.starts_of(np.array([i]))[0])
        return self.items[start:int(self.ends[i])].astype(np.int64)

    def shifted(self, item_offset: int) -> "CompactExamples":
        """The same examples with every item index moved by ``item_offset`` (a union catalogue
        where this domain's items come after others'); padding never occurs in ``items``."""
        return CompactExamples(self.items + np.int32(item_offset), self.user_start, self.ends, self.users,
                               self.max_len)


def compact_examples(seqs: UserSequences, split: str, max_len: int = 50) -> CompactExamples:
    """The examples :func:`~missrec.data.batching.build_examples` builds, in its order
    (by user, then position), without copying histories: every item labelled ``split`` that
    is not its user's first item is a target."""
    n_users = len(seqs.user_start) - 2
    counts = np.diff(seqs.user_start)
    owner = np.repeat(np.arange(n_users + 1, dtype=np.int32), counts)
    first = np.zeros(len(seqs.items), dtype=bool)
    first[seqs.user_start[:-1][counts > 0]] = True
    ends = np.flatnonzero((seqs.splits == SPLIT_CODES[split]) & ~first)
    return CompactExamples(seqs.items, seqs.user_start, ends.astype(np.int64), owner[ends], max_len)


def concat_compact(parts: list[CompactExamples]) -> CompactExamples:
    """One example set holding ``parts`` in order (users renumbered consecutively)."""
    if len({p.max_len for p in parts}) > 1:
        raise ValueError("cannot concatenate examples cut to different max_len")
    items, starts, ends, users = [], [], [], []
    item_base, user_base = 0, 0
    for p in parts:
        n_users = len(p.user_start) - 1  # entry u = where user u starts, user 0 included
        items.append(p.items)
        starts.append(p.user_start[:-1] + item_base)
        ends.append(p.ends + item_base)
        users.append(p.users.astype(np.int64) + user_base)
        item_base += len(p.items)
        user_base += n_users
    user_start = np.concatenate(starts + [np.array([item_base], dtype=np.int64)])
    return CompactExamples(np.concatenate(items), user_start, np.concatenate(ends),
                           np.concatenate(users).astype(np.int32), parts[0].max_len)
