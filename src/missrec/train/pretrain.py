"""Multi-domain pre-training (paper §3.5): one model over the union of several catalogues.

Items are namespaced per domain (``DOMAIN:external_id``), every domain's training examples
are pooled so that batches mix domains, features pass through the shared modality adapters,
and interest discovery runs over the union of all domains' item tokens before every epoch.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config import TrainConfig, save_yaml, to_dict
from ..data.batching import Examples, build_examples
from ..data.store import Dataset, ModalityFeatures, read_schema, read_store
from ..errors import MissrecError
from ..model.registry import Catalogue, get_model_spec
from ..seed import seed_everything
from .averaging import weight_average
from .checkpoint import save_checkpoint
from .distributed import init_from_env, loss_function, start_data_parallel
from .loop import Log, code_version, max_len_of, peak_memory_mb, run_epoch


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
    train: Examples

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
            ex = build_examples(d, "train", max_len)
            if max_examples_per_domain and len(ex) > max_examples_per_domain:
                ex = ex.subset(np.sort(rng.choice(len(ex), max_examples_per_domain, replace=False)))
            ex = Examples(ex.flat + offset, ex.offsets, ex.targets + offset, ex.users)
            parts.append(ex)
            domains.append(Domain(name, str(s), read_schema(s).get("fingerprint", ""), d.n_items, offset, len(ex)))
            offset += d.n_items
        feats = {m: ModalityFeatures(np.concatenate(mats[m]), np.concatenate(pres[m]), "union") for m in used}
        return cls(domains, item_ids, item_text, Catalogue(offset, feats), _concat(parts))


def _concat(parts: list[Examples]) -> Examples:
    lengths = np.concatenate([p.lengths for p in parts])
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return Examples(np.concatenate([p.flat for p in parts]), offsets,
                    np.concatenate([p.targets for p in parts]), np.concatenate([p.users for p in parts]))


def pretrain(stores: list[str | Path], out_dir: str | Path | None, train_cfg: TrainConfig, model_cfg: Any,
             *, model_name: str = "missrec", max_examples_per_domain: int = 0, progress: bool = False,
             log: Log = print) -> dict[str, Any]:
    """Pre-train on the union of ``stores`` for ``train_cfg.epochs`` epochs (eq. 7).

    There is no validation split across domains, so the last epoch's weights are kept (their
    moving average with ``train_cfg.ema_decay``); the checkpoint is rewritten after every
    epoch, so an interrupted run keeps its progress.
    """
    if train_cfg.threads:
        torch.set_num_threads(train_cfg.threads)
    seed_everything(train_cfg.seed)
    rng = np.random.default_rng(train_cfg.seed)
    ctx, device = init_from_env(torch.device(train_cfg.device))
    if not ctx.main:  # rank 0 logs and writes (see missrec.train.distributed)
        log, progress, out_dir = (lambda _: None), False, None
    data = PretrainData.load(stores, list(model_cfg.modalities), max_len_of(model_cfg),
                             max_examples_per_domain, train_cfg.seed)
    if list(data.catalogue.features) != list(model_cfg.modalities):
        log(f"pre-training modalities: {', '.join(data.catalogue.features)} "
            f"(no store has {', '.join(m for m in model_cfg.modalities if m not in data.catalogue.features)})")
        model_cfg = dataclasses.replace(model_cfg, modalities=list(data.catalogue.features))
    model = get_model_spec(model_name).build(model_cfg, data.catalogue)
    if not hasattr(model, "pretrain_loss"):
        raise MissrecError(f"model {model_name!r} has no pre-training objective")
    model.to(device)
    optim = torch.optim.Adam(model.parameters(), lr=train_cfg.lr, weight_decay=train_cfg.weight_decay)
    average = weight_average(model, train_cfg.ema_decay)
    loss_fn = loss_function(model, "pretrain_loss", ctx, device)
    start_data_parallel(ctx, train_cfg.seed, train_cfg.batch_size, log)
    n_params = sum(p.numel() for p in model.parameters())
    log(f"pre-training {model_name} ({n_params:,} parameters) on "
        + ", ".join(f"{d.name} ({d.n_items:,} items, {d.train_examples:,} sequences)" for d in data.domains))
    out = Path(out_dir) if out_dir is not None else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        save_yaml(out / "config.yaml", {"model": model_cfg, "train": train_cfg})
        (out / "history.jsonl").write_text("")
    history = []
    t_start = time.perf_counter()
    for epoch in range(1, train_cfg.epochs + 1):
        t0 = time.perf_counter()
        stats, means = run_epoch(model, loss_fn, data.train, train_cfg, optim, rng, device, epoch,
                                 progress, desc="pretrain", ctx=ctx,
                                 after_step=average.update if average is not None else None)
        seconds = time.perf_counter() - t0
        row = {"epoch": epoch, "train_seconds": round(seconds, 3),
               "sequences_per_second": round(len(data.train) / seconds, 1),
               **means, **stats}
        history.append(row)
        log(f"pretrain epoch {epoch:3d}  " + "  ".join(f"{k} {v:.4f}" for k, v in means.items())
            + f"  ({seconds:.1f}s, {row['sequences_per_second']:.0f} seq/s)")
        if out is not None:
            with open(out / "history.jsonl", "a") as f:
                f.write(json.dumps(row) + "\n")
            kept = average.current(epoch) if average is not None else model
            _save(out, model_name, kept, model_cfg, train_cfg, data, epoch)
    if not ctx.main:
        return {}
    results = {
        "model": model_name,
        "kind": "pretrain",
        "domains": [dataclasses.asdict(d) for d in data.domains],
        "epochs": train_cfg.epochs,
        "train_seconds": round(time.perf_counter() - t_start, 2),
        "sequences_per_second": float(np.median([h["sequences_per_second"] for h in history])) if history else 0.0,
        "train_sequences": len(data.train),
        "parameters": n_params,
        "peak_memory_mb": round(peak_memory_mb(), 1),
        "seed": train_cfg.seed,
        "processes": ctx.world,
        "config": {"model": to_dict(model_cfg), "train": to_dict(train_cfg)},
        "code_version": code_version(),
    }
    if out is not None:
        (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    return results


def _save(out: Path, model_name: str, model, model_cfg, train_cfg, data: PretrainData, epoch: int) -> None:
    save_checkpoint(out / "model.pt", model_name=model_name, model=model, model_config=model_cfg,
                    train_config=train_cfg, item_ids=data.item_ids, item_text=data.item_text,
                    catalogue=data.catalogue,
                    dataset={"name": "+".join(d.name for d in data.domains),
                             "domains": [dataclasses.asdict(d) for d in data.domains]},
                    epoch=epoch, best={}, extra={"kind": "pretrain"})
