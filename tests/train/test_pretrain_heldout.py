"""Pre-training holds out a seeded share of each domain's users, computes the eq. 7 loss on
them after every epoch (deterministically), stops on it and keeps the best epoch's weights."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import torch

from missrec.config import TrainConfig
from missrec.data.store import write_store
from missrec.model.missrec import MISSRecConfig
from missrec.model.registry import get_model_spec
from missrec.train import pretrain as pretrain_module
from missrec.train.checkpoint import read_checkpoint
from missrec.train.heldout import heldout_loss
from missrec.train.pretrain import PretrainData, domain_train_examples, pretrain

from support import make_dataset

TINY = MISSRecConfig(d=16, n_heads=2, ffn_dim=32, n_clusters=0.3, item_drop=0.2)
FAST = TrainConfig(epochs=2, batch_size=32, eval_batch_size=64, seed=3, threads=1, heldout_share=0.2)


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    root = tmp_path_factory.mktemp("heldout")
    out = []
    for name, seed in (("A", 1), ("B", 2)):
        ds = make_dataset(n_users=40, n_items=30, seed=seed)
        ds.name = name
        out.append(write_store(ds, root / name))
    return out


def test_each_domain_holds_out_a_seeded_share_of_its_users(stores):
    whole = PretrainData.load(stores, ["text", "image"], 50, seed=3)
    data = PretrainData.load(stores, ["text", "image"], 50, seed=3, heldout_share=0.2)
    assert whole.heldout is None and [d.heldout_users for d in whole.domains] == [0, 0]
    assert [d.heldout_users for d in data.domains] == [8, 8]
    assert len(data.train) + len(data.heldout) == len(whole.train)
    assert sum(d.heldout_examples for d in data.domains) == len(data.heldout)
    # no held-out user's sequence trains: the pooled (user, target position) pairs are disjoint
    train_ends = set(zip(data.train.users.tolist(), data.train.targets.tolist(), data.train.lengths.tolist()))
    held_ends = set(zip(data.heldout.users.tolist(), data.heldout.targets.tolist(), data.heldout.lengths.tolist()))
    assert not {u for u, _, _ in train_ends} & {u for u, _, _ in held_ends}
    again = PretrainData.load(stores, ["text", "image"], 50, seed=3, heldout_share=0.2)
    assert np.array_equal(again.heldout.ends, data.heldout.ends)
    assert [d.train_examples for d in data.domains] == [domain_train_examples(s, 0, 0.2, 3) for s in stores]
    capped = PretrainData.load(stores, ["text", "image"], 50, max_examples_per_domain=50, seed=3, heldout_share=0.2)
    assert [d.train_examples for d in capped.domains] == [50, 50]
    assert all(0 < d.heldout_examples <= math.ceil(0.2 * 50) for d in capped.domains)
    assert [d.train_examples for d in capped.domains] == [domain_train_examples(s, 50, 0.2, 3) for s in stores]


def test_the_held_out_loss_repeats_and_leaves_training_alone(stores):
    data = PretrainData.load(stores, ["text", "image"], 50, seed=3, heldout_share=0.2)
    model = get_model_spec("missrec").build(TINY, data.catalogue)
    model.train()
    torch.manual_seed(0)
    before = torch.get_rng_state()
    first = heldout_loss(model, data.heldout, FAST, torch.device("cpu"))
    assert torch.equal(torch.get_rng_state(), before) and model.training
    assert heldout_loss(model, data.heldout, FAST, torch.device("cpu")) == first and math.isfinite(first)


def test_pretraining_stops_on_the_held_out_loss_and_keeps_the_best_epoch(stores, tmp_path, monkeypatch):
    scripted = iter([3.0, 1.0, 2.0, 2.5, 0.5])
    monkeypatch.setattr(pretrain_module, "heldout_loss", lambda *a: next(scripted))
    cfg = dataclasses.replace(FAST, epochs=10, patience=2)
    res = pretrain(stores, tmp_path / "stopped", cfg, TINY, log=lambda s: None)
    assert res["epochs"] == 4 and res["best_epoch"] == 2
    assert res["heldout"]["loss_by_epoch"] == [3.0, 1.0, 2.0, 2.5] and res["heldout"]["best_loss"] == 1.0
    assert res["heldout"]["users"] == 16 and res["heldout"]["sequences"] > 0
    history = [json.loads(line) for line in (tmp_path / "stopped" / "history.jsonl").read_text().splitlines()]
    assert [h["heldout_loss"] for h in history] == [3.0, 1.0, 2.0, 2.5]
    kept = read_checkpoint(tmp_path / "stopped")
    assert kept["epoch"] == 2 and kept["best"] == {"heldout_loss": 1.0}
    # the kept weights are the second epoch's: a run of two epochs ends with the same ones
    scripted = iter([3.0, 1.0])
    pretrain(stores, tmp_path / "two", dataclasses.replace(cfg, epochs=2), TINY, log=lambda s: None)
    two = read_checkpoint(tmp_path / "two")["state_dict"]
    for k, v in kept["state_dict"].items():
        if torch.is_tensor(v):
            assert torch.equal(v, two[k]), k


def test_a_real_held_out_loss_is_recorded_every_epoch(stores, tmp_path):
    res = pretrain(stores, tmp_path / "run", FAST, TINY, log=lambda s: None)
    losses = res["heldout"]["loss_by_epoch"]
    assert len(losses) == 2 and all(math.isfinite(v) for v in losses)
    assert res["best_epoch"] == 1 + int(np.argmin(losses))
    again = pretrain(stores, tmp_path / "again", FAST, TINY, log=lambda s: None)
    assert again["heldout"]["loss_by_epoch"] == losses


def test_without_a_held_out_share_the_last_epoch_is_kept(stores, tmp_path):
    res = pretrain(stores, tmp_path / "plain", dataclasses.replace(FAST, heldout_share=0.0), TINY, log=lambda s: None)
    assert res["heldout"] is None and res["best_epoch"] == res["epochs"] == 2
    assert read_checkpoint(tmp_path / "plain")["epoch"] == 2
