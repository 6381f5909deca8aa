"""Multi-domain pre-training (paper §3.5): one model over the union of several catalogues.

Items are namespaced per domain (``DOMAIN:external_id``), every domain's training examples
are pooled so that batches mix domains, features pass through the shared modality adapters,
and interest discovery runs over the union of all domains' item tokens before every epoch.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config import TrainConfig, to_dict
from ..data.compact import CompactExamples, UserSequences, compact_examples, concat_compact
from ..data.store import Dataset, ModalityFeatures, read_schema, read_store
from ..errors import MissrecError
from ..model.base import SequentialRecommender
from ..model.registry import Catalogue, get_model_spec
from .checkpoint import save_checkpoint
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


@dataclass
class PretrainData:
    """The union catalogue and the pooled training examples of several stores."""

    domains: list[Domain]
    item_ids: list[str]
    item_text: list[str]
    catalogue: Catalogue
    train: CompactExamples

    @classmethod
    def load(cls, stores: list[str | Path], modalities: list[str], max_len: int,
             max_examples_per_domain: int = 0, seed: int = 0) -> "PretrainData":
        if not stores:
            raise MissrecError("pretrain needs at least one --data STORE")
        datasets: list[Dataset] = []
        for s in stores:
            have = list(read_schema(s)["modalities"])
            datasets.append(read_store(s, modalities=[m for m in modalities if m in have]))
        names = [d.name for d in datasets]
        if len(set(names)) != len(names):
            # Namespaces must differ; fall back to the store directory names.
            names = [Path(s).name for s in stores]
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
        item_ids, item_text = ["[PAD]"], [""]
        mats = {m: [np.zeros((1, dims[m]), np.float32)] for m in used}
        pres = {m: [np.zeros(1, bool)] for m in used}
        domains, parts = [], []
        rng = np.random.default_rng(seed)
        offset = 0
        for d, s, name in zip(datasets, stores, names):
            item_ids += [f"{name}:{e}" for e in d.items.ids[1:]]
            item_text += d.item_text[1:]
            for m in used:
                if m in d.features:
                    mats[m].append(d.features[m].matrix[1:])
                    pres[m].append(d.features[m].present[1:])
                else:
                    mats[m].append(np.zeros((d.n_items, dims[m]), np.float32))
                    pres[m].append(np.zeros(d.n_items, bool))
            ex = compact_examples(UserSequences.of(d), "train", max_len)
            if max_examples_per_domain and len(ex) > max_examples_per_domain:
                ex = ex.subset(np.sort(rng.choice(len(ex), max_examples_per_domain, replace=False)))
            parts.append(ex.shifted(offset))
            domains.append(Domain(name, str(s), read_schema(s).get("fingerprint", ""), d.n_items, offset, len(ex)))
            offset += d.n_items
        feats = {m: ModalityFeatures(np.concatenate(mats[m]), np.concatenate(pres[m]), "union") for m in used}
        return cls(domains, item_ids, item_text, Catalogue(offset, feats), concat_compact(parts))


class PretrainTrainer(Trainer):
    """Pre-trains on the union of several stores (eq. 7). There is no validation split across
    domains, so every epoch's weights (their moving average with ``train_cfg.ema_decay``)
    are checkpointed and the last are kept."""

    objective = "pretrain_loss"
    desc = "pretrain"

    def __init__(self, stores: list[str | Path], out_dir: str | Path | None, train_cfg: TrainConfig,
                 model_cfg: Any, *, model_name: str = "missrec", max_examples_per_domain: int = 0,
                 progress: bool = False, log: Log = print, resume: bool = False, overwrite: bool = False):
        super().__init__(model_name, out_dir, train_cfg, model_cfg, progress=progress, log=log, resume=resume,
                         overwrite=overwrite)
        self.stores, self.max_examples_per_domain = stores, max_examples_per_domain

    def load_data(self) -> None:
        if not hasattr(self.model_cfg, "modalities"):  # an id-only model has nothing to transfer
            raise MissrecError(f"model {self.model_name!r} has no pre-training objective")
        start = time.perf_counter()
        self.data = PretrainData.load(self.stores, list(self.model_cfg.modalities), max_len_of(self.model_cfg),
                                      self.max_examples_per_domain, self.cfg.seed)
        self.examples = self.data.train
        self.load_seconds = time.perf_counter() - start

    def build_model(self) -> SequentialRecommender:
        have, wanted = list(self.data.catalogue.features), list(self.model_cfg.modalities)
        if have != wanted:
            self.log(f"pre-training modalities: {', '.join(have)} "
                     f"(no store has {', '.join(m for m in wanted if m not in have)})")
            self.model_cfg = dataclasses.replace(self.model_cfg, modalities=have)
        model = get_model_spec(self.model_name).build(self.model_cfg, self.data.catalogue)
        if not hasattr(model, "pretrain_loss"):
            raise MissrecError(f"model {self.model_name!r} has no pre-training objective")
        return model

    def describe(self, params: list[torch.nn.Parameter]) -> None:
        self.n_params = sum(p.numel() for p in self.model.parameters())
        self.log(f"pre-training {self.model_name} ({self.n_params:,} parameters) on "
                 + ", ".join(f"{d.name} ({d.n_items:,} items, {d.train_examples:,} sequences)"
                             for d in self.data.domains))

    def throughput(self, seconds: float) -> dict[str, float]:
        return {"sequences_per_second": round(len(self.examples) / seconds, 1)}

    def validate(self, row: dict[str, Any]) -> None:
        self.log(f"pretrain epoch {self.epoch:3d}  " + "  ".join(f"{k} {v:.4f}" for k, v in self.means.items())
                 + f"  ({self.epoch_seconds:.1f}s, {row['sequences_per_second']:.0f} seq/s)")

    def record(self, row: dict[str, Any]) -> None:
        """The row, then the epoch's checkpoint, so an interrupted run keeps its progress."""
        super().record(row)
        if self.out is not None:
            kept = self.average.current(self.epoch) if self.average is not None else self.model
            self.save_checkpoint(kept)

    def save_checkpoint(self, model: SequentialRecommender) -> None:
        data = self.data
        domains = [dataclasses.asdict(d) for d in data.domains]
        save_checkpoint(self.out / "model.pt", model_name=self.model_name, model=model,
                        model_config=self.model_cfg, train_config=self.cfg, item_ids=data.item_ids,
                        item_text=data.item_text, catalogue=data.catalogue,
                        dataset={"name": "+".join(d.name for d in data.domains), "domains": domains},
                        epoch=self.epoch, best={}, extra={"kind": "pretrain"})

    def finish(self) -> dict[str, Any]:
        if not self.ctx.main:
            return {}
        history = self.history
        results = {
            "model": self.model_name,
            "kind": "pretrain",
            "domains": [dataclasses.asdict(d) for d in self.data.domains],
            "epochs": self.cfg.epochs,
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


def pretrain(stores: list[str | Path], out_dir: str | Path | None, train_cfg: TrainConfig, model_cfg: Any,
             *, model_name: str = "missrec", max_examples_per_domain: int = 0, progress: bool = False,
             log: Log = print, resume: bool = False, overwrite: bool = False) -> dict[str, Any]:
    """Pre-train on the union of ``stores`` for ``train_cfg.epochs`` epochs (eq. 7).

    There is no validation split across domains, so the last epoch's weights are kept (their
    moving average with ``train_cfg.ema_decay``); the checkpoint is rewritten after every
    epoch, so an interrupted run keeps its progress, and ``resume`` continues it exactly
    (``resume`` and ``overwrite`` as for :func:`missrec.train.loop.train`).
    """
    return PretrainTrainer(stores, out_dir, train_cfg, model_cfg, model_name=model_name,
                           max_examples_per_domain=max_examples_per_domain, progress=progress, log=log,
                           resume=resume, overwrite=overwrite).run()
