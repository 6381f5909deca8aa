"""The text-based baselines: SASRec_T (``sasrec-text``) and UniSRec (``unisrec``)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from missrec.data.batching import build_examples, collate
from missrec.errors import MissrecError
from missrec.model.registry import ItemFeatures, get_model_spec
from missrec.model.sasrec_text import SASRecTextConfig
from missrec.model.unisrec import UniSRecConfig

from support import make_dataset

SMALL = dict(hidden=16, n_layers=1, n_heads=2, inner=32, dropout=0.0, attn_dropout=0.0)
CASES = [
    ("sasrec-text", SASRecTextConfig(**SMALL)),
    ("sasrec-text", SASRecTextConfig(**SMALL, modalities=["text", "image"])),
    ("unisrec", UniSRecConfig(**SMALL, adapter_dropout=0.0, n_experts=3)),
    ("unisrec", UniSRecConfig(**SMALL, adapter_dropout=0.0, n_experts=3, mode="transductive",
                              modalities=["text", "image"])),
]
IDS = ["sasrec-text", "sasrec-text-tv", "unisrec-t", "unisrec-tv-id"]


@pytest.fixture(scope="module")
def toy():
    ds = make_dataset(n_users=40, n_items=30, seed=3)
    return ds, ItemFeatures(ds.n_items, ds.features)


def build(name, cfg, catalogue, seed=0):
    torch.manual_seed(seed)
    return get_model_spec(name).build(dataclasses.replace(cfg), catalogue)


@pytest.mark.parametrize("name,cfg", CASES, ids=IDS)
def test_shapes_and_full_catalogue_scores_equal_per_item(name, cfg, toy):
    ds, cat = toy
    model = build(name, cfg, cat).eval()
    ex = build_examples(ds, "valid")
    batch = collate(ex, np.arange(8))
    with torch.no_grad():
        cache = model.item_cache()
        full = model.score_all(batch, cache)
        assert full.shape == (8, ds.n_items + 1)
        assert torch.isfinite(full[:, 1:]).all()
        items = torch.arange(1, ds.n_items + 1).expand(8, -1)
        per_item = model.score_items(batch, items, cache)
        torch.testing.assert_close(full[:, 1:], per_item, rtol=1e-5, atol=1e-6)
        # and one item at a time
        for i in (1, 7, ds.n_items):
            one = model.score_items(batch, torch.full((8, 1), i), cache)[:, 0]
            torch.testing.assert_close(full[:, i], one, rtol=1e-5, atol=1e-6)
        # without a cache, the same scores
        torch.testing.assert_close(model.score_all(batch), full)
    loss, parts = model.train().training_loss(batch)
    assert loss.ndim == 0 and torch.isfinite(loss) and "loss" in parts


@pytest.mark.parametrize("name,cfg", CASES, ids=IDS)
def test_loss_decreases_on_tiny_store(name, cfg, toy):
    ds, cat = toy
    model = build(name, cfg, cat, seed=1).train()
    ex = build_examples(ds, "train")
    batch = collate(ex, np.arange(len(ex)))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = None
    for _ in range(40):
        loss, _ = model.training_loss(batch)
        first = float(loss.detach()) if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss.detach()) < 0.85 * first


def test_no_id_table_in_inductive_models(toy):
    _, cat = toy
    for name, cfg in CASES[:3]:
        model = build(name, cfg, cat)
        assert not any(p.shape[0] == cat.n_items + 1 for p in model.parameters()), name
    model = build(*CASES[3], cat)
    assert model.item_id.weight.shape == (cat.n_items + 1, 16)


def test_missing_image_is_masked(toy):
    ds, cat = toy
    model = build("unisrec", dataclasses.replace(CASES[2][1], modalities=["image"]), cat).eval()
    vectors = model.item_vectors()
    absent = ~torch.from_numpy(ds.features["image"].present)
    assert absent[1:].any()
    assert torch.all(vectors[absent] == 0)


def test_store_without_features_is_a_clear_error(toy):
    ds, _ = toy
    with pytest.raises(MissrecError, match="no image features"):
        get_model_spec("unisrec").build(UniSRecConfig(modalities=["image"]),
                                        ItemFeatures(ds.n_items, {"text": ds.features["text"]}))


def test_bad_mode_is_rejected():
    with pytest.raises(ValueError, match="mode"):
        UniSRecConfig(mode="both").validate()


def test_trainer_and_checkpoint_round_trip(tmp_path):
    from missrec.config import TrainConfig
    from missrec.data.store import write_store
    from missrec.train.checkpoint import load_model, read_checkpoint
    from missrec.train.loop import train

    store = write_store(make_dataset(n_users=30, n_items=25, seed=5), tmp_path / "toy")
    for name, cfg in (CASES[1], CASES[3]):
        out = tmp_path / name
        res = train(name, store, out, TrainConfig(epochs=2, batch_size=64, seed=1), dataclasses.replace(cfg),
                    log=lambda s: None).results
        assert set(res["test"]) >= {"recall@10", "ndcg@10"}
        model, _ = load_model(read_checkpoint(out / "model.pt"))
        assert model.n_items == 25
