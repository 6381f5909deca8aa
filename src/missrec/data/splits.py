"""k-core filtering and chronological leave-one-out, shared by the timestamped importers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ..errors import MissrecError
from .store import SPLIT_TEST, SPLIT_TRAIN, SPLIT_VALID, Dataset, Interactions
from .vocab import Vocab


def kcore_mask(users: np.ndarray, items: np.ndarray, k: int) -> np.ndarray:
    """Rows kept when users and items with fewer than ``k`` rows are removed, to a fixed point."""
    keep = np.ones(len(users), dtype=bool)
    if k <= 1:
        return keep
    # Integer codes: np.unique on object (string) arrays is several times slower.
    users = np.unique(users, return_inverse=True)[1]
    items = np.unique(items, return_inverse=True)[1]
    while True:
        _, uinv, ucnt = np.unique(users[keep], return_inverse=True, return_counts=True)
        _, iinv, icnt = np.unique(items[keep], return_inverse=True, return_counts=True)
        ok = (ucnt[uinv] >= k) & (icnt[iinv] >= k)
        if ok.all():
            return keep
        idx = np.nonzero(keep)[0]
        keep[idx[~ok]] = False


def leave_one_out(
    name: str,
    user_ids: Sequence[str],
    item_ids: Sequence[str],
    timestamps: np.ndarray,
    *,
    kcore: int = 5,
    item_text: Mapping[str, str] | None = None,
    item_image: Mapping[str, str | None] | None = None,
    provenance: dict | None = None,
) -> Dataset:
    """Build a dataset: k-core filter, order each user's rows by time (input order breaks
    ties), last item -> test, second-last -> valid, the rest -> train.

    Users with fewer than 3 interactions after filtering cannot be split and are dropped.
    Item indexes follow first appearance in time order; user indexes follow sorted ids.
    """
    users = np.asarray(user_ids, dtype=object)
    items = np.asarray(item_ids, dtype=object)
    ts = np.asarray(timestamps, dtype=np.float64)
    keep = kcore_mask(users, items, kcore)
    users, items, ts = users[keep], items[keep], ts[keep]
    uniq_u, uidx, ucnt = np.unique(users, return_inverse=True, return_counts=True)
    ok = ucnt[uidx] >= 3
    users, items, ts, uidx = users[ok], items[ok], ts[ok], uidx[ok]
    if len(users) == 0:
        raise MissrecError(f"{name}: no user has 3 or more interactions after {kcore}-core filtering; "
                           "lower the k-core")
    order = np.lexsort((np.arange(len(ts)), ts, uidx))
    users, items, ts, uidx = users[order], items[order], ts[order], uidx[order]
    time_order = np.lexsort((np.arange(len(ts)), ts))
    first_seen = dict.fromkeys(items[time_order].tolist())
    item_vocab = Vocab(first_seen)
    user_vocab = Vocab(sorted(set(users.tolist())))
    u = user_vocab.lookup(users.tolist())
    it = item_vocab.lookup(items.tolist())
    starts = np.r_[0, np.nonzero(np.diff(u))[0] + 1]
    counts = np.diff(np.r_[starts, len(u)])
    position = np.arange(len(u)) - np.repeat(starts, counts)
    split = np.full(len(u), SPLIT_TRAIN, dtype=np.int8)
    ends = starts + counts
    split[ends - 1] = SPLIT_TEST
    split[ends - 2] = SPLIT_VALID
    text = [""] + [(item_text or {}).get(i, "") for i in item_vocab.ids[1:]]
    image = [None] + [(item_image or {}).get(i) for i in item_vocab.ids[1:]]
    return Dataset(
        name=name,
        items=item_vocab,
        users=user_vocab,
        interactions=Interactions(user=u, item=it, position=position, split=split, timestamp=ts),
        item_text=text,
        item_image=image,
        provenance=provenance or {},
    )
