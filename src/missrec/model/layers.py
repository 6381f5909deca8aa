"""Post-LayerNorm Transformer blocks (the standard design [67] the paper follows, §3.4).

Attention masks are boolean and broadcastable to [B, heads, T_query, T_key], True where a
query may attend to a key. Callers guarantee that every query row has at least one allowed
key: an all-False row makes the softmax NaN, and a NaN value row is not neutralised by a
zero attention weight (0 * NaN = NaN), so it would leak into real rows in later layers.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .dropout import Dropout, attention


class MultiHeadAttention(nn.Module):
    """Multi-head attention on ``F.scaled_dot_product_attention`` (fused kernels on CPU/GPU;
    while training with attention dropout on the CPU, :func:`missrec.model.dropout.attention`)."""

    def __init__(self, d: int, n_heads: int, dropout: float):
        super().__init__()
        if d % n_heads:
            raise ValueError(f"d={d} is not divisible by n_heads={n_heads}")
        self.n_heads = n_heads
        self.dropout = dropout
        self.in_proj = nn.Linear(d, 3 * d)
        self.out_proj = nn.Linear(d, d)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        return x.view(b, t, self.n_heads, d // self.n_heads).transpose(1, 2)

    def forward(self, x: torch.Tensor, memory: torch.Tensor | None,
                mask: torch.Tensor | None) -> torch.Tensor:
        """Self-attention when ``memory`` is None, else cross-attention from ``x`` to it."""
        b, t, d = x.shape
        w, bias = self.in_proj.weight, self.in_proj.bias
        if memory is None:
            q, k, v = F.linear(x, w, bias).split(d, dim=-1)
        else:
            q = F.linear(x, w[:d], bias[:d])
            k, v = F.linear(memory, w[d:], bias[d:]).split(d, dim=-1)
        out = attention(self._split(q), self._split(k), self._split(v), mask,
                        self.dropout if self.training else 0.0)
        return self.out_proj(out.transpose(1, 2).reshape(b, t, d))


class FeedForward(nn.Module):
    """``fc2(dropout(gelu(fc1(x))))``; the inner dropout is nn.Transformer's (0 disables it)."""

    def __init__(self, d: int, ffn_dim: int, dropout: float = 0.0):
        super().__init__()
        self.fc1 = nn.Linear(d, ffn_dim)
        self.fc2 = nn.Linear(ffn_dim, d)
        self.drop = Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.drop(F.gelu(self.fc1(x))))


class EncoderBlock(nn.Module):
    """``h = LN(x + SA(x)); out = LN(h + FFN(h))``."""

    def __init__(self, d: int, n_heads: int, ffn_dim: int, dropout: float, attn_dropout: float,
                 eps: float, ffn_dropout: float = 0.0):
        super().__init__()
        self.attn = MultiHeadAttention(d, n_heads, attn_dropout)
        self.ffn = FeedForward(d, ffn_dim, ffn_dropout)
        self.norm1 = nn.LayerNorm(d, eps=eps)
        self.norm2 = nn.LayerNorm(d, eps=eps)
        self.drop = Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        x = self.norm1(x + self.drop(self.attn(x, None, mask)))
        return self.norm2(x + self.drop(self.ffn(x)))


class DecoderBlock(nn.Module):
    """``h1 = LN(q + SA(q)); h2 = LN(h1 + CA(h1, memory)); out = LN(h2 + FFN(h2))``.

    Whether the self-attention is causal is decided by the mask the caller passes; the
    paper's interest-aware decoder (§3.4.2) passes a non-causal one.
    """

    def __init__(self, d: int, n_heads: int, ffn_dim: int, dropout: float, attn_dropout: float,
                 eps: float, ffn_dropout: float = 0.0):
        super().__init__()
        self.self_attn = MultiHeadAttention(d, n_heads, attn_dropout)
        self.cross_attn = MultiHeadAttention(d, n_heads, attn_dropout)
        self.ffn = FeedForward(d, ffn_dim, ffn_dropout)
        self.norm1 = nn.LayerNorm(d, eps=eps)
        self.norm2 = nn.LayerNorm(d, eps=eps)
        self.norm3 = nn.LayerNorm(d, eps=eps)
        self.drop = Dropout(dropout)

    def forward(self, q: torch.Tensor, memory: torch.Tensor, self_mask: torch.Tensor | None,
                memory_mask: torch.Tensor | None) -> torch.Tensor:
        q = self.norm1(q + self.drop(self.self_attn(q, None, self_mask)))
        q = self.norm2(q + self.drop(self.cross_attn(q, memory, memory_mask)))
        return self.norm3(q + self.drop(self.ffn(q)))


def key_mask(valid: torch.Tensor) -> torch.Tensor:
    """[B, T] validity -> [B, 1, 1, T] attention mask (every query sees the valid keys)."""
    return valid[:, None, None, :]
