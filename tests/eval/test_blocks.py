"""Evaluation in catalogue blocks ranks exactly as scoring whole rows does: same ranks, same
metrics, for every model, tie policy, history masking and block size (1, sizes that do not
divide the catalogue, one block), and the same error on a non-finite score."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from missrec.cli import main
from missrec.data.batching import build_examples, iterate_batches
from missrec.data.store import read_store
from missrec.errors import MissrecError
from missrec.eval.evaluator import EvalProtocol, evaluate
from missrec.eval.metrics import TIE_POLICIES, metrics_from_ranks, target_ranks, tie_fractions
from missrec.model.base import SequentialRecommender
from missrec.model.registry import ItemFeatures, get_model_spec
from missrec.seed import seed_everything
from missrec.train.checkpoint import load_model, read_checkpoint
from missrec.train.resolve import resolve_configs

from support import RowScorer, make_dataset, shared_dataset

_BASELINE = ("model.hidden=16", "model.n_layers=1", "model.inner=32", "model.max_len=12")
_TEXT = _BASELINE + ("model.modalities=[text, image]",)
_MISSREC = ("model.d=16", "model.ffn_dim=32", "model.max_len=12", "model.knn_k=3")
MODELS = {
    "sasrec": ("sasrec", _BASELINE, None),
    "sasrec-text": ("sasrec-text", _TEXT, None),
    "unisrec": ("unisrec", _TEXT + ("model.n_experts=2",), None),
    "unisrec-transductive": ("unisrec", _TEXT + ("model.n_experts=2", "model.mode=transductive"), None),
    "missrec": ("missrec", _MISSREC, None),
    "missrec-released-transductive": ("missrec", _MISSREC + ("model.mode=transductive",), "released"),
}
N_ITEMS = 37  # prime: no block size in BLOCKS but 1 divides the catalogue (38 rows with padding)
BLOCKS = (1, 5, 16, 38, 1000)


@torch.no_grad()
def full_row_ranks(model: SequentialRecommender, examples, protocol: EvalProtocol) -> np.ndarray:
    """The reference: every batch scored as one [B, n_items + 1] matrix, then ranked."""
    model.eval()
    cache = model.item_cache()
    order = np.argsort(examples.lengths, kind="stable")
    ranks = []
    for batch in iterate_batches(examples.subset(order), protocol.batch_size):
        scores = model.score_all(batch, cache).float()
        assert bool((scores[:, 1:] < torch.inf).all())
        scores[:, 0] = -torch.inf
        if protocol.mask_history:
            hist = batch.items.clone()
            hist[hist == batch.targets[:, None]] = 0
            scores.scatter_(1, hist, -torch.inf)
            scores[:, 0] = -torch.inf
        fractions = tie_fractions(batch.users, batch.targets) if protocol.ties == "random" else None
        ranks.append(target_ranks(scores, batch.targets, protocol.ties, fractions))
    out = np.empty(len(examples), dtype=np.int64)
    out[order] = torch.cat(ranks).numpy()
    return out


def assert_blocks_rank_as_rows(model, examples, protocol: EvalProtocol, blocks=BLOCKS,
                               near_ties: float = 0.0) -> None:
    """Every block size ranks as whole rows do. ``near_ties``: the share of users whose rank may
    move by one, for a trained model whose scores can fall within a rounding error of the
    target's: a block's shape picks the matrix-product kernel, so such an item can land on
    either side of the target (a blocking bug moves many ranks, or by more than one)."""
    expected = full_row_ranks(model, examples, protocol)
    for size in blocks:
        got = evaluate(model, examples, dataclasses.replace(protocol, block_size=size))
        if near_ties:
            moved = got.ranks != expected
            assert moved.mean() <= near_ties and np.abs(got.ranks - expected).max(initial=0) <= 1, size
        else:
            np.testing.assert_array_equal(got.ranks, expected, err_msg=f"block_size={size}")
        assert got.metrics == metrics_from_ranks(got.ranks, protocol.ks), size


@pytest.fixture(scope="module")
def toy():
    ds = make_dataset(n_users=40, n_items=N_ITEMS, min_len=3, max_len=10, seed=3)
    return ds, ItemFeatures(ds.n_items, ds.features), build_examples(ds, "test", max_len=12)


@pytest.mark.parametrize("name", list(MODELS))
def test_every_model_ranks_the_same_in_blocks(name, toy) -> None:
    ds, cat, examples = toy
    model_name, sets, preset = MODELS[name]
    seed_everything(0)
    model = get_model_spec(model_name).build(resolve_configs(model_name, None, sets, preset)[1], cat)
    for ties in TIE_POLICIES:
        for mask in (False, True):
            protocol = EvalProtocol(ks=[1, 5, 10], ties=ties, mask_history=mask, batch_size=16)
            assert_blocks_rank_as_rows(model, examples, protocol)


def test_block_scores_are_the_columns_of_score_all(toy) -> None:
    _, cat, examples = toy
    batch = next(iter(iterate_batches(examples, 16)))
    for name, (model_name, sets, preset) in MODELS.items():
        seed_everything(0)
        model = get_model_spec(model_name).build(resolve_configs(model_name, None, sets, preset)[1], cat).eval()
        with torch.no_grad():
            cache = model.item_cache()
            full = model.score_all(batch, cache)
            users = model.user_vectors(batch, cache)
            blocks = [model.score_block(users, cache, slice(s, s + 5)) for s in range(0, N_ITEMS + 1, 5)]
            torch.testing.assert_close(torch.cat(blocks, 1), full, rtol=1e-6, atol=1e-6, msg=name)
            chosen = torch.tensor([7, 2, 7, 30])
            torch.testing.assert_close(model.score_block(users, cache, chosen), full[:, chosen],
                                       rtol=1e-6, atol=1e-6, msg=name)


class Coarse(RowScorer):
    """Scores rounded to a few levels (many ties), items without a score (-inf), and only
    ``score_all``: blocks are slices of it."""

    def __init__(self, n_items: int, bad: tuple[int, int] | None = None):
        super().__init__(n_items)
        self.bad = bad

    def score_all(self, batch, cache=None) -> torch.Tensor:
        items = torch.arange(self.n_items + 1)
        scores = ((batch.users[:, None] * 7 + items[None] * 3) % 4).float()
        scores[:, items % 9 == 4] = -torch.inf
        if self.bad is not None:
            scores[batch.users == self.bad[0], self.bad[1]] = torch.nan
        return scores


def test_ties_and_unscorable_items_rank_the_same_in_blocks(toy) -> None:
    _, _, examples = toy
    for ties in TIE_POLICIES:
        for mask in (False, True):
            protocol = EvalProtocol(ks=[1, 5, 10], ties=ties, mask_history=mask, batch_size=16)
            assert_blocks_rank_as_rows(Coarse(N_ITEMS), examples, protocol)


def test_non_finite_score_names_the_same_user_and_item_in_blocks(toy) -> None:
    _, _, examples = toy
    user = int(examples.users[5])
    messages = set()
    for size in BLOCKS:
        with pytest.raises(MissrecError, match=f"scored item 22 nan for user {user} ") as err:
            evaluate(Coarse(N_ITEMS, bad=(user, 22)), examples, EvalProtocol(block_size=size), name="run")
        messages.add(str(err.value))
    assert len(messages) == 1


@pytest.fixture(scope="module")
def scientific(tmp_path_factory):
    """MISSRec trained for one epoch on amazon-scientific-mm, and its test examples."""
    src = shared_dataset("amazon-scientific-mm")
    tmp = tmp_path_factory.mktemp("blocks")
    store, run = tmp / "store", tmp / "run"
    for args in (["data", "import", "--format", "unisrec", src, store],
                 ["train", "--model", "missrec", "--data", store, "--out", run, "-q", "--set", "epochs=1",
                  "--set", "batch_size=1024", "--set", "d=16", "--set", "ffn_dim=32"]):
        res = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
        assert res.exit_code == 0, res.output
    model, config = load_model(read_checkpoint(run))
    ds = read_store(store, modalities=list(config.modalities))
    return model, build_examples(ds, "test", config.max_len)


def test_trained_missrec_on_scientific_ranks_the_same_in_blocks(scientific) -> None:
    model, examples = scientific
    for ties in TIE_POLICIES:
        protocol = EvalProtocol(ks=[10, 50], ties=ties, mask_history=ties == "random", batch_size=512)
        assert_blocks_rank_as_rows(model, examples, protocol, blocks=(700, 2048), near_ties=0.01)
    first = examples.subset(np.arange(300))
    assert_blocks_rank_as_rows(model, first, EvalProtocol(ks=[10], batch_size=300), blocks=(1, 97),
                               near_ties=0.01)
