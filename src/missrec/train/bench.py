"""Training and evaluation throughput of one model on one store, and the memory that
evaluation itself needs (its score blocks grow with the evaluation batch and block size)."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config import TrainConfig
from ..eval.evaluator import evaluate
from ..model.registry import required_modalities
from .loop import RunData, max_len_of, peak_memory_mb, train
from .meta import validation_protocol_of


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
    out.update(eval_memory(result.model, data, cfg))
    cluster = [h["epoch_cluster_seconds"] for h in hist if "epoch_cluster_seconds" in h]
    if cluster:
        out["cluster_seconds_per_epoch"] = round(float(np.median(cluster)), 3)
    return out


def eval_memory(model: torch.nn.Module, data: RunData, cfg: TrainConfig) -> dict[str, Any]:
    """One more validation pass of the trained model, alone: its peak resident memory, the
    part of it above the memory held before it started (the score blocks and the model's
    activations), and, on CUDA, the peak GPU memory allocated."""
    cuda = torch.device(cfg.device).type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    before = _resident_mb("VmRSS")
    reset = _reset_peak_resident()
    res = evaluate(model, data.valid, validation_protocol_of(cfg), cfg.device)
    out: dict[str, Any] = {"eval_block_size": cfg.eval_block_size, "eval_batch_size": cfg.eval_batch_size,
                           "eval_users": len(res.ranks), "eval_seconds": round(res.seconds, 3)}
    peak = _resident_mb("VmHWM") if reset else None
    if peak is not None and before is not None:
        out["eval_peak_memory_mb"] = round(peak, 1)
        out["eval_extra_memory_mb"] = round(peak - before, 1)
    if cuda:
        out["eval_peak_gpu_memory_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return out


def _reset_peak_resident() -> bool:
    """Restart the kernel's peak-resident-memory counter (Linux: VmHWM); False elsewhere."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _resident_mb(field: str) -> float | None:
    """``VmRSS`` (now) or ``VmHWM`` (peak since the last reset) from /proc, MiB; None where
    there is no /proc."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return None
