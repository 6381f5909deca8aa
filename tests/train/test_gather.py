"""Pre-training across ranks: gathered in-batch negatives and one clustering for all ranks."""

from __future__ import annotations

import numpy as np
import torch
import torch.distributed as dist
from support import make_dataset, spawn_ranks

from missrec.config import TrainConfig
from missrec.data.batching import build_examples, collate
from missrec.data.store import write_store
from missrec.model.missrec import MISSRec, MISSRecConfig
from missrec.model.registry import ItemFeatures, get_model_spec
from missrec.seed import seed_everything
from missrec.train.distributed import DistContext
from missrec.train.gather import RowGather
from missrec.train.pretrain import PretrainTrainer

CFG = MISSRecConfig(d=16, ffn_dim=32, n_heads=2, dropout=0.0, attn_dropout=0.0, feature_dropout=0.0,
                    bucket_tokens=0, n_clusters=0.3)
ROWS = 16


def _model_and_batch():
    torch.set_num_threads(1)
    ds = make_dataset(n_users=40)
    seed_everything(0)
    model = get_model_spec("missrec").build(CFG, ItemFeatures(ds.n_items, ds.features))
    model.train()
    # repeated targets across the halves: the same-item mask must act across ranks too
    return model, build_examples(ds, "train", 50), np.arange(ROWS)


def _loss_and_grads(model, batch, gather=None):
    model.zero_grad()
    loss, _ = model.pretrain_loss(batch, gather=gather)
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def _gather_worker(rank, world, out):
    dist.init_process_group("gloo", rank=rank, world_size=world)
    model, ex, idx = _model_and_batch()
    local = collate(ex, idx[rank::world])
    loss, grads = _loss_and_grads(model, local, RowGather(DistContext(rank, world)))
    alone, _ = _loss_and_grads(model, local)
    for t in [loss, alone, *grads.values()]:
        dist.all_reduce(t)
        t /= world
    if rank == 0:
        torch.save({"loss": loss, "alone": alone, "grads": grads}, out)


def test_two_ranks_with_gathered_negatives_give_the_combined_batchs_loss_and_gradient(tmp_path):
    model, ex, idx = _model_and_batch()
    loss, grads = _loss_and_grads(model, collate(ex, idx))
    spawn_ranks(_gather_worker, tmp_path / "two.pt")
    two = torch.load(tmp_path / "two.pt", weights_only=False)
    torch.testing.assert_close(two["loss"], loss, atol=1e-5, rtol=1e-5)
    assert grads.keys() == two["grads"].keys()
    for name, g in grads.items():
        torch.testing.assert_close(two["grads"][name], g, atol=1e-5, rtol=1e-4, msg=name)
    # each rank's own half as the negatives is a different loss: the gather is what matches
    assert abs(float(two["alone"]) - float(loss)) > 1e-3


def _pretrain_worker(rank, world, store, out):
    if rank > 0:
        def never(self, x, epoch):
            raise AssertionError("rank 1 clustered: the clustering must come from rank 0")
        MISSRec._cluster = never
    cfg = TrainConfig(epochs=2, batch_size=16, seed=3, threads=1, gather_negatives=True)
    trainer = PretrainTrainer([store], None, cfg, CFG, log=lambda _: None)
    trainer.run()
    torch.save(trainer.model.get_extra_state(), out / f"rank{rank}.pt")


def test_every_rank_holds_rank_zeros_clustering(tmp_path):
    store = tmp_path / "store"
    write_store(make_dataset(n_users=30), store)
    spawn_ranks(_pretrain_worker, store, tmp_path)
    zero, one = (torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in (0, 1))
    assert zero["catalogue"] == one["catalogue"] != ""
    assert torch.equal(zero["interest_of"], one["interest_of"]) and (zero["interest_of"] >= 0).any()
    assert torch.equal(zero["prototypes"], one["prototypes"])
