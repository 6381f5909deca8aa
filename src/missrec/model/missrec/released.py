"""What exists only to reproduce the official MISSRec code, in one place.

The paper's model is the main path (:mod:`.network`); each function here replaces one of
its steps when the config field named in its docstring asks for the official code's
version. The ``released`` preset sets all of them (``--preset released``). Smaller official
choices live where they apply, as one option each: ``tokens='added'`` and
``positions='start'`` (:mod:`.tokens`), ``prototype='mean'`` and ``kmeans_init='random'``
(:mod:`..interests`), ``alpha_param='free'`` (:class:`..fusion.Concentration`),
``ffn_dropout`` and ``stack_norm`` (the blocks).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from ..adapters import LinearAdapter
from ..layers import MultiHeadAttention, key_mask
from .tokens import Slots, masked_mean

if TYPE_CHECKING:  # the model these functions are steps of
    from .network import MISSRec


def official_init(model: nn.Module, attn_init: str, adapter_init: str) -> None:
    """Initialisations the official code keeps by accident of construction order.

    ``attn_init='xavier'``: its nn.Transformer's q/k/v projections keep their Xavier init,
    which its normal re-initialisation skips. ``adapter_init='torch'``: its adapters keep
    nn.Linear's uniform init, being created after that re-initialisation.
    """
    if attn_init == "xavier":
        for module in model.modules():
            if isinstance(module, MultiHeadAttention):
                nn.init.xavier_uniform_(module.in_proj.weight)
    if adapter_init == "torch":
        for adapter in model.adapters.values():
            if isinstance(adapter, LinearAdapter):
                adapter.linear.reset_parameters()


def released_forward(model: MISSRec, x: torch.Tensor, slots: Slots, interest_ids: torch.Tensor
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """``arrangement='released'``: the encoder reads the interest tokens, the decoder's
    queries are the item tokens ``x`` [B, W, d] (self-attention per ``item_attention``),
    and u is the decoder output at the last item. Returns (u, regulariser values)."""
    c = model.config
    mem, mem_valid = model.interest_queries(interest_ids)
    if c.variant.reg_form == "released":
        # a zero query, masked as a key: its output is what the official code's padding
        # slots hold, which its regulariser weighs in (see reduce_regulariser)
        mem, mem_valid = F.pad(mem, (0, 0, 0, 1)), F.pad(mem_valid, (0, 1))
    mem = model.encode(mem, mem_valid)
    pos, valid = slots.item_pos, slots.valid
    if c.variant.item_attention == "causal":
        allowed = (pos[:, None, :] <= pos[:, :, None]) & valid[:, None, :]  # key <= query
        eye = torch.eye(pos.shape[1], dtype=torch.bool, device=x.device)
        self_mask = (allowed | eye[None])[:, None]  # never all-masked
    else:
        self_mask = key_mask(valid)
    x = model.decoder_stack(x, self_mask, mem, key_mask(mem_valid))
    # u: the last item that has a token (mean of its modality tokens when separate)
    last = torch.where(valid, pos, -1).max(1).values
    at_last = valid & (pos == last[:, None])
    return masked_mean(x, at_last), model.regulariser(mem, mem_valid)


def regulariser_parts(xi: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``reg_form='released'``: per row, what :func:`reduce_regulariser` needs, [B, 2d + 1]:
    the sum of the valid ξ, the padding query's output (the last column, added by
    :func:`released_forward`) and the count n of valid ξ."""
    w = mask.to(xi.dtype)
    return torch.cat([(xi * w[..., None]).sum(1), xi[:, -1], w.sum(1, keepdim=True)], 1)


def reduce_regulariser(views: tuple[torch.Tensor, ...], d: int) -> torch.Tensor:
    """The official code's regulariser of eqs. 7-8, summed over rows and views.

    It pads each batch's interest tokens to P slots, the most any row has plus one (its
    histories are padded to 50 items, and the padding's interest id takes a slot), pools
    each row as ``(n/P) Σ_slots ξ`` (every padding slot holds the padding query's output)
    and adds ``||pooled||² / d`` over the rows.
    """
    total = []
    for parts in views:
        valid_sum, pad, n = parts[:, :d], parts[:, d:2 * d], parts[:, 2 * d]
        width = n.max() + 1
        pooled = (n / width)[:, None] * (valid_sum + (width - n)[:, None] * pad)
        total.append((pooled * pooled).sum() / d)
    return torch.stack(total).sum()


def late_id_candidates(ids: torch.Tensor) -> torch.Tensor:
    """``id_scoring='late'``: the id embeddings scored apart from the modalities, normalised."""
    return F.normalize(ids, dim=-1)


def late_ids(fused: torch.Tensor, id_scores: torch.Tensor, id_candidates: torch.Tensor) -> torch.Tensor:
    """``id_scoring='late'``: the official code's transductive score, ``(2 <u, v> + <u, z>) / 3``
    (modalities weigh 2/3, the id 1/3), for items that have an id embedding.

    An item without one (added after training, or whose id a training step dropped with
    ``id_item_dropout``) has an all-zero row in ``id_candidates``; its id is left out of the
    weighted mean rather than counted as a score of 0, so its score is ``<u, v>``, the way
    eq. 2's fusion leaves out a missing modality. ``id_candidates`` is [n, d] beside
    ``fused`` [B, n], or [B, C, d] beside ``fused`` [B, C]."""
    has_id = id_candidates.ne(0).any(-1)
    return torch.where(has_id, (2.0 * fused + id_scores) / 3.0, fused)
