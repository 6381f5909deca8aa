"""Multi-domain pre-training (paper §3.5): one model over the union of several catalogues.

Items are namespaced per domain (``DOMAIN:external_id``), every domain's training examples
are pooled so that batches mix domains, features pass through the shared modality adapters,
and interest discovery runs over the union of all domains' item tokens before every epoch.
A seeded share of each domain's users is held out, and the epoch with the lowest eq. 7 loss
on their sequences is kept (:mod:`missrec.train.heldout`).
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config import TrainConfig, to_dict
from ..data.compact import CompactExamples, UserSequences, compact_examples, concat_compact
from ..data.store import Dataset, ModalityFeatures, read_schema, read_store
from ..data.users import hold_out_users
from ..errors import MissrecError
from ..model.base import SequentialRecommender
from ..model.registry import ItemFeatures, get_model_spec
from .checkpoint import save_checkpoint
from .distributed import broadcast_flags
from .heldout import HeldOutStopping, heldout_loss
from .meta import Log, code_version, max_len_of, peak_memory_mb
from .trainer import Trainer


@dataclass
class Domain:
    name: str
    store: str
    fingerprint: str
    n_items: int
    offset: int
    train_examples: int
    heldout_users: int = 0
    """Users held out for early stopping (``train.heldout_share``); none of their sequences trains."""
    heldout_examples: int = 0


@dataclass
class PretrainData:
    """The union catalogue and the pooled training examples of several stores, and the
    pooled examples of the users held out from training (None without a held-out share)."""

    domains: list[Domain]
    item_ids: list[str]
    item_text: list[str]
    catalogue: ItemFeatures
    train: CompactExamples
    heldout: CompactExamples | None = None

    @classmethod
    def load(cls, stores: list[str | Path], modalities: list[str], max_len: int,
             max_examples_per_domain: int = 0, seed: int = 0, heldout_share: float = 0.0) -> "PretrainData":
        """Pool ``stores``: per domain, a seeded ``heldout_share`` of the users is held out
        (:func:`~missrec.data.users.hold_out_users`), then at most ``max_examples_per_domain``
        of the other users' examples are drawn (and of the held-out ones, the same share of
        that cap)."""
        if not stores:
            raise MissrecError("pretrain needs at least one --data STORE")
        datasets = [read_store(s, modalities=[m for m in modalities if m in read_schema(s)["modalities"]])
                    for s in stores]
        names = [d.name for d in datasets]
        if len(set(names)) != len(names):
            # Namespaces must differ; fall back to the store directory names.
            names = [Path(s).name for s in stores]
        feats = _union_features(datasets, stores, modalities)
        item_ids, item_text = ["[PAD]"], [""]
        domains, parts, held_parts = [], [], []
        rng = np.random.default_rng(seed)
        offset = 0
        for d, s, name in zip(datasets, stores, names):
            item_ids += [f"{name}:{e}" for e in d.items.ids[1:]]
            item_text += d.item_text[1:]
            ex, held = _domain_examples(d, max_len, max_examples_per_domain, heldout_share, seed, rng)
            parts.append(ex.shifted(offset))
            if held is not None:
                held_parts.append(held.shifted(offset))
            domains.append(Domain(name, str(s), read_schema(s).get("fingerprint", ""), d.n_items, offset, len(ex),
                                  len(np.unique(held.users)) if held is not None else 0,
                                  len(held) if held is not None else 0))
            offset += d.n_items
        if heldout_share > 0 and not held_parts:
            raise MissrecError(f"train.heldout_share={heldout_share}: no domain has two users with training "
                               "sequences to split; use heldout_share=0")
        return cls(domains, item_ids, item_text, ItemFeatures(offset, feats), concat_compact(parts),
                   concat_compact(held_parts) if held_parts else None)


def _union_features(datasets: list[Dataset], stores: list[str | Path],
                    modalities: list[str]) -> dict[str, ModalityFeatures]:
    """Every domain's feature matrix of each modality some domain has, stacked in domain order
    (row 0 padding); a domain without the modality is absent there, never zero "features"."""
    used = [m for m in modalities if any(m in d.features for d in datasets)]
    if not used:
        raise MissrecError(f"none of the stores has features for {modalities}; run `missrec features`")
    dims = {}
    for m in used:
        for d, s in zip(datasets, stores):
            if m in d.features:
                if dims.setdefault(m, d.features[m].dim) != d.features[m].dim:
                    raise MissrecError(
                        f"{s}: {m} features are {d.features[m].dim}-d but another store's are {dims[m]}-d; "
                        "pre-training domains need features from the same encoder")
    mats = {m: [np.zeros((1, dims[m]), np.float32)] for m in used}
    pres = {m: [np.zeros(1, bool)] for m in used}
    for d in datasets:
        for m in used:
            if m in d.features:
                mats[m].append(d.features[m].matrix[1:])
                pres[m].append(d.features[m].present[1:])
            else:
                mats[m].append(np.zeros((d.n_items, dims[m]), np.float32))
                pres[m].append(np.zeros(d.n_items, bool))
    return {m: ModalityFeatures(np.concatenate(mats[m]), np.concatenate(pres[m]), "union") for m in used}


def domain_train_examples(store: str | Path, cap: int, heldout_share: float, seed: int) -> int:
    """How many training sequences :meth:`PretrainData.load` takes from ``store`` (what a
    finished pre-training run records per domain), without loading any features."""
    held = hold_out_users(compact_examples(UserSequences.of(read_store(store, modalities=[])), "train"),
                          heldout_share, seed)[0]
    return min(len(held), cap) if cap else len(held)


def _domain_examples(d: Dataset, max_len: int, cap: int, heldout_share: float, seed: int,
                     rng: np.random.Generator) -> tuple[CompactExamples, CompactExamples | None]:
    """One domain's training examples and held-out examples (see :meth:`PretrainData.load`)."""
    ex, held = hold_out_users(compact_examples(UserSequences.of(d), "train", max_len), heldout_share, seed)
    if cap and len(ex) > cap:
        ex = ex.subset(np.sort(rng.choice(len(ex), cap, replace=False)))
        held_cap = math.ceil(heldout_share * cap)
        if held is not None and len(held) > held_cap:
            held = held.subset(np.sort(rng.choice(len(held), held_cap, replace=False)))
    return ex, held


class PretrainTrainer(Trainer):
    """Pre-trains on the union of several stores (eq. 7) and keeps (checkpoints) one epoch's
    weights (their moving average with ``train_cfg.ema_decay``): with ``train_cfg.heldout_share``
    the epoch of the lowest held-out loss, stopping after ``patience`` epochs without a lower
    one (:mod:`missrec.train.heldout`); without, the last epoch."""

    objective = "pretrain_loss"
    desc = "pretrain"

    def __init__(self, stores: list[str | Path], out_dir: str | Path | None, train_cfg: TrainConfig,
                 model_cfg: Any, *, model_name: str = "missrec", max_examples_per_domain: int = 0,
                 progress: bool = False, log: Log = print, resume: bool = False, overwrite: bool = False):
        super().__init__(model_name, out_dir, train_cfg, model_cfg, progress=progress, log=log, resume=resume,
                         overwrite=overwrite)
        self.stores, self.max_examples_per_domain = stores, max_examples_per_domain
        self.stopping = HeldOutStopping()
        self.improved = True

    def load_data(self) -> None:
        if not get_model_spec(self.model_name).pretrains:
            raise MissrecError(f"model {self.model_name!r} has no pre-training objective")
        if self.cfg.train_fraction < 1:
            raise MissrecError(f"train.train_fraction={self.cfg.train_fraction:g} applies to training runs; "
                               "pre-training samples with --max-per-domain")
        start = time.perf_counter()
        self.data = PretrainData.load(self.stores, list(self.model_cfg.modalities), max_len_of(self.model_cfg),
                                      self.max_examples_per_domain, self.cfg.seed, self.cfg.heldout_share)
        self.examples = self.data.train
        self.load_seconds = time.perf_counter() - start

    def build_model(self) -> SequentialRecommender:
        have, wanted = list(self.data.catalogue.features), list(self.model_cfg.modalities)
        if have != wanted:
            self.log(f"pre-training modalities: {', '.join(have)} "
                     f"(no store has {', '.join(m for m in wanted if m not in have)})")
            self.model_cfg = dataclasses.replace(self.model_cfg, modalities=have)
        return get_model_spec(self.model_name).build(self.model_cfg, self.data.catalogue)

    def describe(self, params: list[torch.nn.Parameter]) -> None:
        self.n_params = sum(p.numel() for p in self.model.parameters())
        self.log(f"pre-training {self.model_name} ({self.n_params:,} parameters) on "
                 + ", ".join(f"{d.name} ({d.n_items:,} items, {d.train_examples:,} sequences"
                             + (f"; {d.heldout_users:,} users held out" if d.heldout_users else "") + ")"
                             for d in self.data.domains))

    def throughput(self, seconds: float) -> dict[str, float]:
        return {"sequences_per_second": round(len(self.examples) / seconds, 1)}

    def validate(self, row: dict[str, Any]) -> None:
        """The kept model's held-out loss (rank 0 computes, every process decides alike)."""
        self.kept = self.average.current(self.epoch) if self.average is not None else self.model
        line = (f"pretrain epoch {self.epoch:3d}  " + "  ".join(f"{k} {v:.4f}" for k, v in self.means.items())
                + f"  ({self.epoch_seconds:.1f}s, {row['sequences_per_second']:.0f} seq/s)")
        if self.data.heldout is None:
            self.log(line)
            return
        loss = heldout_loss(self.kept, self.data.heldout, self.cfg, self.device) if self.ctx.main else math.nan
        if self.ctx.main and not math.isfinite(loss):
            raise MissrecError(f"{self.name}: non-finite held-out loss ({loss}) at epoch {self.epoch}")
        (self.improved,) = broadcast_flags(self.ctx, loss < self.stopping.best)
        self.stopping.record(self.epoch, loss, self.improved)
        row["heldout_loss"] = loss
        self.log(f"{line}  held-out loss {loss:.4f}{' *' if self.improved else ''}")
        if self.stopping.bad_epochs >= self.cfg.patience:
            self.log(f"early stop: no lower held-out loss for {self.cfg.patience} epochs")
            self.stopped = True

    def record(self, row: dict[str, Any]) -> None:
        """The kept epoch's checkpoint (before the training state: a run killed in between
        redoes the epoch and writes the same file again), then the row and the state."""
        if self.out is not None and self.improved:
            self.save_checkpoint(self.kept)
        super().record(row)

    def extra_state(self) -> dict[str, Any]:
        return {"heldout": dataclasses.asdict(self.stopping)}

    def restore_extra(self, state: dict[str, Any]) -> None:
        self.stopping = HeldOutStopping(**state["heldout"])

    def save_checkpoint(self, model: SequentialRecommender) -> None:
        data = self.data
        domains = [dataclasses.asdict(d) for d in data.domains]
        save_checkpoint(self.out / "model.pt", model_name=self.model_name, model=model,
                        model_config=self.model_cfg, train_config=self.cfg, item_ids=data.item_ids,
                        item_text=data.item_text, catalogue=data.catalogue,
                        dataset={"name": "+".join(d.name for d in data.domains), "domains": domains},
                        epoch=self.epoch, best=self.best(), extra={"kind": "pretrain"})

    def best(self) -> dict[str, float]:
        """The kept epoch's held-out loss (empty without held-out users)."""
        return {"heldout_loss": self.stopping.best} if self.data.heldout is not None else {}

    def finish(self) -> dict[str, Any]:
        if not self.ctx.main:
            return {}
        if self.out is not None and not (self.out / "model.pt").exists():
            # the kept epoch's weights live only there (written when it was kept), not in the
            # training state: a run folder copied or edited without it cannot finish
            raise MissrecError(f"{self.out}: the kept epoch's checkpoint model.pt is missing, so the run cannot "
                               "finish; pre-train it again with --overwrite")
        history = self.history
        results = {
            "model": self.model_name,
            "kind": "pretrain",
            "domains": [dataclasses.asdict(d) for d in self.data.domains],
            "epochs": self.epoch,
            "best_epoch": self.stopping.epoch if self.data.heldout is not None else self.epoch,
            "heldout": self.heldout_summary(),
            "train_seconds": round(self.train_seconds, 2),
            "sequences_per_second": (float(np.median([h["sequences_per_second"] for h in history]))
                                     if history else 0.0),
            "train_sequences": len(self.examples),
            "load_seconds": round(self.load_seconds, 2),
            "cluster_seconds_per_epoch": (float(np.median([h["epoch_cluster_seconds"] for h in history]))
                                          if history and "epoch_cluster_seconds" in history[0] else 0.0),
            "threads": torch.get_num_threads(),
            "parameters": self.n_params,
            "peak_memory_mb": round(peak_memory_mb(), 1),
            "seed": self.cfg.seed,
            "processes": self.ctx.world,
            "config": {"model": to_dict(self.model_cfg), "train": to_dict(self.cfg)},
            "code_version": code_version(),
        }
        self.write_results(results)
        return results

    def heldout_summary(self) -> dict[str, Any] | None:
        """What results.json says of the held-out users: their share and counts, every epoch's
        loss, the lowest and its epoch (None without held-out users)."""
        if self.data.heldout is None:
            return None
        return {"share": self.cfg.heldout_share, "users": sum(d.heldout_users for d in self.data.domains),
                "sequences": len(self.data.heldout), "loss_by_epoch": list(self.stopping.losses),
                "best_loss": self.stopping.best, "best_epoch": self.stopping.epoch}


def pretrain(stores: list[str | Path], out_dir: str | Path | None, train_cfg: TrainConfig, model_cfg: Any,
             *, model_name: str = "missrec", max_examples_per_domain: int = 0, progress: bool = False,
             log: Log = print, resume: bool = False, overwrite: bool = False) -> dict[str, Any]:
    """Pre-train on the union of ``stores`` for up to ``train_cfg.epochs`` epochs (eq. 7).

    With ``train_cfg.heldout_share`` > 0 (``missrec pretrain``'s default is 0.05) that share
    of each domain's users is held out, their eq. 7 loss is computed after every epoch, and
    the epoch with the lowest is kept, stopping after ``patience`` epochs without a lower one;
    with 0 the last epoch is kept. The checkpoint is written whenever the kept epoch changes,
    so an interrupted run keeps its progress, and ``resume`` continues it exactly (``resume``
    and ``overwrite`` as for :func:`missrec.train.loop.train`).
    """
    return PretrainTrainer(stores, out_dir, train_cfg, model_cfg, model_name=model_name,
                           max_examples_per_domain=max_examples_per_domain, progress=progress, log=log,
                           resume=resume, overwrite=overwrite).run()
