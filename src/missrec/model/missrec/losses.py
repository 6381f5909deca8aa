"""MISSRec's objectives: fine-tuning (eq. 8), pre-training (eq. 7) and the interest
regulariser both share (the 'paper' form; the official code's is in :mod:`.released`)."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Callable

import torch
import torch.nn.functional as F

from ...data.batching import SequenceBatch
from ..fusion import fuse_scores, modality_scores
from .tokens import masked_mean

if TYPE_CHECKING:  # the model these functions are steps of
    from .network import MISSRec

Gather = Callable[[torch.Tensor], tuple[torch.Tensor, int]]
"""Every data-parallel process's rows of a tensor and where this process's rows start
(:class:`missrec.train.gather.RowGather`); None: this process's batch is the batch."""


def interest_regulariser(xi: torch.Tensor, mask: torch.Tensor, normalize: bool) -> torch.Tensor:
    """Per-row ``(1/M²) Σ_{m,m'} <ξ_m, ξ_m'>`` of eqs. 7-8 (padding queries excluded).

    Equals ``||mean_m ξ_m||²``, which is how it is computed (O(M d), not O(M² d)). With
    ``normalize`` the ξ are L2-normalised first: on raw post-LayerNorm ξ the term is
    minimised by shrinking the last LayerNorm's gain, which changes nothing else once u is
    normalised.
    """
    if normalize:
        xi = F.normalize(xi, dim=-1)
    pooled = masked_mean(xi, mask)
    return (pooled * pooled).sum(-1)


def mean_regulariser(views: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """One regulariser value from the per-row values of one or more views: the mean over
    rows, then over views."""
    return torch.stack([r.mean() for r in views]).mean()


def finetune_loss(model: MISSRec, batch: SequenceBatch) -> tuple[torch.Tensor, dict[str, float]]:
    """Eq. 8: softmax over the whole catalogue + γ · regulariser.

    ``ℓ = CE(<u, v_k>/τ, target) + γ/M² Σ <ξ_m, ξ_m'>``, averaged over the batch, with
    ``<u, v_k>`` the dynamic-fusion score of eq. 2 (eq. 9 / eq. 10 by mode).
    """
    model.ensure_interests()
    c = model.config
    tables = model.item_tables()
    if c.modality_dropout > 0 and model.training:
        tables = dataclasses.replace(tables, present=modality_drop_mask(tables.present, c.modality_dropout))
    if c.id_item_dropout > 0 and model.training and tables.ids is not None:
        tables = dataclasses.replace(tables, ids=id_drop(tables.ids, c.id_item_dropout))
    u, reg = model.encode_histories(model.prepare_histories(batch.items), tables)
    u = model.finish_user(u)
    scores = model.score_candidates(u, model.candidates(tables), tables.present, model.id_candidates(tables))
    targets = batch.targets.to(u.device)
    loss_si = scorable_cross_entropy(scores / c.tau, targets, tables.present.any(0)[targets])
    loss_reg = model.reduce_regulariser(reg)
    loss = loss_si + c.gamma * loss_reg
    return loss, {"loss_si": float(loss_si.detach()), "loss_reg": float(loss_reg.detach()),
                  "alpha": float(model.alpha().detach())}


def pretrain_loss(model: MISSRec, batch: SequenceBatch, gather: Gather | None = None
                  ) -> tuple[torch.Tensor, dict[str, float]]:
    """Eq. 7 on two augmented views of every history.

    * Views (§3.2.2): independent feature dropout (``feature_dropout``) on every
      modality, and optionally item dropping (``item_drop``) that removes the same items
      from every modality of a view.
    * Sequence-item contrast (eq. 5) of view 1 against the batch's targets (see
      :func:`_sequence_item`).
    * Sequence-sequence contrast (eq. 6) between the views (see :func:`_sequence_sequence`).
    * Regulariser: mean of the two views' (eqs. 7-8).

    With ``gather`` the in-batch negatives of eqs. 5-6 are every process's rows.
    """
    model.ensure_interests()
    c = model.config
    items = model.prepare_histories(batch.items)
    targets = batch.targets.to(items.device)
    bsz, length = items.shape
    # the batch's items (histories and targets) as local rows 1..n, 0 = padding
    zero = torch.zeros(1, dtype=items.dtype, device=items.device)
    ids, inverse = torch.unique(torch.cat([zero, items.flatten(), targets]), return_inverse=True)
    local = inverse[1:1 + bsz * length].view(bsz, length)
    u_views, regs = [], []
    for _ in range(2):
        tables = model.item_tables(ids, augment=c.feature_dropout)
        keep = item_drop_mask(items, c.item_drop) if c.item_drop > 0 else None
        u, reg = model.encode_histories(local, tables, keep)
        u_views.append(model.finish_user(u))
        regs.append(reg)
    loss_si = _sequence_item(model, u_views[0], ids, inverse[1 + bsz * length:], targets, gather)
    loss_ss = _sequence_sequence(u_views[0], u_views[1], c.tau, gather)
    loss_reg = model.reduce_regulariser(*regs)
    loss = loss_si + c.lambda_ss * loss_ss + c.gamma * loss_reg
    return loss, {"loss_si": float(loss_si.detach()), "loss_ss": float(loss_ss.detach()),
                  "loss_reg": float(loss_reg.detach()), "alpha": float(model.alpha().detach())}


def _sequence_item(model: MISSRec, u: torch.Tensor, ids: torch.Tensor, local_targets: torch.Tensor,
                   targets: torch.Tensor, gather: Gather | None = None) -> torch.Tensor:
    """Eq. 5 with in-batch negatives, scored by dynamic fusion (eq. 2) of the clean
    (un-augmented) targets. A negative whose item equals the positive's is masked out: it
    is not a negative."""
    clean = model.item_tables(ids)
    cand = model.candidates(clean)[:, local_targets]  # [M, B, d]
    present = clean.present[:, local_targets]  # [M, B]
    scorable = present.any(0)
    all_targets, start = targets, 0
    if gather is not None:
        cand, start = gather(cand.transpose(0, 1))
        cand = cand.transpose(0, 1)
        present = gather(present.t())[0].t()
        all_targets = gather(targets)[0]
    scores = fuse_scores(modality_scores(u, cand), present, model.alpha())  # [B, B_all]
    positive = _positives(len(targets), len(all_targets), start, targets.device)
    same = targets[:, None] == all_targets[None, :]
    scores = scores.masked_fill(same & ~positive, float("-inf"))
    labels = start + torch.arange(len(targets), device=targets.device)
    return scorable_cross_entropy(scores / model.config.tau, labels, scorable)


def scorable_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, scorable: torch.Tensor) -> torch.Tensor:
    """Cross-entropy over the rows whose positive item has at least one of the model's
    modalities. An item with none scores -inf (it cannot be represented), so its row would
    make the loss infinite while teaching nothing; with every row scorable this is plain
    ``F.cross_entropy``."""
    if bool(scorable.all()):
        return F.cross_entropy(logits, labels)
    if not bool(scorable.any()):
        return logits.sum() * 0.0
    return F.cross_entropy(logits[scorable], labels[scorable])


def _sequence_sequence(u1: torch.Tensor, u2: torch.Tensor, tau: float, gather: Gather | None = None) -> torch.Tensor:
    """Eq. 6: u_i against u'_i, negatives u_j and u'_j (j != i).

    The literal eq. 6 also counts ``<u_i, u_i>`` in the denominator; that constant term
    (1/τ after normalisation) only caps the loss, so it is left out, as in NT-Xent.
    """
    all1, all2, start = u1, u2, 0
    if gather is not None:
        (all1, start), (all2, _) = gather(u1), gather(u2)
    own = _positives(len(u1), len(all1), start, u1.device)
    cross = u1 @ all2.t()
    within = (u1 @ all1.t()).masked_fill(own, float("-inf"))
    labels = start + torch.arange(len(u1), device=u1.device)
    return F.cross_entropy(torch.cat([cross, within], 1) / tau, labels)


def _positives(rows: int, columns: int, start: int, device: torch.device) -> torch.Tensor:
    """[rows, columns] True at (i, start + i): each row's own column among all rows'."""
    return torch.arange(columns, device=device)[None, :] == start + torch.arange(rows, device=device)[:, None]


def modality_drop_mask(present: torch.Tensor, p: float) -> torch.Tensor:
    """``present`` [M, n] with each present modality dropped with probability ``p``; an
    item keeps at least one of its modalities (one drawn at random when all were dropped).

    Applied to the whole catalogue for one training step, it removes a modality from items
    in the histories and among the candidates alike, so the loss sees items with a modality
    missing beside items that have all, and has to score both on one scale."""
    if present.shape[0] < 2:
        return present
    kept = present & (torch.rand(present.shape, device=present.device) >= p)
    lost = present.any(0) & ~kept.any(0)
    if bool(lost.any()):
        # one of each such item's present modalities, drawn uniformly: argmax of noise
        # restricted to the present ones
        noise = torch.rand(present.shape, device=present.device).masked_fill(~present, -1.0)
        pick = torch.zeros_like(present).scatter_(0, noise.argmax(0, keepdim=True), True)
        kept = kept | (pick & lost[None])
    return kept


def id_drop(ids: torch.Tensor, p: float) -> torch.Tensor:
    """The id embeddings [n, d] of one training step with each item's whole row zeroed with
    probability ``p`` (not rescaled: an item scored without its id is one that has none,
    not a noisy copy of one that has it)."""
    keep = torch.rand(ids.shape[0], 1, device=ids.device) >= p
    return ids * keep.to(ids.dtype)


def item_drop_mask(items: torch.Tensor, p: float) -> torch.Tensor:
    """[B, L] True where a history item stays in a pre-training view (dropped with
    probability ``p``); every row keeps >= 1 item."""
    real = items > 0
    keep = (torch.rand(items.shape, device=items.device) >= p) & real
    lengths = real.sum(1)
    lost = ~keep.any(1)
    if bool(lost.any()):
        rows = torch.nonzero(lost).squeeze(1)
        keep[rows, (lengths[rows] - 1).clamp_min(0)] = True
    return keep
