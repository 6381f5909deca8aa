"""Where a batch of histories' tokens come from (§3.2.3, §3.4.1), and row-wise helpers.

A history of L items over M modalities holds up to L·M tokens ('separate', the paper's
fusion in context) or L tokens ('added', the sum of an item's modality tokens). Missing
modalities, padding and dropped items yield no token at all, so they never enter attention,
clustering or pooling, and the batch is padded only to its widest row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch


@dataclass
class Tables:
    """Per-item lookups a batch is encoded from (rows indexed by item or local item index)."""

    tokens: torch.Tensor  # [M, n, d]
    ids: torch.Tensor | None  # [n, d]
    present: torch.Tensor  # [M, n] bool
    interests: torch.Tensor | None  # [n, M] long, -1 = none (None before clustering)


@dataclass
class Slots:
    """The compacted token layout of a batch of histories (W = most tokens in a row)."""

    valid: torch.Tensor  # [B, W] bool
    item_pos: torch.Tensor  # [B, W] position of the token's item in the history
    item: torch.Tensor  # [B, W] item (row of the tables)
    modality: torch.Tensor | None  # [B, W] modality index ('separate' tokens)
    present: torch.Tensor | None  # [B, W, M] modalities summed into the token ('added')
    lengths: torch.Tensor  # [B] history lengths (dropped items still count)


def _present_tokens(items: torch.Tensor, present: torch.Tensor, keep: torch.Tensor | None
                    ) -> torch.Tensor:
    """[M, B, L]: True where history item (b, l) is real, kept, and has modality m."""
    real = items > 0
    if keep is not None:
        real = real & keep
    return present[:, items] & real[None]


def token_slots(items: torch.Tensor, present: torch.Tensor, separate: bool,
                keep: torch.Tensor | None) -> Slots:
    """The tokens of histories ``items`` [B, L] (rows of ``present`` [M, n]), compacted so
    every row's tokens come first, in history order. ``keep`` [B, L] drops items."""
    bsz, length = items.shape
    m = present.shape[0]
    pres = _present_tokens(items, present, keep).permute(1, 2, 0)  # [B, L, M]
    steps = torch.arange(length, device=items.device)
    if separate:
        valid = pres.reshape(bsz, length * m)
        slot_item = steps.repeat_interleave(m)
        slot_mod = torch.arange(m, device=items.device).repeat(length)
    else:
        valid = pres.any(-1)
        slot_item, slot_mod = steps, None
    width = max(int(valid.sum(1).max()), 1)
    # stable sort of "not valid" puts a row's valid slots first, in their original order
    order = torch.sort((~valid).to(torch.int8), dim=1, stable=True).indices[:, :width]
    pos = slot_item[order]  # [B, W] item position of every token
    return Slots(
        valid=ensure_one(valid.gather(1, order)),
        item_pos=pos,
        item=items.gather(1, pos),
        modality=None if slot_mod is None else slot_mod[order],
        present=None if slot_mod is not None else pres.gather(1, pos[..., None].expand(-1, -1, m)),
        lengths=(items > 0).sum(1),
    )


def token_counts(items: torch.Tensor, present: torch.Tensor, separate: bool,
                 keep: torch.Tensor | None) -> torch.Tensor:
    """Tokens per history [B] (what :func:`token_slots` would lay out)."""
    pres = _present_tokens(items, present, keep)  # [M, B, L]
    return pres.sum((0, 2)) if separate else pres.any(0).sum(1)


def token_interests(slots: Slots, interests: torch.Tensor) -> torch.Tensor:
    """Interest id of every token [B, W] (-1 for padding); for 'added' tokens, the
    interests of all the item's present modalities [B, W·M]."""
    if slots.modality is not None:
        ids = interests[slots.item, slots.modality]
        return ids.masked_fill(~slots.valid, -1)
    ids = interests[slots.item]  # [B, W, M]
    ids = ids.masked_fill(~(slots.present & slots.valid[..., None]), -1)
    return ids.flatten(1)


def item_positions(slots: Slots, origin: Literal["recent", "start"]) -> torch.Tensor:
    """Position of every token's item: counted back from the most recent item ('recent',
    so the newest item has the same embedding whatever the length) or from the first."""
    if origin == "recent":
        return (slots.lengths[:, None] - 1 - slots.item_pos).clamp_min(0)
    return slots.item_pos


def recent_tokens(slots: Slots) -> torch.Tensor:
    """[B, W] mask of the tokens of each row's most recent item that has a token."""
    pos = slots.item_pos.masked_fill(~slots.valid, -1)
    return slots.valid & (pos == pos.max(1, keepdim=True).values)


def unique_per_row(ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """De-duplicate every row of ``ids`` [B, T] (values < 0 are ignored), with tensor ops.

    Returns (unique ids [B, Q] ascending, padded with -1; mask [B, Q]) with Q the largest
    number of distinct ids in any row (at least 1).
    """
    s = ids.sort(dim=1).values
    first = s >= 0
    first[:, 1:] &= s[:, 1:] != s[:, :-1]
    counts = first.sum(1)
    q = max(int(counts.max()) if counts.numel() else 0, 1)
    slot = torch.where(first, first.cumsum(1) - 1, torch.full_like(s, q))  # q = discard column
    out = torch.full((s.shape[0], q + 1), -1, dtype=s.dtype, device=s.device)
    out.scatter_(1, slot, torch.where(first, s, torch.full_like(s, -1)))
    out = out[:, :q]
    mask = torch.arange(q, device=s.device)[None, :] < counts[:, None]
    return out, mask


def keep_last(items: torch.Tensor, max_len: int) -> torch.Tensor:
    """Cut right-padded histories [B, L] to their last ``max_len`` items (still right-padded)."""
    if items.shape[1] <= max_len:
        return items
    lengths = (items > 0).sum(1)
    start = (lengths - max_len).clamp_min(0)
    idx = (start[:, None] + torch.arange(max_len, device=items.device)[None, :])
    out = items.gather(1, idx.clamp_max(items.shape[1] - 1))
    return out.masked_fill(idx >= lengths[:, None], 0)


def buckets(order: torch.Tensor, sorted_counts: list[int], budget: int) -> list[torch.Tensor]:
    """Split rows (``order``, ascending token count) into consecutive buckets whose padded
    size (rows x widest row) stays within ``budget`` (a bucket holds at least one row)."""
    out, start = [], 0
    n = len(sorted_counts)
    while start < n:
        end = start + 1
        while end < n and (end + 1 - start) * max(sorted_counts[end], 1) <= budget:
            end += 1
        out.append(order[start:end])
        start = end
    return out


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over dim 1 of ``x`` [B, T, d] where ``mask`` [B, T]; rows need >= 1 True."""
    w = mask.to(x.dtype)
    return (x * w[..., None]).sum(1) / w.sum(1, keepdim=True).clamp_min(1.0)


def ensure_one(valid: torch.Tensor) -> torch.Tensor:
    """Mark column 0 valid in rows with no valid entry, so no attention row is all-masked.

    Only degenerate rows (e.g. a history whose items have no modality) are affected; their
    column 0 holds a content-free token (zero features)."""
    empty = ~valid.any(1)
    if bool(empty.any()):
        valid = valid.clone()
        valid[empty, 0] = True
    return valid
