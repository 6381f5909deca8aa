"""Data-parallel training: sharded batches, and two gloo processes = one process with the same global batch."""

from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pytest
import torch
from support import make_dataset, spawn_ranks

from missrec.config import TrainConfig
from missrec.data.batching import build_examples, iterate_batches
from missrec.data.store import write_store
from missrec.model.missrec import MISSRecConfig
from missrec.model.sasrec import SASRecConfig
from missrec.model.registry import get_model_spec
from missrec.seed import seed_everything
from missrec.train.loop import RunData, train

N_EXAMPLES, BATCH = 96, 32  # every global batch splits into two equal halves


def test_shards_partition_every_batch_and_skip_only_tiny_ones():
    ds = make_dataset(n_users=40)
    ex = build_examples(ds, "train", 50)
    full = [b.targets.tolist() for b in iterate_batches(ex, 7, shuffle=True, generator=np.random.default_rng(3))]
    shards = [[b.targets.tolist() for b in iterate_batches(ex, 7, shuffle=True, generator=np.random.default_rng(3),
                                                           shard=(r, 3))] for r in range(3)]
    kept = [b for b in full if len(b) >= 3]
    assert len(kept) >= len(full) - 1 and all(len(s) == len(kept) for s in shards)
    for i, batch in enumerate(kept):
        assert sorted(sum((shards[r][i] for r in range(3)), [])) == sorted(batch)
        assert shards[0][i] == batch[0::3] and shards[2][i] == batch[2::3]


def _run(store, out, model, model_cfg, epochs):
    data = RunData.load(store, ["text", "image"] if model == "missrec" else [], 50)
    data = dataclasses.replace(data, train=data.train.subset(np.arange(N_EXAMPLES)))
    cfg = TrainConfig(epochs=epochs, batch_size=BATCH, seed=5, patience=100, threads=1, lr=0.01)
    return train(model, store, out, cfg, model_cfg, data=data, log=lambda _: None)


def _worker(rank, world, store, out, model, model_cfg, epochs):
    _run(store, out, model, model_cfg, epochs)
    assert not torch.distributed.is_initialized()  # the run closed the group it opened


def _weights(run_dir):
    return torch.load(run_dir / "model.pt", map_location="cpu", weights_only=False)["state_dict"]


@pytest.mark.parametrize("model,model_cfg", [
    ("sasrec", SASRecConfig(hidden=16, inner=32, n_layers=1, dropout=0.0, attn_dropout=0.0)),
    ("missrec", MISSRecConfig(d=16, ffn_dim=32, n_heads=2, dropout=0.0, attn_dropout=0.0, feature_dropout=0.0,
                              bucket_tokens=0)),
])
def test_two_processes_train_what_one_process_trains(tmp_path, model, model_cfg):
    store = tmp_path / "store"
    write_store(make_dataset(n_users=60, min_len=5), store)
    assert len(RunData.load(store, [], 50).train) >= N_EXAMPLES
    _run(store, tmp_path / "one", model, model_cfg, epochs=2)
    two_dir = tmp_path / "two"
    spawn_ranks(_worker, store, two_dir, model, model_cfg, 2, before_retry=lambda: shutil.rmtree(two_dir, True))
    res = json.loads((two_dir / "results.json").read_text())
    assert res["processes"] == 2 and res["epochs"] == 2
    one, two = _weights(tmp_path / "one"), _weights(two_dir)
    assert one.keys() == two.keys()
    for k in one:
        if torch.is_tensor(one[k]) and one[k].is_floating_point():
            a, b = two[k], one[k]
            if "in_proj" in k and k.endswith("bias"):
                # query and key biases can have a true gradient of 0 (a key bias shifts every logit alike;
                # a query facing one key has nothing to weigh), and Adam turns rounding noise there into
                # steps of its own: compare the value part
                a, b = a[2 * (a.numel() // 3):], b[2 * (b.numel() // 3):]
            torch.testing.assert_close(a, b, atol=2e-5, rtol=1e-4, msg=k)
    # and training moved the weights: the comparison is not between two untouched inits
    seed_everything(5)
    init = get_model_spec(model).build(model_cfg, RunData.load(store, ["text", "image"], 50).catalogue).state_dict()
    assert max((one[k] - init[k]).abs().max().item() for k in init
               if torch.is_tensor(init[k]) and init[k].is_floating_point()) > 1e-3
