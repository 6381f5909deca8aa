"""Next-item examples from a dataset's sequences, and padded mini-batches of them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from .store import SPLIT_TEST, SPLIT_TRAIN, SPLIT_VALID, Dataset


@dataclass
class SequenceBatch:
    """A mini-batch of (history, next item) pairs.

    ``items`` is right-padded with 0 to the longest history in the batch; ``lengths`` holds
    each row's true length (>= 1).
    """

    items: torch.Tensor
    lengths: torch.Tensor
    targets: torch.Tensor
    users: torch.Tensor

    def __len__(self) -> int:
        return int(self.items.shape[0])

    def to(self, device: torch.device | str) -> "SequenceBatch":
        return SequenceBatch(*(t.to(device, non_blocking=True) for t in
                               (self.items, self.lengths, self.targets, self.users)))

    @property
    def mask(self) -> torch.Tensor:
        """[B, L] True at real (non-padding) positions."""
        return self.items > 0


@dataclass
class Examples:
    """Histories stored flat (``flat[offsets[i]:offsets[i+1]]``), already cut to ``max_len``."""

    flat: np.ndarray
    offsets: np.ndarray
    targets: np.ndarray
    users: np.ndarray

    def __len__(self) -> int:
        return len(self.targets)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def subset(self, idx: np.ndarray) -> "Examples":
        lengths = self.lengths[idx]
        offsets = np.zeros(len(idx) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        starts = self.offsets[:-1][idx]
        gather = np.repeat(starts - offsets[:-1], lengths) + np.arange(offsets[-1])
        return Examples(self.flat[gather], offsets, self.targets[idx], self.users[idx])

    def history(self, i: int) -> np.ndarray:
        return self.flat[self.offsets[i]:self.offsets[i + 1]]

    def rows(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(history starts in :attr:`flat`, lengths, targets, users) of examples ``idx``."""
        starts = self.offsets[:-1][idx]
        return starts, self.offsets[1:][idx] - starts, self.targets[idx], self.users[idx]


def build_examples(ds: Dataset, split: str, max_len: int = 50) -> Examples:
    """Leave-one-out examples.

    ``train``: every item labelled train except each user's first is a target, its history
    the items before it; ``valid`` / ``test``: the item labelled so is the target, its history
    everything before it (for test that includes the valid item). Histories keep the last
    ``max_len`` items.
    """
    code = {"train": SPLIT_TRAIN, "valid": SPLIT_VALID, "test": SPLIT_TEST}[split]
    seqs, splits = ds.sequences(), ds.split_sequences()
    flat, offsets, targets, users = [], [0], [], []
    total = 0
    for u in range(1, len(seqs)):
        seq, lab = seqs[u], splits[u]
        positions = np.nonzero(lab == code)[0]
        for p in positions:
            if p == 0:
                continue  # the first item has no history
            hist = seq[max(0, p - max_len):p]
            flat.append(hist)
            total += len(hist)
            offsets.append(total)
            targets.append(seq[p])
            users.append(u)
    return Examples(
        flat=np.concatenate(flat).astype(np.int64) if flat else np.zeros(0, np.int64),
        offsets=np.asarray(offsets, dtype=np.int64),
        targets=np.asarray(targets, dtype=np.int64),
        users=np.asarray(users, dtype=np.int64),
    )


def collate(ex: Examples, idx: np.ndarray) -> SequenceBatch:
    """Right-pad the chosen examples to their longest history (not to ``max_len``).

    ``ex`` is an :class:`Examples` or anything with its ``rows`` and ``flat``
    (:class:`~missrec.data.compact.CompactExamples`)."""
    starts, lengths, targets, users = ex.rows(idx)
    width = int(lengths.max()) if len(idx) else 1
    out = np.zeros((len(idx), width), dtype=np.int64)
    cols = np.arange(width)
    valid = cols[None, :] < lengths[:, None]
    src = (starts[:, None] + cols[None, :])[valid]
    out[valid] = ex.flat[src]
    return SequenceBatch(
        items=torch.from_numpy(out),
        lengths=torch.from_numpy(lengths.astype(np.int64)),
        targets=torch.from_numpy(targets),
        users=torch.from_numpy(users),
    )


def iterate_batches(ex: Examples, batch_size: int, shuffle: bool = False,
                    generator: np.random.Generator | None = None,
                    bucket: bool = False, shard: tuple[int, int] | None = None) -> Iterator[SequenceBatch]:
    """Mini-batches in order, or shuffled.

    With ``bucket`` (training), examples of similar history length share a batch and the
    batch order is shuffled: padding to each batch's longest history then costs little,
    whereas random batches almost always hold one full-length history. Ties in length are
    broken at random, so batch membership still changes every epoch.

    ``shard=(rank, world)`` (data-parallel training): every process draws the same batches
    from the same generator state and keeps rows ``rank::world`` of each; a batch with fewer
    rows than processes (at most the last one) is skipped by all of them alike.
    """
    order = np.arange(len(ex))
    rng = (generator or np.random.default_rng()) if shuffle else None
    if rng is not None:
        if bucket:
            order = np.lexsort((rng.random(len(ex)), ex.lengths))
        else:
            rng.shuffle(order)
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    if rng is not None and bucket:
        batches = [batches[b] for b in rng.permutation(len(batches))]
    for idx in batches:
        if shard is not None:
            rank, world = shard
            if len(idx) < world:
                continue
            idx = idx[rank::world]
        yield collate(ex, idx)
