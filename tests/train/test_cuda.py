"""The same model on a GPU: equal clustering, scores and losses to the CPU's, and a whole
training run whose checkpoint evaluates on a CPU. Skipped where no CUDA device is present."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from support import make_dataset

from missrec.config import TrainConfig
from missrec.data.batching import SequenceBatch
from missrec.data.store import write_store
from missrec.model.missrec import MISSRec, MISSRecConfig
from missrec.train.checkpoint import load_model, read_checkpoint
from missrec.train.loop import train

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

DIMS = {"text": 24, "image": 20}
N_ITEMS = 60


def _catalogue(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    feats = {m: torch.randn(N_ITEMS + 1, d, generator=g) for m, d in DIMS.items()}
    present = {m: torch.rand(N_ITEMS + 1, generator=g) < 0.85 for m in DIMS}
    return feats, present


def _batch(seed: int = 1, b: int = 16, length: int = 9) -> SequenceBatch:
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, length + 1, (b,), generator=g)
    items = torch.randint(1, N_ITEMS + 1, (b, length), generator=g)
    items = items * (torch.arange(length)[None] < lengths[:, None])
    return SequenceBatch(items, lengths, torch.randint(1, N_ITEMS + 1, (b,), generator=g), torch.arange(b))


def _on(batch: SequenceBatch, device: str) -> SequenceBatch:
    return SequenceBatch(batch.items.to(device), batch.lengths.to(device), batch.targets.to(device),
                         batch.users.to(device))


@pytest.mark.parametrize("kw", [
    {},
    {"mode": "transductive", "clustering": "kmeans", "kmeans_init": "kmeans++", "tokens": "added",
     "arrangement": "released", "id_scoring": "late", "stack_norm": True},
])
def test_gpu_model_equals_cpu_model(kw) -> None:
    cfg = MISSRecConfig(d=32, n_heads=2, ffn_dim=64, dropout=0.0, attn_dropout=0.0, feature_dropout=0.0,
                        max_len=10, n_clusters=0.3, knn_k=4, **kw)
    torch.manual_seed(0)
    cpu = MISSRec(cfg, N_ITEMS, DIMS)
    gpu = copy.deepcopy(cpu).cuda()
    feats, present = _catalogue()
    cpu.attach_catalogue(feats, present)
    gpu.attach_catalogue({m: f.cuda() for m, f in feats.items()}, {m: p.cuda() for m, p in present.items()})
    cpu.on_epoch_start(0)
    gpu.on_epoch_start(0)
    assert torch.equal(cpu._interest_of, gpu._interest_of.cpu())
    batch = _batch()
    cpu.eval(), gpu.eval()
    with torch.no_grad():
        torch.testing.assert_close(gpu.score_all(_on(batch, "cuda")).cpu(), cpu.score_all(batch),
                                   atol=1e-4, rtol=1e-4)
        loss_cpu, _ = cpu.training_loss(batch)
        loss_gpu, _ = gpu.training_loss(_on(batch, "cuda"))
    torch.testing.assert_close(loss_gpu.cpu(), loss_cpu, atol=1e-4, rtol=1e-4)


def test_training_on_gpu_leaves_a_checkpoint_a_cpu_evaluates(tmp_path) -> None:
    store = tmp_path / "store"
    write_store(make_dataset(n_users=60, min_len=5), store)
    cfg = TrainConfig(epochs=3, batch_size=32, seed=5, patience=100, threads=1, lr=0.01, device="cuda")
    model_cfg = MISSRecConfig(d=16, ffn_dim=32, n_heads=2, mode="transductive")
    train("missrec", store, tmp_path / "run", cfg, model_cfg, log=lambda _: None)
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["epochs"] == 3 and 0.0 <= results["test"]["ndcg@10"] <= 1.0
    model, _ = load_model(read_checkpoint(tmp_path / "run" / "model.pt"))
    assert all(p.device.type == "cpu" for p in model.parameters())
