"""The causal Transformer of SASRec and UniSRec encodes mixed-length batches in length groups."""

from __future__ import annotations

import torch

from missrec.model.sasrec import CausalTransformer, length_groups


def _batch(seed=0, rows=400, width=50):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, width + 1, (rows,), generator=g)
    lengths[: rows // 2] = torch.randint(1, 6, (rows // 2,), generator=g)  # many short histories
    tokens = torch.randn(rows, width, 16, generator=g)
    tokens[torch.arange(width)[None, :] >= lengths[:, None]] = 0.0  # right padding
    return tokens, lengths


def test_groups_cover_every_row_once_within_their_width():
    _, lengths = _batch()
    groups = length_groups(lengths, 50)
    assert groups is not None and len(groups) >= 3
    rows = torch.cat([r for r, _ in groups])
    assert sorted(rows.tolist()) == list(range(len(lengths)))
    for r, width in groups:
        assert int(lengths[r].max()) == width


def test_grouped_outputs_and_gradients_equal_one_padded_pass():
    torch.manual_seed(0)
    model = CausalTransformer(16, 2, 2, 32, 0.0, 0.0, 50)
    tokens, lengths = _batch()
    a_in, b_in = tokens.clone().requires_grad_(), tokens.clone().requires_grad_()
    grouped = model(a_in, lengths)            # groups (checked above)
    whole = model._encode(b_in, lengths)      # one pass over B x L
    torch.testing.assert_close(grouped, whole, atol=1e-5, rtol=1e-4)
    weights = torch.randn_like(whole)
    (grouped * weights).sum().backward()
    (whole * weights).sum().backward()
    torch.testing.assert_close(a_in.grad, b_in.grad, atol=1e-5, rtol=1e-4)


def test_batches_of_like_lengths_and_small_batches_stay_whole():
    lengths = torch.randint(40, 51, (1000,))  # a length-bucketed training batch
    assert length_groups(lengths, 50) is None
    assert length_groups(torch.tensor([1, 50] * 30), 50) is None  # too few rows to split
