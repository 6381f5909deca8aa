"""Metrics against closed forms and against scikit-learn on random data."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import ndcg_score, top_k_accuracy_score

from missrec.data.batching import build_examples
from missrec.eval.evaluator import EvalProtocol, evaluate
from missrec.eval.metrics import metrics_from_ranks, target_ranks, tie_fractions

from support import RowScorer


def test_closed_forms():
    m = metrics_from_ranks(np.array([0, 3, 10]), [10])
    assert m["recall@10"] == pytest.approx(2 / 3)
    assert m["ndcg@10"] == pytest.approx((1 + 1 / math.log2(5)) / 3)
    assert m["mrr@10"] == pytest.approx((1 + 1 / 4) / 3)


def test_rank_boundary_is_exclusive():
    # rank 9 (10th place) counts for @10; rank 10 does not
    assert metrics_from_ranks(np.array([9]), [10])["recall@10"] == 1.0
    assert metrics_from_ranks(np.array([10]), [10])["recall@10"] == 0.0


@pytest.mark.parametrize("k", [1, 5, 10, 50])
def test_against_scikit_learn(k):
    rng = np.random.default_rng(k)
    n_users, n_items = 300, 120
    scores = rng.normal(size=(n_users, n_items))  # continuous: no ties
    targets = rng.integers(0, n_items, size=n_users)
    ranks = target_ranks(torch.from_numpy(scores), torch.from_numpy(targets)).numpy()
    ours = metrics_from_ranks(ranks, [k])
    relevance = np.zeros_like(scores)
    relevance[np.arange(n_users), targets] = 1
    assert ours[f"ndcg@{k}"] == pytest.approx(ndcg_score(relevance, scores, k=k), abs=1e-12)
    assert ours[f"recall@{k}"] == pytest.approx(
        top_k_accuracy_score(targets, scores, k=k, labels=np.arange(n_items)), abs=1e-12)


def test_tie_policies():
    scores = torch.tensor([[1.0, 2.0, 2.0, 2.0, 0.5]])
    target = torch.tensor([2])
    assert target_ranks(scores, target, "optimistic").item() == 0
    assert target_ranks(scores, target, "pessimistic").item() == 2
    # a constant scorer ranks its target last under the default policy
    flat = torch.zeros(1, 100)
    assert target_ranks(flat, torch.tensor([7])).item() == 99
    with pytest.raises(ValueError):
        target_ranks(scores, target, "random")  # needs fractions
    with pytest.raises(ValueError):
        target_ranks(scores, target, "first")


def test_random_ties_place_the_target_uniformly_among_its_ties():
    n_users = 20_000
    users = torch.arange(1, n_users + 1)
    targets = torch.full((n_users,), 3)
    fractions = tie_fractions(users, targets)
    assert bool(((fractions >= 0) & (fractions < 1)).all())
    # a constant scorer over 10 items: every place 0..9 equally likely
    flat = torch.zeros(n_users, 10)
    ranks = target_ranks(flat, targets, "random", fractions)
    counts = torch.bincount(ranks, minlength=10)
    assert counts.shape == (10,) and int(counts.min()) > 1_800 and int(counts.max()) < 2_200
    # the place depends on the user, not on the batch it is scored in
    part = slice(123, 456)
    torch.testing.assert_close(
        target_ranks(flat[part], targets[part], "random", tie_fractions(users[part], targets[part])),
        ranks[part])
    # between the two bounds, and equal to them when nothing ties
    scores = torch.tensor([[1.0, 2.0, 2.0, 2.0, 0.5]]).expand(1000, -1)
    t = torch.full((1000,), 2)
    r = target_ranks(scores, t, "random", tie_fractions(torch.arange(1000), t))
    assert int(r.min()) == 0 and int(r.max()) == 2
    distinct = torch.randn(50, 30)
    t = torch.randint(0, 30, (50,))
    torch.testing.assert_close(target_ranks(distinct, t, "random", tie_fractions(torch.arange(50), t)),
                               target_ranks(distinct, t, "pessimistic"))


class _FixedScores(RowScorer):
    """Scores item i as -i (item 1 best) for every user, or history-boosted when asked."""

    def score_all(self, batch, cache=None):
        base = -torch.arange(self.n_items + 1, dtype=torch.float32)
        return base.expand(len(batch), -1).clone()


def test_evaluator_matches_direct_ranks_and_masks_history(toy_dataset):
    ex = build_examples(toy_dataset, "test")
    model = _FixedScores(toy_dataset.n_items)
    res = evaluate(model, ex, EvalProtocol(ks=[5], batch_size=7))
    assert np.array_equal(res.ranks, ex.targets - 1)  # item t sits at rank t-1
    masked = evaluate(model, ex, EvalProtocol(ks=[5], batch_size=7, mask_history=True))
    for i in range(len(ex)):
        hist = set(ex.history(i).tolist()) - {int(ex.targets[i])}
        expected = sum(1 for j in range(1, int(ex.targets[i])) if j not in hist)
        assert masked.ranks[i] == expected


def _official_missrec_metrics(scores: torch.Tensor, targets: torch.Tensor, topk: list[int]) -> dict:
    """A literal transcription of the official MISSRec code's copy of RecBole's evaluator
    (collector.eval_batch_collect + TopkMetric.topk_result, Hit and NDCG), one positive per
    user: it takes the top max(topk) + 1 items and reads the averages at index k, not k - 1."""
    _, topk_idx = torch.topk(scores, max(topk) + 1, dim=-1)
    pos_index = (topk_idx == targets[:, None]).numpy()
    hit = (np.cumsum(pos_index, axis=1) > 0).astype(float)
    ranks = np.arange(1, pos_index.shape[1] + 1)
    dcg = np.cumsum(np.where(pos_index, 1.0 / np.log2(ranks + 1), 0.0), axis=1)  # idcg = 1
    out = {}
    for name, value in (("hit", hit), ("ndcg", dcg)):
        avg = value.mean(axis=0)
        out.update({f"{name}@{k}": avg[k] for k in topk})
    return out


def test_the_official_evaluator_reports_the_next_cutoff():
    """Its "@K" is our @K+1: the reason README compares its logs with our @11 and @51."""
    g = torch.Generator().manual_seed(5)
    scores = torch.rand(400, 120, generator=g)  # continuous: no ties
    targets = torch.randint(0, 120, (400,), generator=g)
    ours = metrics_from_ranks(target_ranks(scores, targets).numpy(), [10, 11, 50, 51])
    official = _official_missrec_metrics(scores, targets, [10, 50])
    for k in (10, 50):
        assert official[f"hit@{k}"] == pytest.approx(ours[f"recall@{k + 1}"])
        assert official[f"ndcg@{k}"] == pytest.approx(ours[f"ndcg@{k + 1}"])
    assert ours["recall@10"] < ours["recall@11"]  # the shift is not a no-op on this data
