"""Training and evaluation throughput of one model on one store."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config import TrainConfig
from ..model.registry import required_modalities
from .loop import RunData, max_len_of, peak_memory_mb, train


def bench_training(model: str, store: str | Path, train_cfg: TrainConfig, model_cfg: Any,
                   epochs: int = 2) -> dict[str, Any]:
    """Run ``epochs`` epochs (no early stop) and report median per-epoch figures."""
    t0 = time.perf_counter()
    data = RunData.load(store, required_modalities(model_cfg), max_len_of(model_cfg))
    load_seconds = time.perf_counter() - t0
    cfg = dataclasses.replace(train_cfg, epochs=epochs, patience=epochs + 1)
    result = train(model, store, None, cfg, model_cfg, data=data, log=lambda s: None, test=False)
    hist = result.history
    train_s = float(np.median([h["train_seconds"] for h in hist]))
    out = {
        "model": model,
        "dataset": data.dataset.name,
        "train_sequences": len(data.train),
        "epochs_timed": len(hist),
        "seconds_per_epoch": round(train_s, 3),
        "first_epoch_seconds": hist[0]["train_seconds"],
        "train_sequences_per_second": round(len(data.train) / train_s, 1),
        "eval_users_per_second": float(np.median([h["eval_users_per_second"] for h in hist])),
        "peak_memory_mb": round(peak_memory_mb(), 1),
        "load_seconds": round(load_seconds, 3),
        "threads": torch.get_num_threads(),
        "batch_size": cfg.batch_size,
    }
    cluster = [h["epoch_cluster_seconds"] for h in hist if "epoch_cluster_seconds" in h]
    if cluster:
        out["cluster_seconds_per_epoch"] = round(float(np.median(cluster)), 3)
    return out
