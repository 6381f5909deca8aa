"""Find a finished run that a planned (cell, seed) would repeat exactly, and adopt its results.

Analyses overlap: Table 3's "MISSRec T+V+ID" is Table 2's subset row and Table 5's row (0).
Two runs are the same run when they train the same model with the same resolved
configuration (:data:`missrec.config.SPEED_ONLY_TRAIN_KEYS` aside: they change speed, not
results) and seed, on a store with the same interaction fingerprint and the same item
features (encoder or source file, dimension, coverage), starting from the same checkpoint
bytes (or from scratch). The comparison reads what a run recorded in its own
``results.json``, so runs made by ``missrec train`` outside any experiment, or in another
experiment's folder, are found too.

A reused run is copied into the planned run's folder (the checkpoint hard-linked when the
file system allows), and its ``cell.json`` says where it came from, so the report and the
folder layout stay the same as for a run made in place.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Iterable

from ..config import SPEED_ONLY_TRAIN_KEYS
from ..model.registry import recorded_config
from ..train.pretrained import model_digest

_COPIED = ("results.json", "history.jsonl", "config.yaml", "test_ranks.npy", "test_targets.npy", "model.pt")


def comparable_config(config: dict[str, Any], model: str) -> str:
    """A ``model``'s ``{"model": ..., "train": ...}`` config as a canonical string, in today's
    layout with every field (:func:`~missrec.model.registry.recorded_config`), speed-only
    keys dropped."""
    full = recorded_config(model, config)
    train = {k: v for k, v in full["train"].items() if k not in SPEED_ONLY_TRAIN_KEYS}
    return json.dumps({"model": full["model"], "train": train}, sort_keys=True, default=str)


def _load(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def init_checkpoint_of(run_dir: Path, results: dict[str, Any]) -> Path | None:
    """The checkpoint a finished run was fine-tuned from, if it can still be found."""
    recorded = results.get("transfer_from")
    if not recorded:
        return None
    path = Path(recorded)
    if path.exists():
        return path
    cell = _load(run_dir / "cell.json") or {}
    if cell.get("pretrain_cell"):
        # experiment layout: OUT/runs/CELL/seed-S -> OUT/pretrain/PRETRAIN_CELL/seed-P/model.pt (P = S
        # unless the pre-training cell runs once, with its own seed)
        seed = f"seed-{cell['pretrain_seed']}" if cell.get("pretrain_seed") is not None else run_dir.name
        guess = run_dir.parents[2] / "pretrain" / cell["pretrain_cell"] / seed / "model.pt"
        if guess.exists():
            return guess
    return None


def store_features(store: Path) -> dict[str, Any] | None:
    """What a store's feature matrices are (per modality: source, dim, coverage), from its schema."""
    schema = _load(Path(store) / "schema.json")
    return None if schema is None else schema.get("modalities", {})


def find_training_run(folders: Iterable[Path], *, model: str, config: dict[str, Any], fingerprint: str,
                      features: dict[str, Any], init: Path | None, exclude: Path | None = None) -> Path | None:
    """A finished training run (a ``results.json`` at any depth of ``folders``) equal to the described one.

    ``features``: :func:`store_features` of the run's store (the fingerprint covers only the
    interactions and item ids; a run whose store can no longer be read is never matched).
    """
    want = comparable_config(config, model)
    init_digest = model_digest(init) if init is not None else None
    for run_dir, res in _candidates(folders, pretraining=False):
        if exclude is not None and run_dir.resolve() == exclude.resolve():
            continue
        if not res or res.get("model") != model or "test" not in res or res.get("kind", "train") != "train":
            continue
        if (res.get("dataset") or {}).get("fingerprint") != fingerprint:
            continue
        if comparable_config(res.get("config") or {}, model) != want:
            continue
        if store_features(Path((res.get("dataset") or {}).get("store", ""))) != features:
            continue
        their_init = init_checkpoint_of(run_dir, res)
        if (init_digest is None) != (res.get("transfer_from") is None):
            continue
        if init_digest is not None and (their_init is None or model_digest(their_init) != init_digest):
            continue
        return run_dir
    return None


def find_pretraining_run(folders: Iterable[Path], *, model: str, config: dict[str, Any],
                         domains: list[tuple[str, int, dict[str, Any]]],
                         exclude: Path | None = None) -> Path | None:
    """A finished pre-training run (at any depth of ``folders``) on the same domains.

    ``domains``: (store fingerprint, training sequences used, :func:`store_features`) per
    domain, in order. ``config`` is the configuration as pre-training records it (its
    modalities narrowed to those some domain has).
    """
    want = comparable_config(config, model)
    for run_dir, res in _candidates(folders, pretraining=True):
        if exclude is not None and run_dir.resolve() == exclude.resolve():
            continue
        if not res or res.get("model") != model or not (run_dir / "model.pt").exists():
            continue
        theirs = [(d.get("fingerprint"), d.get("train_examples"), store_features(Path(d.get("store", ""))))
                  for d in res.get("domains", [])]
        if theirs != domains or comparable_config(res.get("config") or {}, model) != want:
            continue
        return run_dir
    return None


def _candidates(folders: Iterable[Path], pretraining: bool) -> list[tuple[Path, dict[str, Any]]]:
    """(run folder, its results) of every ``results.json`` of the wanted kind at any depth under ``folders``."""
    seen: set[Path] = set()
    out = []
    for folder in folders:
        for f in sorted(Path(folder).rglob("results.json")):
            if f.parent.name.endswith(".adopting") or f.resolve() in seen:
                continue
            res = _load(f)
            if res is None or (res.get("kind") == "pretrain") != pretraining:
                continue
            seen.add(f.resolve())
            out.append((f.parent, res))
    return out


def adopt_run(source: Path, dest: Path, cell_meta: dict[str, Any]) -> dict[str, Any]:
    """Copy a finished run into ``dest`` (writing ``cell_meta`` + its origin); return its results.

    Files land in a staging folder first, so an interrupted copy leaves no half-run behind.
    """
    staging = dest.with_name(dest.name + ".adopting")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for name in _COPIED:
        src = source / name
        if not src.exists():
            continue
        try:
            os.link(src, staging / name)
        except OSError:
            shutil.copy2(src, staging / name)
    meta = dict(cell_meta, reused_from=str(source))
    (staging / "cell.json").write_text(json.dumps(meta, indent=2) + "\n")
    if dest.exists():
        shutil.rmtree(dest)
    staging.rename(dest)
    return json.loads((dest / "results.json").read_text())


__all__ = ["adopt_run", "comparable_config", "find_pretraining_run", "find_training_run", "init_checkpoint_of",
           "store_features"]
