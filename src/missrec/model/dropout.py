"""Dropout with its mask drawn from uniform numbers on the CPU.

torch's CPU dropout (``nn.Dropout``, and the attention dropout inside
``F.scaled_dot_product_attention``) draws its mask with ``bernoulli_``, which is several
times slower than drawing uniform numbers and comparing them with ``p``; with the dropout
rates these models train at, it is a large share of a CPU training step
(docs/scale.md#dropout-on-the-cpu). :func:`dropout` keeps each element with probability
``1 - p`` and scales it by ``1 / (1 - p)``, the same distribution as torch's, from the
same seeded generator; on other devices it calls torch's own kernel.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    """Inverted dropout of ``x`` at rate ``p`` (the identity unless ``training``)."""
    if not training or p == 0.0:
        return x
    if x.device.type != "cpu" or p >= 1.0:
        return F.dropout(x, p, training=True)
    # float32 draws whatever x's dtype: a bf16 uniform is too coarse to threshold at p
    scale = torch.rand(x.shape, device=x.device).ge_(p).div_(1.0 - p)
    return x * scale.to(x.dtype)


class Dropout(nn.Dropout):
    """``nn.Dropout`` (its checks, its ``p``, no parameters) on :func:`dropout`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropout(x, self.p, self.training)


def use_fast_dropout(module: nn.Module) -> nn.Module:
    """Replace every ``nn.Dropout`` inside ``module`` (torch's Transformer layers hold them)
    by :class:`Dropout` at the same rate; returns ``module``."""
    for name, child in list(module.named_children()):
        if type(child) is nn.Dropout:
            setattr(module, name, Dropout(child.p))
        else:
            use_fast_dropout(child)
    return module


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None,
              p: float) -> torch.Tensor:
    """``softmax(q kᵀ / √d_k + mask) v`` with dropout ``p`` on the weights (training).

    What ``F.scaled_dot_product_attention`` computes, with :func:`dropout` on the weights:
    torch's fused CPU kernels take no dropout, so a training step there falls back to the
    same unfused arithmetic, with the slow mask. Without dropout, or off the CPU, torch's
    own kernel runs."""
    if p == 0.0 or q.device.type != "cpu":
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
    scores = torch.matmul(q, k.transpose(-2, -1)) * (1.0 / math.sqrt(q.shape[-1]))
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return torch.matmul(dropout(torch.softmax(scores, dim=-1), p), v)
