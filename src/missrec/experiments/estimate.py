"""Rough time estimates of an experiment's runs and stores (what ``--dry-run`` prints).

The built-in costs are for a 2-core CPU running two jobs side by side at one thread each,
default configs; they give an order of magnitude only. Finished runs of the same (kind,
model) in the experiment's folder replace them with what that machine actually took, and a
cell's finished seeds say how many epochs its other seeds will take (early stopping ends a
large catalogue's runs several times later than a small one's).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from ..config import TrainConfig
from .spec import CellSpec
from .stores import RECIPES, train_rows_of

MS_PER_SEQUENCE = {"sasrec": 0.5, "sasrec-text": 0.8, "unisrec": 1.0, "missrec": 2.2}
"""Training cost in ms per training sequence per epoch, evaluation and clustering included."""
PRETRAIN_FACTOR = 8.0
"""Pre-training encodes two views of every sequence and re-clusters a larger catalogue."""
ENCODE_MS_PER_ITEM = 60.0
"""MiniLM text encoding per item (store building)."""
TYPICAL_EPOCHS = 25
"""Epochs a run usually lasts with early stopping (patience 10) when its cap is higher."""
EVAL_MS_PER_SEQUENCE = 0.3
"""An evaluation-only cell (zero-shot, popularity): loading the store and scoring its users."""


def _results(run_dir: Path) -> dict | None:
    """A finished run's ``results.json``, or None where it cannot be read."""
    try:
        return json.loads((run_dir / "results.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None


def measured_costs(done: Iterable[tuple[CellSpec, Path]],
                   stores: dict[str, Path]) -> dict[tuple[str, str], float]:
    """ms per training sequence per epoch of finished runs (cell, run folder), by (kind, model).

    The median over the runs with at least half the most rows of their (kind, model): a small
    run (a few-shot fraction) pays per-epoch costs that do not shrink with its rows (one batch
    padded to the longest history, the validation pass), so its rate would inflate the
    estimate of a full-size run several times over."""
    seen: dict[tuple[str, str], list[tuple[int, float]]] = {}
    for cell, run_dir in done:
        if (res := _results(run_dir)) is None:
            continue
        if cell.kind == "pretrain":
            rows = res.get("train_sequences", 0)
        elif cell.kind == "train":
            rows = res.get("train_examples") or train_rows_of(stores[cell.store], RECIPES.get(cell.store))
        else:
            continue
        spe = res.get("train_seconds", 0) / max(res.get("epochs", 1), 1)
        if rows and spe:
            seen.setdefault((cell.kind, cell.model), []).append((rows, 1000 * spe / rows))
    rates = {}
    for key, runs in seen.items():
        most = max(rows for rows, _ in runs)
        kept = sorted(ms for rows, ms in runs if 2 * rows >= most)
        rates[key] = float(kept[len(kept) // 2])
    return rates


def measured_epochs(done: Iterable[tuple[CellSpec, Path]]) -> dict[str, float]:
    """Epochs the finished seeds of each cell took (their median), by cell name."""
    seen: dict[str, list[int]] = {}
    for cell, run_dir in done:
        epochs = (_results(run_dir) or {}).get("epochs")
        if isinstance(epochs, int) and epochs > 0:
            seen.setdefault(cell.name, []).append(epochs)
    return {name: float(sorted(e)[len(e) // 2]) for name, e in seen.items()}


def run_estimate(cell: CellSpec, cfg: TrainConfig, stores: dict[str, Path],
                 measured: dict[tuple[str, str], float] | None = None,
                 epochs_taken: dict[str, float] | None = None) -> float:
    """Seconds one (cell, seed) should take; ``epochs_taken`` as :func:`measured_epochs` gives."""
    if cell.kind in ("zero-shot", "popularity"):
        return train_rows_of(stores[cell.store], RECIPES.get(cell.store)) * EVAL_MS_PER_SEQUENCE / 1000
    measured, epochs_taken = measured or {}, epochs_taken or {}
    if (cell.kind, cell.model) in measured:
        ms = measured[(cell.kind, cell.model)]
        if cell.kind == "pretrain":
            ms /= PRETRAIN_FACTOR  # measured figures already include both views
    else:
        ms = MS_PER_SEQUENCE.get(cell.model, 5.0)
    if cell.kind == "pretrain":
        rows = sum(train_rows_of(stores[s], RECIPES.get(s)) for s in cell.pretrain_stores)
        if cell.max_per_domain:
            rows = min(rows, cell.max_per_domain * len(cell.pretrain_stores))
        epochs = min(cfg.epochs, TYPICAL_EPOCHS) if cfg.heldout_share > 0 else cfg.epochs  # held-out loss stops it
        epochs = epochs_taken.get(cell.name, epochs)
        return epochs * rows * (1 - cfg.heldout_share) * ms * PRETRAIN_FACTOR / 1000
    rows = train_rows_of(stores[cell.store], RECIPES.get(cell.store)) * cfg.train_fraction
    epochs = epochs_taken.get(cell.name, min(cfg.epochs, TYPICAL_EPOCHS))
    return epochs * rows * ms / 1000


def store_estimate(name: str) -> float:
    """Seconds to build store recipe ``name`` (its text encoding dominates)."""
    recipe = RECIPES.get(name)
    return recipe.n_items * ENCODE_MS_PER_ITEM / 1000 if recipe is not None and recipe.text else 0.0


def hms(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else (f"{m}m{s:02d}s" if m else f"{s}s")
