"""The training machinery every run shares: set-up, epochs, the run directory, the finish.

:meth:`Trainer.run` calls :meth:`~Trainer.setup`, then for every epoch
:meth:`~Trainer.run_epoch` -> :meth:`~Trainer.validate` -> :meth:`~Trainer.record`, until
the epochs run out or :attr:`~Trainer.stopped` is set, then :meth:`~Trainer.finish`.
Subclasses supply the data and the model and say what validating and finishing mean:
:class:`missrec.train.loop.StoreTrainer` (one store, early stopping, test metrics) and
:class:`missrec.train.pretrain.PretrainTrainer` (several stores, paper §3.5).

After every epoch the run directory receives the training state
(:mod:`missrec.train.resume`); ``resume`` continues a killed run from its last complete
epoch, exactly as if it had not stopped. Under ``torchrun`` every process runs the same
trainer (:mod:`missrec.train.distributed`) and resumes from the same state; only rank 0
logs and writes the run directory.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from ..config import TrainConfig, save_yaml
from ..data.batching import Examples, iterate_batches
from ..errors import MissrecError
from ..locks import FolderLock
from ..model.base import SequentialRecommender
from ..seed import seed_everything
from .averaging import weight_average
from .distributed import broadcast_flags, epoch_start, init_from_env, leave, loss_function, start_data_parallel
from .gather import RowGather
from .meta import Log, quiet, usable_device
from .resume import (STATE_FILE, check_model_config, clear_outputs, read_state, restore_rng_states, rng_states,
                     save_state, state_to_resume)


class Trainer:
    """Trains one model with Adam for up to ``train_cfg.epochs`` epochs.

    Subclasses implement :meth:`load_data` (setting :attr:`examples`, the training
    examples), :meth:`build_model` and :meth:`finish`, and may extend :meth:`validate`,
    and :meth:`extra_state` / :meth:`restore_extra` with what else resuming needs.

    ``out_dir`` holding a finished run is an error unless ``overwrite``; holding an
    interrupted one, an error unless ``resume`` (continue it) or ``overwrite``.
    """

    objective = "training_loss"
    """The model's loss method that an epoch minimises."""
    desc = "epoch"
    """The progress bar's label."""

    examples: Examples
    model: SequentialRecommender

    def __init__(self, model_name: str, out_dir: str | Path | None, train_cfg: TrainConfig, model_cfg: Any,
                 *, progress: bool = False, log: Log = print, resume: bool = False, overwrite: bool = False):
        self.model_name = model_name
        self.cfg = train_cfg
        self.model_cfg = model_cfg
        self.run_dir = Path(out_dir) if out_dir is not None else None
        self.out: Path | None = None
        """Where this process writes: the run directory on rank 0, nowhere on the others."""
        self.progress, self.log = progress, log
        self.resume, self.overwrite = resume, overwrite
        self.history: list[dict[str, Any]] = []
        self.epoch = 0
        self.stopped = False
        self.train_seconds = 0.0
        """Seconds spent in the epoch loop, over every session of a resumed run."""
        self.lock: FolderLock | None = None
        """Held on the run directory (by rank 0) from setup until the run ends."""

    def run(self) -> Any:
        try:
            self.setup()
            self.started = time.perf_counter() - self.train_seconds
            while not self.stopped and self.epoch < self.cfg.epochs:
                self.epoch += 1
                row = self.run_epoch()
                self.validate(row)
                self.record(row)
            self.train_seconds = time.perf_counter() - self.started
            result = self.finish()
            if self.out is not None:  # the results are written: the run needs no resuming
                (self.out / STATE_FILE).unlink(missing_ok=True)
        finally:
            if self.lock is not None:
                self.lock.release()
        self.loss_fn = None  # the DDP wrapper: it must go before the process group does
        leave(self.ctx)
        return result

    # ------------------------------------------------------------------ steps

    def setup(self) -> None:
        """Seed, join the process group, load the data, build the model and its optimiser."""
        cfg = self.cfg
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        seed_everything(cfg.seed)
        self.rng = np.random.default_rng(cfg.seed)  # draws the data order
        self.ctx, self.device = init_from_env(usable_device(cfg.device))
        if self.ctx.main and self.run_dir is not None:  # before the run directory is read
            self.lock = FolderLock(self.run_dir, "missrec train").acquire()
        resume_from = state_to_resume(self.run_dir, self.resume, self.overwrite)
        # a sync point: every process has looked at the run directory before rank 0 writes to it
        broadcast_flags(self.ctx, resume_from is not None)
        state = read_state(resume_from, self.model_name, cfg, self.ctx.world) if resume_from else None
        if self.ctx.main:
            self.out = self.run_dir
        else:
            self.log, self.progress = quiet, False
        self.load_data()
        self.model = self.build_model()
        self.model.to(self.device)
        if cfg.freeze_adapters:
            frozen = set(self.model.adapter_weights())
            for n, p in self.model.named_parameters():
                if n in frozen:
                    p.requires_grad_(False)
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.describe(params)
        self.optim = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.average = weight_average(self.model, cfg.ema_decay)
        # only pre-training contrasts within the batch; fine-tuning scores the whole catalogue
        gather = (RowGather(self.ctx) if cfg.gather_negatives and self.ctx.enabled and self.objective == "pretrain_loss"
                  else None)
        self.loss_fn = loss_function(self.model, self.objective, self.ctx, self.device, gather)
        start_data_parallel(self.ctx, cfg.seed, cfg.batch_size, self.log)
        if state is not None:
            self.restore(resume_from, state)
        elif self.resume and self.run_dir is not None:
            self.log(f"{self.run_dir}: no complete epoch to resume from; starting from the first")
        self.open_run_dir(resumed=state is not None)

    def run_epoch(self) -> dict[str, Any]:
        """Train one epoch: the model's per-epoch hook (e.g. interest clustering), then one
        optimiser step per batch, each process taking its share of every batch under
        data-parallel training, and the weight average updated after every step. Returns the
        epoch's history row (timing, mean loss components, the hook's figures).

        A non-finite loss ends the run with an error before its step, so the training state
        of the last complete epoch stays in the run directory."""
        start = time.perf_counter()
        model, cfg, ctx = self.model, self.cfg, self.ctx
        model.train()
        stats = {f"epoch_{k}": v for k, v in epoch_start(model, self.epoch, ctx).items()}
        sums: dict[str, float] = {}
        n_batches = math.ceil(len(self.examples) / cfg.batch_size)
        batches = iterate_batches(self.examples, cfg.batch_size, shuffle=True, generator=self.rng,
                                  bucket=cfg.bucket_by_length, shard=ctx.shard())
        for step, batch in enumerate(tqdm(batches, total=n_batches, desc=f"{self.desc} {self.epoch}",
                                          disable=not (self.progress and ctx.main), leave=False), start=1):
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16"):
                loss, parts = self.loss_fn(batch.to(self.device))
            if not bool(torch.isfinite(loss)):
                kept = (f"{self.run_dir / STATE_FILE} keeps epoch {self.epoch - 1}"
                        if self.run_dir is not None and self.epoch > 1 else "no epoch was complete")
                raise MissrecError(f"{self.name}: non-finite training loss ({float(loss.detach())}) at epoch "
                                   f"{self.epoch}, step {step}; {kept}")
            self.optim.zero_grad(set_to_none=True)
            loss.backward()
            self.optim.step()
            if self.average is not None:
                self.average.update()
            for k, v in parts.items():
                sums[k] = sums.get(k, 0.0) + v
        self.means = {k: v / max(n_batches, 1) for k, v in sums.items()}
        self.epoch_seconds = time.perf_counter() - start
        return {"epoch": self.epoch, "train_seconds": round(self.epoch_seconds, 3),
                **self.throughput(self.epoch_seconds), **self.means, **stats}

    def validate(self, row: dict[str, Any]) -> None:
        """Judge the epoch: add to its ``row``, and set :attr:`stopped` to end training."""

    def record(self, row: dict[str, Any]) -> None:
        """Keep the epoch's row in the history and in ``history.jsonl``, then the training state."""
        self.history.append(row)
        if self.out is not None:
            with open(self.out / "history.jsonl", "a") as f:
                f.write(json.dumps(row) + "\n")
        self.save_state()

    def finish(self) -> Any:
        """What the run leaves behind once training ends (results, checkpoint)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ hooks and helpers

    def load_data(self) -> None:
        raise NotImplementedError

    def build_model(self) -> SequentialRecommender:
        raise NotImplementedError

    def describe(self, params: list[torch.nn.Parameter]) -> None:
        """Log what is about to train."""

    def throughput(self, seconds: float) -> dict[str, float]:
        """Speed figures an epoch's history row carries after its ``train_seconds``."""
        return {}

    @property
    def name(self) -> str:
        """What errors about this run name: its directory, or the model without one."""
        return str(self.run_dir) if self.run_dir is not None else self.model_name

    @property
    def judged(self) -> SequentialRecommender:
        """What is validated, kept as the best and tested: the raw weights or their average."""
        return self.average.model if self.average is not None else self.model

    def open_run_dir(self, resumed: bool) -> None:
        """Start the run directory: the resolved configuration and the history so far (empty
        unless resumed; rows of an epoch the kill cut short are dropped)."""
        if self.out is None:
            return
        self.out.mkdir(parents=True, exist_ok=True)
        if not resumed:
            clear_outputs(self.out)
        save_yaml(self.out / "config.yaml", {"model": self.model_cfg, "train": self.cfg})
        write_atomically(self.out / "history.jsonl", "".join(json.dumps(row) + "\n" for row in self.history))

    def write_results(self, results: dict[str, Any]) -> None:
        """``results.json``, atomically: a run is finished once it exists, so never half of it."""
        if self.out is not None:
            write_atomically(self.out / "results.json", json.dumps(results, indent=2) + "\n")

    # ------------------------------------------------------------------ resuming

    def save_state(self) -> None:
        """Write the training state after an epoch (every process takes part: RNG states)."""
        rngs = rng_states(self.ctx, self.rng, self.device)
        if self.out is None:
            return
        average = ({"weights": self.average.model.state_dict(), "steps": self.average.steps}
                   if self.average is not None else None)
        save_state(self.out / STATE_FILE, self.model_name, self.cfg, self.model_cfg,
                   epoch=self.epoch, stopped=self.stopped, history=self.history,
                   train_seconds=time.perf_counter() - self.started, weights=self.model.state_dict(),
                   optimizer=self.optim.state_dict(), average=average, rng=rngs, **self.extra_state())

    def restore(self, path: Path, state: dict[str, Any]) -> None:
        """Continue from ``state`` (read from ``path``): weights, optimiser, average, RNGs, history."""
        check_model_config(path, state, self.model_cfg)
        self.model.load_state_dict(state["weights"])
        self.optim.load_state_dict(state["optimizer"])
        if self.average is not None:
            self.average.model.load_state_dict(state["average"]["weights"])
            self.average.steps = state["average"]["steps"]
        self.epoch, self.stopped, self.history = state["epoch"], state["stopped"], state["history"]
        self.train_seconds = state["train_seconds"]
        self.restore_extra(state)
        restore_rng_states(state["rng"], self.ctx, self.rng, self.device)
        self.log(f"{self.run_dir}: resuming after epoch {self.epoch}")

    def extra_state(self) -> dict[str, Any]:
        """What else the training state holds (keys other than the base's)."""
        return {}

    def restore_extra(self, state: dict[str, Any]) -> None:
        """Take back what :meth:`extra_state` saved."""


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` by ``text`` in one step (a kill leaves the old file or the new one)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
