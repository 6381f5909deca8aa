"""Modality-specific adapters ψ^m (§3.2.3): frozen extractor features (d_in) -> tokens (d).

The adapters bridge general-purpose features and the recommendation space. In
parameter-efficient transfer (§3.6) they are, with the id table, the only trained weights.

Kinds:

* ``linear`` (default; what the released code uses): ``ψ(f) = W f + b``.
* ``moe``: UniSRec-style mixture of ``n_experts`` whitening experts. Expert ``e`` computes
  ``W_e (f - b_e)`` (a learnable whitening bias, then a linear map without bias); a softmax
  gate computed from the raw feature mixes the experts.
* ``none``: the identity; only valid when ``d == d_in``.

Every adapter applies dropout to its input (``dropout``; 0 disables), active in training mode.
"""

from __future__ import annotations

from typing import Literal, get_args

import torch
from torch import nn

from .dropout import Dropout

AdapterKind = Literal["linear", "moe", "none"]
ADAPTER_KINDS: tuple[str, ...] = get_args(AdapterKind)


class LinearAdapter(nn.Module):
    """``ψ(f) = W dropout(f) + b``."""

    def __init__(self, d_in: int, d: int, dropout: float = 0.0):
        super().__init__()
        self.dropout = Dropout(dropout)
        self.linear = nn.Linear(d_in, d)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.linear(self.dropout(features))


class MoEAdapter(nn.Module):
    """UniSRec-style mixture of whitening experts.

    ``ψ(f) = Σ_e g_e(f) · W_e (dropout(f) - b_e)`` with ``g(f) = softmax(f W_g)``. The gate reads
    the raw (un-dropped) feature so that augmentation perturbs the experts' inputs, not the
    routing.
    """

    def __init__(self, d_in: int, d: int, n_experts: int = 8, dropout: float = 0.0):
        super().__init__()
        if n_experts < 1:
            raise ValueError(f"n_experts must be >= 1, got {n_experts}")
        self.dropout = Dropout(dropout)
        self.whiten_bias = nn.Parameter(torch.zeros(n_experts, d_in))
        self.experts = nn.Parameter(torch.empty(n_experts, d_in, d))
        self.gate = nn.Linear(d_in, n_experts, bias=False)
        nn.init.normal_(self.experts, std=0.02)
        nn.init.zeros_(self.gate.weight)  # uniform routing at start

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        gates = torch.softmax(self.gate(features), dim=-1)  # [..., E]
        x = self.dropout(features)
        # (x - b_e) W_e = x W_e - b_e W_e: one batched matmul over experts, no [..., E, d_in] copy
        shifted = torch.einsum("...i,eid->...ed", x, self.experts)
        shifted = shifted - torch.einsum("ei,eid->ed", self.whiten_bias, self.experts)
        return torch.einsum("...e,...ed->...d", gates, shifted)


class IdentityAdapter(nn.Module):
    """No transformation (features are used as tokens as they are), apart from input dropout."""

    def __init__(self, d_in: int, d: int, dropout: float = 0.0):
        super().__init__()
        if d_in != d:
            raise ValueError(f"adapter 'none' needs d == d_in, got d={d}, d_in={d_in}")
        self.dropout = Dropout(dropout)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.dropout(features)


def make_adapter(kind: AdapterKind, d_in: int, d: int = 300, n_experts: int = 8,
                 dropout: float = 0.0) -> nn.Module:
    """Build the adapter ψ of ``kind`` ('linear' | 'moe' | 'none') mapping ``d_in`` -> ``d``."""
    if kind == "linear":
        return LinearAdapter(d_in, d, dropout)
    if kind == "moe":
        return MoEAdapter(d_in, d, n_experts, dropout)
    if kind == "none":
        return IdentityAdapter(d_in, d, dropout)
    raise ValueError(f"unknown adapter {kind!r}; expected one of {ADAPTER_KINDS}")
