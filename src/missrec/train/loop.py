"""The training loop: early stopping on validation, test metrics of the best epoch.

One function, :func:`train`, serves every registered model; a run directory receives
``config.yaml`` (resolved), ``history.jsonl`` (one line per epoch), ``model.pt`` (the best
checkpoint) and ``results.json``.
"""

from __future__ import annotations

import copy
import json
import math
import platform
import resource
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from tqdm.auto import tqdm

from .. import __version__
from ..config import TrainConfig, save_yaml, to_dict
from ..data.batching import Examples, build_examples, iterate_batches
from ..data.store import Dataset, read_schema, read_store
from ..eval.evaluator import EvalProtocol, evaluate
from ..model.base import SequentialRecommender
from ..model.registry import Catalogue, get_model_spec, required_modalities
from ..seed import seed_everything
from .averaging import weight_average
from .checkpoint import read_checkpoint, save_checkpoint
from .distributed import DistContext, broadcast_flags, init_from_env, loss_function, start_data_parallel

Log = Callable[[str], None]


@dataclass
class RunData:
    """A loaded store and its examples, reusable across runs of the same dataset."""

    store: Path
    dataset: Dataset
    train: Examples
    valid: Examples
    test: Examples
    fingerprint: str

    @classmethod
    def load(cls, store: str | Path, modalities: list[str], max_len: int) -> "RunData":
        store = Path(store)
        ds = read_store(store, modalities=modalities)
        return cls(store, ds, build_examples(ds, "train", max_len), build_examples(ds, "valid", max_len),
                   build_examples(ds, "test", max_len), read_schema(store).get("fingerprint", ""))

    @property
    def catalogue(self) -> Catalogue:
        return Catalogue(self.dataset.n_items, self.dataset.features)


@dataclass
class TrainResult:
    results: dict[str, Any]
    model: SequentialRecommender
    history: list[dict[str, float]] = field(default_factory=list)


def protocol_of(cfg: TrainConfig) -> EvalProtocol:
    return EvalProtocol(ks=list(cfg.ks), mask_history=cfg.mask_history, ties=cfg.ties,
                        batch_size=cfg.eval_batch_size)


def code_version() -> str:
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             cwd=Path(__file__).parent, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        rev = ""
    return f"{__version__}+{rev}" if rev else __version__


def max_len_of(model_cfg: Any) -> int:
    """Histories are cut to the model's ``max_len`` (the most recent items)."""
    return int(getattr(model_cfg, "max_len", 50))


def peak_memory_mb() -> float:
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024 if sys.platform != "darwin" else kb / 2**20


def run_epoch(model: SequentialRecommender, loss_fn: Callable, examples: Examples, cfg: TrainConfig,
              optim: torch.optim.Optimizer, rng: np.random.Generator, device: torch.device, epoch: int,
              progress: bool, desc: str = "epoch", ctx: DistContext = DistContext(),
              after_step: Callable[[], None] | None = None) -> tuple[dict[str, float], dict[str, float]]:
    """One pass over ``examples``: the model's per-epoch hook, then a step per batch.

    ``loss_fn`` maps a batch to (loss, components), e.g. :func:`~missrec.train.distributed.loss_function`;
    under data-parallel training each process takes its share of every batch.
    ``after_step`` runs after every optimiser step (weight averaging).
    Returns the hook's figures (prefixed ``epoch_``) and the mean of each loss component.
    """
    model.train()
    stats = {f"epoch_{k}": v for k, v in model.on_epoch_start(epoch).items()}
    sums: dict[str, float] = {}
    n_batches = math.ceil(len(examples) / cfg.batch_size)
    batches = iterate_batches(examples, cfg.batch_size, shuffle=True, generator=rng, bucket=cfg.bucket_by_length,
                              shard=ctx.shard())
    for batch in tqdm(batches, total=n_batches, desc=f"{desc} {epoch}", disable=not (progress and ctx.main),
                      leave=False):
        loss, parts = loss_fn(batch.to(device))
        optim.zero_grad(set_to_none=True)
        loss.backward()
        optim.step()
        if after_step is not None:
            after_step()
        for k, v in parts.items():
            sums[k] = sums.get(k, 0.0) + v
    return stats, {k: v / max(n_batches, 1) for k, v in sums.items()}


def train(model_name: str, store: str | Path, out_dir: str | Path | None, train_cfg: TrainConfig,
          model_cfg: Any, *, init_from: str | Path | None = None, data: RunData | None = None,
          progress: bool = False, log: Log = print, test: bool = True) -> TrainResult:
    """Train ``model_name`` on ``store``; early-stop on validation; evaluate the best on test.

    ``init_from`` transfers a pre-trained checkpoint: weights whose shapes match are loaded,
    and only the model's :meth:`transfer_parameters` train (paper §3.6).

    Under ``torchrun`` the processes train one model data-parallel
    (:mod:`missrec.train.distributed`); rank 0 evaluates, decides and writes.
    """
    if train_cfg.threads:
        torch.set_num_threads(train_cfg.threads)
    seed_everything(train_cfg.seed)
    rng = np.random.default_rng(train_cfg.seed)
    ctx, device = init_from_env(torch.device(train_cfg.device))
    if not ctx.main:
        log, progress, out_dir = (lambda _: None), False, None
    spec = get_model_spec(model_name)
    data = data or RunData.load(store, required_modalities(model_cfg), max_len_of(model_cfg))
    model = spec.build(model_cfg, data.catalogue)

    trainable_names = None
    if init_from is not None:
        trainable_names = _transfer_from(model, init_from, model_cfg, log)
    model.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    n_total = sum(p.numel() for p in model.parameters())
    n_train = sum(p.numel() for p in params)
    log(f"{model_name}: {n_train:,} trainable of {n_total:,} parameters"
        + (f" ({100 * n_train / n_total:.2f}%)" if trainable_names is not None else ""))
    optim = torch.optim.Adam(params, lr=train_cfg.lr, weight_decay=train_cfg.weight_decay)
    average = weight_average(model, train_cfg.ema_decay)
    # what is validated, kept as the best and tested: the raw weights or their average
    judged = average.model if average is not None else model
    protocol = protocol_of(train_cfg)
    loss_fn = loss_function(model, "training_loss", ctx, device)
    start_data_parallel(ctx, train_cfg.seed, train_cfg.batch_size, log)

    out = Path(out_dir) if out_dir is not None else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        save_yaml(out / "config.yaml", {"model": model_cfg, "train": train_cfg})
        (out / "history.jsonl").write_text("")
    history: list[dict[str, float]] = []
    best_score, best_epoch, best_state, best_valid = -math.inf, 0, None, {}
    bad_epochs = 0
    t_start = time.perf_counter()
    epoch = 0
    for epoch in range(1, train_cfg.epochs + 1):
        t0 = time.perf_counter()
        epoch_stats, means = run_epoch(model, loss_fn, data.train, train_cfg, optim, rng, device,
                                       epoch, progress, ctx=ctx,
                                       after_step=average.update if average is not None else None)
        train_seconds = time.perf_counter() - t0
        row: dict[str, float] = {"epoch": epoch, "train_seconds": round(train_seconds, 3),
                                 **means, **epoch_stats}
        if epoch % train_cfg.eval_every == 0 or epoch == train_cfg.epochs:
            if ctx.main:
                if average is not None:
                    average.current(epoch)  # re-clusters the averaged weights' own interests
                res = evaluate(judged, data.valid, protocol, device, progress, desc="valid")
                row.update({f"valid_{k}": v for k, v in res.metrics.items()})
                row["eval_seconds"] = round(res.seconds, 3)
                row["eval_users_per_second"] = round(res.users_per_second, 1)
                score = res.metrics[train_cfg.valid_metric]
                improved = score > best_score
            else:
                res, score, improved = None, -math.inf, False
            (improved,) = broadcast_flags(ctx, improved)
            if improved:
                best_score, best_epoch, best_valid = score, epoch, res.metrics if res is not None else {}
                best_state = copy.deepcopy(judged.state_dict())
                bad_epochs = 0
            else:
                bad_epochs += train_cfg.eval_every
            if res is not None:
                comps = " ".join(f"{k} {row[k]:.4f}" for k in means)
                log(f"epoch {epoch:3d}  {comps}  valid {train_cfg.valid_metric} {score:.4f}"
                    f"{' *' if improved else '  '}  ({train_seconds:.1f}s train, {res.seconds:.1f}s eval)")
        history.append(row)
        if out is not None:
            with open(out / "history.jsonl", "a") as f:
                f.write(json.dumps(row) + "\n")
        if bad_epochs >= train_cfg.patience:
            log(f"early stop: no better valid {train_cfg.valid_metric} for {train_cfg.patience} epochs")
            break
    train_total = time.perf_counter() - t_start
    if best_state is not None:
        model.load_state_dict(best_state)

    if not ctx.main:
        return TrainResult({}, model, history)
    results: dict[str, Any] = {
        "model": model_name,
        "dataset": {"name": data.dataset.name, "store": str(data.store), "fingerprint": data.fingerprint},
        "valid": best_valid,
        "best_epoch": best_epoch,
        "epochs": epoch,
        "train_seconds": round(train_total, 2),
        "seconds_per_epoch": round(float(np.mean([h["train_seconds"] for h in history])), 3) if history else 0.0,
        "parameters": {"total": n_total, "trainable": n_train},
        "seed": train_cfg.seed,
        "processes": ctx.world,
        "protocol": protocol.describe(),
        "config": {"model": to_dict(model_cfg), "train": to_dict(train_cfg)},
        "transfer_from": str(init_from) if init_from else None,
        "code_version": code_version(),
        "python": platform.python_version(),
        "torch": torch.__version__,
    }
    if test:
        res = evaluate(model, data.test, protocol, device, progress, desc="test")
        results["test"] = res.metrics
        if out is not None:
            np.save(out / "test_ranks.npy", res.ranks)
            np.save(out / "test_targets.npy", res.targets)
        log("test  " + "  ".join(f"{k} {v:.4f}" for k, v in res.metrics.items() if not k.startswith("mrr")))
    if out is not None:
        save_checkpoint(out / "model.pt", model_name=model_name, model=model, model_config=model_cfg,
                        train_config=train_cfg, item_ids=data.dataset.items.ids, item_text=data.dataset.item_text,
                        catalogue=data.catalogue,
                        dataset=results["dataset"], epoch=best_epoch, best=best_valid,
                        extra=_extra_state(model))
        (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    return TrainResult(results, model, history)


def _extra_state(model: SequentialRecommender) -> dict:
    getter = getattr(model, "extra_state_for_checkpoint", None)
    return getter() if callable(getter) else {}


def _transfer_from(model: SequentialRecommender, path: str | Path, model_cfg: Any, log: Log) -> list[str]:
    """Load matching pre-trained weights, then freeze all but the transfer parameters."""
    payload = read_checkpoint(path)
    own = model.state_dict()
    loaded, skipped = {}, []
    for k, v in payload["state_dict"].items():
        if k in own and (not torch.is_tensor(v) or own[k].shape == v.shape):
            loaded[k] = v
        else:
            skipped.append(k)
    model.load_state_dict(loaded, strict=False)
    mode = getattr(model_cfg, "mode", "inductive")
    names = set(model.transfer_parameters(mode))
    for n, p in model.named_parameters():
        p.requires_grad_(n in names)
    log(f"transfer from {path}: loaded {len(loaded)} tensors"
        + (f", skipped {len(skipped)} (shape or name differs: {', '.join(skipped[:4])}"
           f"{'…' if len(skipped) > 4 else ''})" if skipped else "")
        + f"; tuning {', '.join(sorted({n.split('.')[0] for n in names}))}")
    return sorted(names)


@torch.no_grad()
def evaluate_checkpoint(path: str | Path, store: str | Path, split: str = "test",
                        overrides: dict[str, Any] | None = None, progress: bool = False) -> dict[str, Any]:
    """Re-evaluate a saved model on a store's split (the store must share its item vocabulary)."""
    from ..config import from_dict
    from .checkpoint import load_model

    payload = read_checkpoint(path)
    model, model_cfg = load_model(payload)
    train_cfg = from_dict(TrainConfig, {**payload["train_config"], **(overrides or {})}, "train")
    ds = read_store(store, modalities=[])
    if ds.items.ids != payload["item_ids"]:
        from ..errors import MissrecError
        raise MissrecError(f"{store}: its item vocabulary differs from the checkpoint's "
                           f"({ds.n_items} vs {len(payload['item_ids']) - 1} items)")
    examples = build_examples(ds, split, max_len_of(model_cfg))
    res = evaluate(model, examples, protocol_of(train_cfg), train_cfg.device, progress, desc=split)
    return {"model": payload["model"], "split": split, "users": len(examples), **res.metrics,
            "protocol": protocol_of(train_cfg).describe(), "users_per_second": round(res.users_per_second, 1)}
