"""Modality adapters ψ (§3.2.3)."""

from __future__ import annotations

import pytest
import torch

from missrec.model.adapters import MoEAdapter, make_adapter


def test_linear_and_identity_shapes() -> None:
    x = torch.randn(5, 3, 12)
    assert make_adapter("linear", 12, 8)(x).shape == (5, 3, 8)
    torch.testing.assert_close(make_adapter("none", 12, 12).eval()(x), x)
    with pytest.raises(ValueError):
        make_adapter("none", 12, 8)
    with pytest.raises(ValueError):
        make_adapter("mlp", 12, 8)


def test_moe_matches_formula() -> None:
    torch.manual_seed(0)
    a = MoEAdapter(6, 4, n_experts=3).eval()
    with torch.no_grad():
        a.whiten_bias.normal_()
        a.gate.weight.normal_()
    x = torch.randn(7, 6)
    gates = torch.softmax(x @ a.gate.weight.t(), dim=-1)
    experts = torch.stack([(x - a.whiten_bias[e]) @ a.experts[e] for e in range(3)], dim=1)
    ref = (gates[..., None] * experts).sum(1)
    torch.testing.assert_close(a(x), ref, rtol=1e-5, atol=1e-6)


def test_moe_dropout_only_in_training() -> None:
    a = make_adapter("moe", 6, 4, n_experts=2, dropout=0.5)
    x = torch.randn(50, 6)
    a.eval()
    torch.testing.assert_close(a(x), a(x))
    a.train()
    assert not torch.allclose(a(x), a(x))
