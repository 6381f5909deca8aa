"""Pre-training over several domains, then parameter-efficient transfer to a new one."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from missrec.config import TrainConfig
from missrec.data.store import write_store
from missrec.model.missrec import MISSRecConfig
from missrec.train.checkpoint import read_checkpoint
from missrec.train.pretrain import PretrainData, pretrain
from missrec.train.loop import train

from support import make_dataset

TINY = MISSRecConfig(d=16, n_heads=2, ffn_dim=32, n_clusters=0.3)
FAST = TrainConfig(epochs=2, batch_size=32, eval_batch_size=64, seed=3)


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    root = tmp_path_factory.mktemp("stores")
    a = make_dataset(n_users=40, n_items=30, seed=1)
    a.features.pop("image")  # a text-only pre-training domain
    a.name = "A"
    b = make_dataset(n_users=40, n_items=25, seed=2)
    b.name = "B"
    target = make_dataset(n_users=50, n_items=35, seed=3)
    target.name = "T"
    return write_store(a, root / "a"), write_store(b, root / "b"), write_store(target, root / "t")


def test_union_catalogue_namespaces_items_and_masks_missing_modalities(stores):
    a, b, _ = stores
    data = PretrainData.load([a, b], ["text", "image"], max_len=50)
    assert data.catalogue.n_items == 55 and len(data.item_ids) == 56
    assert data.item_ids[1].startswith("A:") and data.item_ids[31].startswith("B:")
    img = data.catalogue.features["image"]
    assert not img.present[1:31].any()  # domain A has no images: absent, not zero "images"
    # every pooled example's items stay inside its own domain's index range
    for i in range(len(data.train)):
        items = np.r_[data.train.history(i), data.train.targets[i]]
        assert (items <= 30).all() or (items > 30).all()


def test_pretrain_then_transfer_tunes_only_adapters(stores, tmp_path):
    a, b, target = stores
    res = pretrain([a, b], tmp_path / "pre", FAST, TINY, log=lambda s: None)
    assert res["train_sequences"] > 0 and res["sequences_per_second"] > 0
    ckpt = read_checkpoint(tmp_path / "pre")
    assert [d["name"] for d in ckpt["dataset"]["domains"]] == ["A", "B"]
    assert ckpt["epoch"] == 2

    lines: list[str] = []
    cfg = dataclasses.replace(TINY, **{k: v for k, v in ckpt["model_config"].items() if k != "mode"},
                              mode="transductive")
    out = train("missrec", target, tmp_path / "ft", FAST, cfg, init_from=tmp_path / "pre" / "model.pt",
                log=lines.append)
    counts = out.results["parameters"]
    assert 0 < counts["trainable"] < counts["total"]
    assert any("trainable of" in line for line in lines)
    # frozen blocks keep their pre-trained weights exactly
    pre = ckpt["state_dict"]
    tuned = out.model.state_dict()
    trainable = set(out.model.transfer_parameters("transductive"))
    frozen = [k for k in pre if torch.is_tensor(pre[k]) and k in tuned and k not in trainable
              and pre[k].shape == tuned[k].shape and pre[k].dtype.is_floating_point]
    assert frozen
    for k in frozen:
        assert torch.equal(pre[k], tuned[k]), k
    assert any(not torch.equal(pre[k], tuned[k]) for k in trainable if k in pre and pre[k].shape == tuned[k].shape)


def test_pretraining_with_weight_averaging_saves_the_average(stores, tmp_path):
    """A vanishing decay saves the raw weights; a real one saves other (averaged) weights,
    from the same training trajectory."""
    a, b, _ = stores
    one = dataclasses.replace(FAST, epochs=1)
    plain = pretrain([a, b], tmp_path / "plain", one, TINY, log=lambda s: None)
    raw = read_checkpoint(tmp_path / "plain")["state_dict"]
    pretrain([a, b], tmp_path / "vanishing", dataclasses.replace(one, ema_decay=1e-12), TINY, log=lambda s: None)
    same = read_checkpoint(tmp_path / "vanishing")["state_dict"]
    averaged = pretrain([a, b], tmp_path / "avg", dataclasses.replace(one, ema_decay=0.9), TINY,
                        log=lambda s: None)
    avg = read_checkpoint(tmp_path / "avg")["state_dict"]
    weights = [k for k in raw if torch.is_tensor(raw[k]) and raw[k].is_floating_point()]
    for k in weights:
        torch.testing.assert_close(same[k], raw[k], msg=k)
    assert any(not torch.allclose(avg[k], raw[k]) for k in weights)
    assert averaged["config"]["train"]["ema_decay"] == 0.9
    assert plain["train_sequences"] == averaged["train_sequences"]
