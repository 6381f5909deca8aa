"""The CPU dropout and attention of missrec.model.dropout against torch's own kernels."""

import torch
import torch.nn.functional as F
from torch import nn

from missrec.model.dropout import Dropout, attention, dropout, use_fast_dropout
from missrec.model.sasrec import SASRec, SASRecConfig


def test_dropout_keeps_one_minus_p_and_scales_the_kept():
    torch.manual_seed(0)
    x = torch.ones(400_000)
    y = dropout(x, 0.3)
    kept = y != 0
    # binomial standard deviation of the kept share is ~0.0007 here
    assert abs(kept.float().mean().item() - 0.7) < 0.004
    assert torch.allclose(y[kept], torch.full_like(y[kept], 1 / 0.7))


def test_dropout_is_the_identity_when_not_training_and_zero_at_p_one():
    x = torch.randn(5, 7)
    assert dropout(x, 0.5, training=False) is x
    assert dropout(x, 0.0) is x
    assert torch.equal(dropout(x, 1.0), torch.zeros_like(x))


def test_dropout_repeats_from_the_seed_and_masks_the_gradient_as_the_output():
    x = torch.randn(64, 32, requires_grad=True)
    torch.manual_seed(7)
    y = dropout(x, 0.5)
    torch.manual_seed(7)
    assert torch.equal(dropout(x, 0.5), y)
    y.sum().backward()
    assert torch.equal(x.grad, (y != 0).float() * 2.0)


def test_dropout_of_bfloat16_stays_bfloat16():
    x = torch.ones(10_000, dtype=torch.bfloat16)
    y = dropout(x, 0.5)
    assert y.dtype == torch.bfloat16
    assert abs((y != 0).float().mean().item() - 0.5) < 0.03


def test_module_follows_train_and_eval():
    m = Dropout(0.5)
    x = torch.ones(1000)
    assert (m(x) == 0).any()
    m.eval()
    assert torch.equal(m(x), x)


def _qkv(b=3, h=2, t=6, d=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(b, h, t, d, generator=g) for _ in range(3))
    mask = torch.rand(b, 1, 1, t, generator=g) > 0.3
    mask[..., 0] = True  # every query has a key
    return q, k, v, mask


def test_attention_with_a_vanishing_rate_is_torchs_attention():
    q, k, v, mask = _qkv()
    ours = attention(q, k, v, mask, 1e-12)  # the unfused path, keeping every weight
    assert torch.allclose(ours, F.scaled_dot_product_attention(q, k, v, attn_mask=mask), atol=1e-5)


def test_attention_dropout_is_unbiased():
    q, k, v, mask = _qkv(b=1, h=1, t=4, d=4)
    torch.manual_seed(3)
    draws = torch.stack([attention(q, k, v, mask, 0.5) for _ in range(4000)])
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    # each entry is a mean of 4000 draws whose spread is about |v| / 2
    assert torch.allclose(draws.mean(0), expected, atol=0.1)
    assert draws.std(0).max() > 0.1  # and it did drop weights


def test_sasrec_encoder_holds_no_torch_dropout_and_keeps_its_weights():
    model = SASRec(SASRecConfig(hidden=16, n_heads=2, inner=32, n_layers=2), n_items=20)
    assert not [m for m in model.modules() if type(m) is nn.Dropout]
    assert sum(isinstance(m, Dropout) for m in model.modules()) >= 7  # input + 3 per layer
    plain = nn.TransformerEncoder(nn.TransformerEncoderLayer(16, 2, 32, batch_first=True), 2,
                                  enable_nested_tensor=False)
    assert set(model.encoder.blocks.state_dict()) == set(plain.state_dict())
