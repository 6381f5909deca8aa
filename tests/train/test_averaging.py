"""Weight averaging: the update is the moving average it claims, and training with it
judges (validates, keeps, tests) the averaged weights."""

from __future__ import annotations

import json

import pytest
import torch
from support import make_dataset
from torch import nn

from missrec.config import TrainConfig
from missrec.data.store import write_store
from missrec.model.missrec import MISSRec, MISSRecConfig
from missrec.model.sasrec import SASRecConfig
from missrec.train.averaging import WeightAverage, weight_average
from missrec.train.checkpoint import read_checkpoint
from missrec.train.loop import train


def test_update_is_the_ramped_moving_average() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    model[1].requires_grad_(False)
    avg = WeightAverage(model, decay=0.9)
    expected = model[0].weight.detach().clone()
    frozen = model[1].weight.detach().clone()
    for t in range(1, 40):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
        avg.update()
        d = min(0.9, (1 + t) / (10 + t))
        expected = d * expected + (1 - d) * model[0].weight.detach()
    torch.testing.assert_close(avg.model[0].weight, expected)
    torch.testing.assert_close(avg.model[1].weight, frozen)  # frozen: never averaged
    assert not any(p.requires_grad for p in avg.model.parameters())
    assert weight_average(model, 0.0) is None
    for bad in (1.0, -0.1):
        with pytest.raises(ValueError, match="ema_decay"):
            weight_average(model, bad)


def test_the_average_shares_the_catalogue_and_clusters_on_its_own() -> None:
    torch.manual_seed(0)
    model = MISSRec(MISSRecConfig(d=16, ffn_dim=32, n_heads=2, n_clusters=0.3, modalities=["text"]), 20, {"text": 8})
    model.attach_catalogue({"text": torch.randn(21, 8)}, {"text": torch.ones(21, dtype=torch.bool)})
    model.on_epoch_start(0)
    avg = WeightAverage(model, 0.9)
    assert avg.model._feat_text is model._feat_text  # one copy of the catalogue
    table = model._interest_of.clone()
    with torch.no_grad():
        avg.model.adapters["text"].linear.weight.mul_(-3.0)
    avg.model.on_epoch_start(1)
    assert torch.equal(model._interest_of, table)  # the model's own interests are untouched
    assert not torch.equal(avg.model.adapters["text"].linear.weight, model.adapters["text"].linear.weight)


def _train(tmp_path, name, model, model_cfg, **kw):
    store = tmp_path / "store"
    if not store.exists():
        write_store(make_dataset(n_users=50, min_len=5), store)
    cfg = TrainConfig(epochs=3, batch_size=16, seed=3, patience=100, threads=1, lr=0.01, **kw)
    return train(model, store, tmp_path / name, cfg, model_cfg, log=lambda _: None)


def test_a_vanishing_decay_judges_the_raw_weights(tmp_path) -> None:
    """With d → 0 the average is the latest weights, so the run is the plain run."""
    cfg = SASRecConfig(hidden=16, inner=32, n_layers=1)
    plain = _train(tmp_path, "plain", "sasrec", cfg)
    averaged = _train(tmp_path, "avg", "sasrec", cfg, ema_decay=1e-12)
    assert averaged.results["test"] == pytest.approx(plain.results["test"], abs=1e-6)
    assert averaged.results["valid"] == pytest.approx(plain.results["valid"], abs=1e-6)


def test_averaged_missrec_run_keeps_the_averaged_weights(tmp_path) -> None:
    cfg = MISSRecConfig(d=16, ffn_dim=32, n_heads=2, clustering="kmeans", kmeans_init="random")
    plain = _train(tmp_path, "plain", "missrec", cfg)
    averaged = _train(tmp_path, "avg", "missrec", cfg, ema_decay=0.9)
    saved = read_checkpoint(tmp_path / "avg")["state_dict"]
    raw = read_checkpoint(tmp_path / "plain")["state_dict"]
    # the same training trajectory (averaging never feeds back), a different model kept
    assert not torch.allclose(saved["adapters.text.linear.weight"], raw["adapters.text.linear.weight"])
    results = json.loads((tmp_path / "avg" / "results.json").read_text())
    assert results["config"]["train"]["ema_decay"] == 0.9
    assert averaged.history[-1]["loss_si"] == pytest.approx(plain.history[-1]["loss_si"], rel=1e-5)
