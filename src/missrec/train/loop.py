"""Training on one store: early stopping on validation, test metrics of the best epoch.

:func:`train` serves every registered model; a run directory receives ``config.yaml``
(resolved), ``history.jsonl`` (one line per epoch), ``model.pt`` (the best checkpoint),
``results.json`` and the test ranks (``test_ranks.npy``, ``test_targets.npy``); while it
trains, also ``training_state.pt`` (see :mod:`missrec.train.resume`).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ..config import TrainConfig, from_dict, to_dict
from ..data.batching import build_examples
from ..data.store import read_store
from ..data.users import keep_user_fraction
from ..eval.evaluator import evaluate
from ..eval.modalities import Drop
from ..model.base import SequentialRecommender
from ..model.registry import get_model_spec, required_modalities
from .checkpoint import catalogue_of, load_model, read_checkpoint, save_checkpoint
from .distributed import broadcast_flags
from .evaluation import evaluate_loaded
from .meta import Log, code_version, max_len_of, peak_memory_mb, protocol_of, validation_protocol_of
from .pretrained import Pretrained, is_bundle_dir, model_digest, read_pretrained
from .rundata import RunData
from .trainer import Trainer
from .transfer import transfer_from
from .zeroshot import evaluate_zero_shot


ValidateHook = Callable[[int, dict[str, float]], None]
"""Called as ``hook(epoch, metrics)`` after each validation, with that epoch's validation
metrics (``metrics[train_cfg.valid_metric]`` is the score early stopping reads). Whatever it
raises ends the run there, before the epoch is recorded: no ``results.json`` is written, and
the run directory keeps the training state of the epoch before (a hyper-parameter search
stops a poor trial this way)."""


@dataclass
class TrainResult:
    results: dict[str, Any]
    model: SequentialRecommender
    history: list[dict[str, float]] = field(default_factory=list)


@dataclass
class EarlyStopping:
    """The best validation score so far, where it was reached, and the epochs since."""

    score: float = -math.inf
    epoch: int = 0
    state: dict[str, Any] | None = None
    """The judged model's state dict at the best epoch."""
    valid: dict[str, float] = field(default_factory=dict)
    bad_epochs: int = 0


class StoreTrainer(Trainer):
    """Trains on one store's training split, validates every ``eval_every`` epochs, stops
    after ``patience`` epochs without a better ``valid_metric``, and tests the best epoch
    (unless ``test`` is False: then the test split is never scored).

    ``on_validate`` (a :data:`ValidateHook`) sees every validation's metrics; it runs on the
    process that evaluates (rank 0 under ``torchrun``)."""

    def __init__(self, model_name: str, store: str | Path, out_dir: str | Path | None, train_cfg: TrainConfig,
                 model_cfg: Any, *, init_from: str | Path | None = None, data: RunData | None = None,
                 test: bool = True, progress: bool = False, log: Log = print, resume: bool = False,
                 overwrite: bool = False, on_validate: ValidateHook | None = None):
        super().__init__(model_name, out_dir, train_cfg, model_cfg, progress=progress, log=log, resume=resume,
                         overwrite=overwrite)
        self.store, self.init_from, self.data, self.test = store, init_from, data, test
        self.on_validate = on_validate
        self.stopping = EarlyStopping()
        self.protocol, self.valid_protocol = protocol_of(train_cfg), validation_protocol_of(train_cfg)

    def load_data(self) -> None:
        if self.data is None:
            self.data = RunData.load(self.store, required_modalities(self.model_cfg), max_len_of(self.model_cfg))
        cfg = self.cfg
        self.examples = keep_user_fraction(self.data.train, cfg.train_fraction, cfg.seed)
        if cfg.train_fraction < 1:
            self.log(f"train_fraction {cfg.train_fraction:g}: training on {self.train_users:,} of "
                     f"{len(np.unique(self.data.train.users)):,} training users ({len(self.examples):,} of "
                     f"{len(self.data.train):,} examples), drawn from seed {cfg.seed}")

    @property
    def train_users(self) -> int:
        return int(len(np.unique(self.examples.users)))

    def build_model(self) -> SequentialRecommender:
        model = get_model_spec(self.model_name).build(self.model_cfg, self.data.catalogue)
        if self.init_from is not None:
            transfer_from(model, self.init_from, self.model_cfg, self.log, self.cfg.transfer_scope,
                          self.cfg.transfer_adapters)
        return model

    def describe(self, params: list[torch.nn.Parameter]) -> None:
        self.n_total = sum(p.numel() for p in self.model.parameters())
        self.n_train = sum(p.numel() for p in params)
        modalities = required_modalities(self.model_cfg)
        self.log(f"{self.model_name}: {self.n_train:,} trainable of {self.n_total:,} parameters"
                 + (f" ({100 * self.n_train / self.n_total:.2f}%)" if self.init_from is not None else "")
                 + (f"; modalities {', '.join(modalities)}" if modalities else ""))

    def validate(self, row: dict[str, Any]) -> None:
        cfg, best = self.cfg, self.stopping
        if self.epoch % cfg.eval_every == 0 or self.epoch == cfg.epochs:
            res = None
            if self.ctx.main:  # rank 0 evaluates and decides for every process
                if self.average is not None:
                    self.average.current(self.epoch)  # re-clusters the averaged weights' own interests
                res = evaluate(self.judged, self.data.valid, self.valid_protocol, self.device, self.progress,
                               desc="valid", name=self.name)
                row.update({f"valid_{k}": v for k, v in res.metrics.items()})
                row["eval_seconds"] = round(res.seconds, 3)
                row["eval_users_per_second"] = round(res.users_per_second, 1)
            score = res.metrics[cfg.valid_metric] if res is not None else -math.inf
            (improved,) = broadcast_flags(self.ctx, score > best.score)
            if improved:
                best.score, best.epoch, best.valid = score, self.epoch, res.metrics if res is not None else {}
                best.state = copy.deepcopy(self.judged.state_dict())
                best.bad_epochs = 0
            else:
                best.bad_epochs += cfg.eval_every
            if res is not None:
                comps = " ".join(f"{k} {row[k]:.4f}" for k in self.means)
                self.log(f"epoch {self.epoch:3d}  {comps}  valid {cfg.valid_metric} {score:.4f}"
                         f"{' *' if improved else '  '}  ({self.epoch_seconds:.1f}s train, {res.seconds:.1f}s eval)")
                if self.on_validate is not None:
                    self.on_validate(self.epoch, dict(res.metrics))
        if best.bad_epochs >= cfg.patience:
            self.log(f"early stop: no better valid {cfg.valid_metric} for {cfg.patience} epochs")
            self.stopped = True

    def extra_state(self) -> dict[str, Any]:
        return {"early_stopping": dataclasses.asdict(self.stopping)}

    def restore_extra(self, state: dict[str, Any]) -> None:
        self.stopping = EarlyStopping(**state["early_stopping"])

    def finish(self) -> TrainResult:
        """Restore the best epoch's weights, test them, write the results and the checkpoint."""
        if self.stopping.state is not None:
            self.model.load_state_dict(self.stopping.state)
        if not self.ctx.main:
            return TrainResult({}, self.model, self.history)
        results = self.results()
        if self.test:
            res = evaluate(self.model, self.data.test, self.protocol, self.device, self.progress, desc="test",
                           name=self.name)
            results["test"] = res.metrics
            if self.out is not None:
                np.save(self.out / "test_ranks.npy", res.ranks)
                np.save(self.out / "test_targets.npy", res.targets)
            self.log("test  " + "  ".join(f"{k} {v:.4f}" for k, v in res.metrics.items() if not k.startswith("mrr")))
        if self.out is not None:
            data = self.data
            save_checkpoint(self.out / "model.pt", model_name=self.model_name, model=self.model,
                            model_config=self.model_cfg, train_config=self.cfg, item_ids=data.dataset.items.ids,
                            item_text=data.dataset.item_text, catalogue=data.catalogue,
                            dataset=results["dataset"], epoch=self.stopping.epoch, best=self.stopping.valid)
            self.write_results(results)
        return TrainResult(results, self.model, self.history)

    def results(self) -> dict[str, Any]:
        data, history = self.data, self.history
        return {
            "model": self.model_name,
            "dataset": {"name": data.dataset.name, "store": str(data.store), "fingerprint": data.fingerprint},
            "valid": self.stopping.valid,
            "best_epoch": self.stopping.epoch,
            "epochs": self.epoch,
            "train_seconds": round(self.train_seconds, 2),
            "seconds_per_epoch": round(float(np.mean([h["train_seconds"] for h in history])), 3) if history else 0.0,
            "parameters": {"total": self.n_total, "trainable": self.n_train},
            "train_users": self.train_users,
            "train_examples": len(self.examples),
            "seed": self.cfg.seed,
            "processes": self.ctx.world,
            "protocol": self.protocol.describe(),
            "config": {"model": to_dict(self.model_cfg), "train": to_dict(self.cfg)},
            "transfer_from": str(self.init_from) if self.init_from else None,
            # which pre-trained model it was: the file at that path may be replaced later
            "transfer_from_sha256": model_digest(self.init_from) if self.init_from else None,
            "code_version": code_version(),
            "python": platform.python_version(),
            "torch": torch.__version__,
        }


def train(model_name: str, store: str | Path, out_dir: str | Path | None, train_cfg: TrainConfig,
          model_cfg: Any, *, init_from: str | Path | None = None, data: RunData | None = None,
          progress: bool = False, log: Log = print, test: bool = True, resume: bool = False,
          overwrite: bool = False, on_validate: ValidateHook | None = None) -> TrainResult:
    """Train ``model_name`` on ``store``; early-stop on validation; evaluate the best on test.

    ``init_from`` transfers a pre-trained model (a checkpoint, a run directory or a bundle):
    weights whose shapes match are loaded, and only the model's :meth:`transfer_parameters`
    train (paper §3.6; :func:`missrec.train.transfer.transfer_from`). ``train_cfg.train_fraction``
    keeps a seeded share of the training users (:mod:`missrec.data.users`).

    Under ``torchrun`` the processes train one model data-parallel
    (:mod:`missrec.train.distributed`); rank 0 evaluates, decides and writes.

    ``resume`` continues the interrupted run in ``out_dir`` from its last complete epoch (or
    starts one if there is none); ``overwrite`` replaces a run there. Without either, an
    ``out_dir`` holding a run is an error.

    ``test=False`` never scores the test split (no test metrics or ranks). ``on_validate``
    is called after every validation (:data:`ValidateHook`); an exception it raises ends
    training and propagates, with no results written.
    """
    return StoreTrainer(model_name, store, out_dir, train_cfg, model_cfg, init_from=init_from, data=data,
                        test=test, progress=progress, log=log, resume=resume, overwrite=overwrite,
                        on_validate=on_validate).run()


@torch.no_grad()
def evaluate_checkpoint(path: str | Path, store: str | Path, split: str = "test",
                        overrides: dict[str, Any] | None = None, progress: bool = False,
                        drops: list[Drop] = (), twins: list[str] = ()) -> dict[str, Any]:
    """Re-evaluate a saved model (a run directory, its model.pt, or a bundle) on a store's split.

    On the store it was trained on (the same item vocabulary) the checkpoint scores as
    trained. A bundle, or a store with another vocabulary, is evaluated zero-shot: the model
    is rebuilt on the store's catalogue (:func:`missrec.train.zeroshot.evaluate_zero_shot`).
    ``drops`` remove modalities from chosen items before ranking; ``twins`` (modalities)
    add, for each, the ranks of every target's twin without that modality
    (:mod:`missrec.eval.modalities`)."""
    if is_bundle_dir(path):
        return evaluate_zero_shot(read_pretrained(path), store, split, overrides, progress, drops, twins)
    payload = read_checkpoint(path)
    ds = read_store(store, modalities=[])
    if ds.items.ids != payload["item_ids"]:
        return evaluate_zero_shot(Pretrained.of_checkpoint(path, payload), store, split, overrides, progress, drops,
                                  twins)
    model, model_cfg = load_model(payload)
    train_cfg = from_dict(TrainConfig, {**payload["train_config"], **(overrides or {})}, "train")
    examples = build_examples(ds, split, max_len_of(model_cfg))
    return evaluate_loaded(model, payload["model"], examples, catalogue_of(payload).features, train_cfg, split,
                           str(path), progress, drops, twins)


__all__ = ["EarlyStopping", "Log", "RunData", "StoreTrainer", "TrainResult", "ValidateHook", "code_version",
           "evaluate_checkpoint", "max_len_of", "peak_memory_mb", "protocol_of", "train", "transfer_from"]
