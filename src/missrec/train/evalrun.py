"""Runs that evaluate without training: a pre-trained model on a store it never saw
(zero-shot, :mod:`missrec.train.zeroshot`) and the popularity reference
(:mod:`missrec.model.popularity`). Each leaves a run directory as a training run does
(``results.json`` with valid and test metrics, ``test_ranks.npy``, ``test_targets.npy``), so
reports and paired comparisons read it the same way; ``results.json``'s ``kind`` says which.
"""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config import TrainConfig, to_dict
from ..data.users import choose_users
from ..eval.evaluator import EvalResult, evaluate
from ..model.popularity import Popularity, train_counts
from ..model.registry import required_modalities
from ..seed import seed_everything
from .meta import Log, code_version, eval_device, protocol_of
from .pretrained import model_digest, read_pretrained
from .rundata import RunData
from .trainer import write_atomically
from .zeroshot import build_zero_shot, evaluate_split

POPULARITY = "popularity"
"""The model name popularity runs record."""


def zero_shot_run(source: str | Path, store: str | Path, out_dir: str | Path, train_cfg: TrainConfig,
                  log: Log = print) -> dict[str, Any]:
    """Evaluate the pre-trained model at ``source`` on ``store``'s valid and test users
    without tuning it, and write the run to ``out_dir``."""
    _prepare(train_cfg)
    pre = read_pretrained(source)
    built = build_zero_shot(pre, store)
    valid, test = (evaluate_split(built, split, train_cfg) for split in ("valid", "test"))
    log(f"zero-shot {pre.model} from {source} on {store} ({', '.join(required_modalities(built.config))}): "
        + "  ".join(f"{k} {v:.4f}" for k, v in test.metrics.items() if not k.startswith("mrr")))
    results = _results(pre.model, "zero-shot", built.data, train_cfg, valid, test,
                       {"model": to_dict(built.config), "train": to_dict(train_cfg)})
    results["transfer_from"] = str(source)
    results["transfer_from_sha256"] = model_digest(source)
    return write_eval_run(out_dir, results, test)


def popularity_run(store: str | Path, out_dir: str | Path, train_cfg: TrainConfig,
                   log: Log = print) -> dict[str, Any]:
    """Rank every item by its training interactions among the users a run at the same
    ``train_fraction`` and seed would keep; evaluate valid and test; write the run."""
    _prepare(train_cfg)
    data = RunData.load(Path(store), [], 50)
    users = choose_users(data.train.users, train_cfg.train_fraction, train_cfg.seed)
    model = Popularity(train_counts(data.dataset, users))
    device = eval_device(train_cfg.device)
    protocol = protocol_of(train_cfg)
    valid, test = (evaluate(model, ex, protocol, device, desc=split, name=POPULARITY)
                   for split, ex in (("valid", data.valid), ("test", data.test)))
    log(f"popularity on {store} ({len(users):,} training users): "
        + "  ".join(f"{k} {v:.4f}" for k, v in test.metrics.items() if not k.startswith("mrr")))
    results = _results(POPULARITY, POPULARITY, data, train_cfg, valid, test, {"model": {}, "train": to_dict(train_cfg)})
    results["train_users"] = int(len(users))
    return write_eval_run(out_dir, results, test)


def _prepare(cfg: TrainConfig) -> None:
    """Threads and seeds as a training run sets them (so a run repeats)."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    seed_everything(cfg.seed)


def _results(model: str, kind: str, data: RunData, cfg: TrainConfig, valid: EvalResult, test: EvalResult,
             config: dict[str, Any]) -> dict[str, Any]:
    """What a training run's results.json says, for a run with no training."""
    return {
        "model": model, "kind": kind,
        "dataset": {"name": data.dataset.name, "store": str(data.store), "fingerprint": data.fingerprint},
        "valid": valid.metrics, "test": test.metrics, "best_epoch": 0, "epochs": 0, "train_seconds": 0.0,
        "eval_seconds": round(valid.seconds + test.seconds, 3), "seed": cfg.seed,
        "protocol": protocol_of(cfg).describe(), "config": config, "transfer_from": None,
        "code_version": code_version(), "python": platform.python_version(), "torch": torch.__version__,
    }


def write_eval_run(out_dir: str | Path, results: dict[str, Any], test: EvalResult) -> dict[str, Any]:
    """The test ranks, then ``results.json`` (last: a run is finished once it exists)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "test_ranks.npy", test.ranks)
    np.save(out / "test_targets.npy", test.targets)
    write_atomically(out / "results.json", json.dumps(results, indent=2) + "\n")
    return results


__all__ = ["POPULARITY", "popularity_run", "write_eval_run", "zero_shot_run"]
