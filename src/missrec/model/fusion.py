"""Dynamic fusion of candidate-item modalities (§3.2.4, eqs. 1-2).

For a user vector ``u`` and an item with modality embeddings ``x^m``, eq. 1 fuses

    v = Σ_m w_m x^m,   w = softmax_m(α <u, x^m>)

and, because the weights sum to one, the matching score factorises (eq. 2):

    <u, v> = Σ_m w_m s^m,   s^m = <u, x^m>,   w = softmax_m(α s^m).

So full-catalogue scoring needs one matmul per modality and a cheap element-wise fusion.
α = 0 gives the mean of the modality scores, α -> ∞ their max.

Missing modalities: an item that lacks modality m is fused over the modalities it has (its
``w_m`` is exactly 0, not a small number: the softmax runs over present modalities only).
An item with no modality at all cannot be represented; its score is ``-inf``.

α is learnable in the model and must stay >= 0; :class:`Concentration` parametrises it as
``softplus(raw)`` (smooth, never negative, gradient everywhere), leaves it free (the
official code), or holds it fixed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class Concentration(nn.Module):
    """The concentration factor α of eqs. 1-2.

    Learnable and ``constrained`` (the paper's α >= 0): ``α = softplus(raw)`` with ``raw``
    initialised so that α starts at ``init`` (``init`` must then be > 0: softplus reaches 0
    only at ``raw = -inf``, where its gradient vanishes). Learnable and not constrained:
    ``α = raw``, any sign, any start (the official code's ``fusion_factor``, which starts
    at 0 = mean fusion and may turn negative, leaning towards the weaker modality). Fixed
    (``learnable=False``): α is a constant buffer >= 0 (0 = plain mean fusion).
    """

    def __init__(self, init: float = 1.0, learnable: bool = True, constrained: bool = True):
        super().__init__()
        self.learnable = learnable
        self.constrained = constrained
        if learnable and not constrained:
            self.raw = nn.Parameter(torch.tensor(float(init)))
            return
        if init < 0:
            raise ValueError(f"alpha must be >= 0, got {init}")
        if not learnable:
            self.register_buffer("fixed", torch.tensor(float(init)))
            return
        if init == 0:
            raise ValueError("a learnable alpha >= 0 needs init > 0 (alpha = softplus(raw))")
        # inverse softplus; expm1 keeps precision for small init
        self.raw = nn.Parameter(torch.tensor(float(init + math.log(-math.expm1(-init)))))

    def forward(self) -> torch.Tensor:
        if not self.learnable:
            return self.fixed
        return F.softplus(self.raw) if self.constrained else self.raw


def fusion_weights(scores: torch.Tensor, present: torch.Tensor,
                   alpha: torch.Tensor | float) -> torch.Tensor:
    """Eq. 1's weights ``w_m = softmax_m(α s^m)`` over present modalities.

    ``scores``: [M, ...]; ``present``: bool, broadcastable to ``scores``. Where no modality
    is present the weights are 0 (not NaN), so gradients stay finite.
    """
    none = ~present.any(dim=0, keepdim=True)
    # additive mask: -inf for a missing modality; an all -inf column would make softmax
    # NaN and poison the backward pass, so such columns get 0 (and zero weights below)
    bias = torch.zeros(present.shape, dtype=scores.dtype, device=scores.device)
    bias = bias.masked_fill(~present, float("-inf")).masked_fill(none, 0.0)
    weights = torch.softmax(scores * alpha + bias, dim=0)
    return weights.masked_fill(none, 0.0) if bool(none.any()) else weights


def fuse_scores(scores: torch.Tensor | Sequence[torch.Tensor], present: torch.Tensor,
                alpha: torch.Tensor | float) -> torch.Tensor:
    """Factorised dynamic fusion, eq. 2.

    Args:
        scores: per-modality matching scores ``s^m_{i,k} = <u_i, x^m_k>``, either stacked
            [M, B, N] or a sequence of M tensors [B, N]. Entries of missing modalities are
            ignored but must be finite (a zero weight times NaN is NaN).
        present: [M, N] bool, True where item k has modality m (or [M, B, N]).
        alpha: concentration factor α >= 0.

    Returns:
        [B, N] fused scores ``Σ_m w_m s^m``; ``-inf`` for items with no modality.
    """
    if present.dim() == 2:
        present = present.unsqueeze(1)  # [M, 1, N]
    if len(scores) == 2:
        fused = _fuse_two(scores[0], scores[1], present[0], present[1], alpha)
    else:
        stacked = scores if isinstance(scores, torch.Tensor) else torch.stack(list(scores))
        fused = (fusion_weights(stacked, present, alpha) * stacked).sum(dim=0)
    none = ~present.any(dim=0)
    return fused.masked_fill(none, float("-inf")) if bool(none.any()) else fused


def _fuse_two(s1: torch.Tensor, s2: torch.Tensor, p1: torch.Tensor, p2: torch.Tensor,
              alpha: torch.Tensor | float) -> torch.Tensor:
    """Eq. 2 for two modalities in sigmoid form, ``s2 + σ(α(s1 - s2))·(s1 - s2)``.

    The softmax over two entries is a sigmoid of their difference, so this is the same
    function as the general path with about half the memory traffic (it matters for full
    softmax over a catalogue). A modality present alone gets weight exactly 1 (σ(+inf)).
    """
    diff = s1 - s2
    bias = torch.zeros(p1.shape, dtype=s1.dtype, device=s1.device)
    bias = bias.masked_fill(p1 & ~p2, float("inf")).masked_fill(~p1 & p2, float("-inf"))
    w = torch.sigmoid(diff * alpha + bias)
    return torch.addcmul(s2, w, diff)


def fuse_representations(u: torch.Tensor, x: torch.Tensor, present: torch.Tensor,
                         alpha: torch.Tensor | float) -> torch.Tensor:
    """Eq. 1 for paired (user, item) rows: the user-adaptive item representation ``v``.

    Args:
        u: [B, d] user vectors.
        x: [B, M, d] modality embeddings of each row's item.
        present: [B, M] bool.
        alpha: α >= 0.

    Returns:
        [B, d] ``v_b = Σ_m w_{b,m} x_{b,m}``; zeros for an item with no modality.
        ``<u_b, v_b>`` equals :func:`fuse_scores` on the diagonal.
    """
    scores = torch.einsum("bd,bmd->mb", u, x)  # [M, B]
    weights = fusion_weights(scores, present.t(), alpha)  # [M, B]
    safe = x.masked_fill(~present.unsqueeze(-1), 0.0)
    return torch.einsum("mb,bmd->bd", weights, safe)


def modality_scores(u: torch.Tensor, candidates: torch.Tensor) -> list[torch.Tensor]:
    """``s^m = u @ x^m.T`` for every modality: u [B, d], candidates [M, N, d] -> M x [B, N].

    One matmul per modality, each result contiguous (no [M, B, N] permute copy).
    """
    return [u @ c.t() for c in candidates]
