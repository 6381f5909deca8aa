"""Performance by item popularity (the paper's Figure 4).

Test users are bucketed by the popularity of their target item, where popularity is the
number of training-split interactions of the item in the run's dataset store. Per bucket we
compute Recall@K of every model (from its saved per-user test ranks, mean over seeds) and its
relative improvement over SASRec on ids: ``(R_model - R_sasrec) / R_sasrec``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from ..data.store import SPLIT_TRAIN, read_schema
from .runs import Cell

DEFAULT_EDGES = (0, 5, 10, 20, 50, 100)
"""Lower bucket edges (training interactions of the target item); the last bucket is open."""


def train_popularity(store: str | Path) -> np.ndarray:
    """Training-split interaction count of every item index (entry 0 = padding)."""
    store = Path(store)
    n_items = int(read_schema(store)["n_items"])
    table = pq.read_table(store / "interactions.parquet", columns=["item", "split"])
    item = table.column("item").to_numpy().astype(np.int64)
    split = table.column("split").to_numpy()
    return np.bincount(item[split == SPLIT_TRAIN], minlength=n_items + 1)


def bucket_labels(edges: tuple[int, ...]) -> list[str]:
    out = []
    for i, lo in enumerate(edges):
        hi = edges[i + 1] if i + 1 < len(edges) else None
        out.append(f"{lo}-{hi - 1}" if hi is not None and hi - 1 > lo else (f"{lo}" if hi is not None else f"{lo}+"))
    return out


def bucket_of(popularity: np.ndarray, edges: tuple[int, ...]) -> np.ndarray:
    """Bucket index of each popularity value (``edges`` are ascending lower bounds)."""
    return np.searchsorted(np.asarray(edges), popularity, side="right") - 1


def recall_by_bucket(ranks: np.ndarray, buckets: np.ndarray, n_buckets: int, k: int = 10) -> np.ndarray:
    """Recall@k of the users in each bucket (NaN for an empty bucket)."""
    hits = (ranks < k).astype(float)
    out = np.full(n_buckets, np.nan)
    for b in range(n_buckets):
        sel = buckets == b
        if sel.any():
            out[b] = hits[sel].mean()
    return out


@dataclass
class PopularityResult:
    """Bucketed Recall@K per model and relative improvement over the baseline."""

    dataset: str
    labels: list[str]
    counts: list[int]
    """Test users per bucket."""
    baseline: str
    baseline_recall: list[float]
    recall: dict[str, list[float]]
    improvement: dict[str, list[float]]
    """Relative improvement over the baseline per bucket (NaN where the baseline is 0)."""
    k: int = 10


def popularity_analysis(cells: list[Cell], baseline: Cell, popularity: np.ndarray, dataset: str,
                        edges: tuple[int, ...] = DEFAULT_EDGES, k: int = 10) -> PopularityResult | None:
    """Bucket the test users of ``cells`` (same dataset) and compare with ``baseline``."""

    def per_cell(cell: Cell) -> tuple[np.ndarray, np.ndarray] | None:
        rows, counts = [], None
        for run in cell.runs:
            got = run.ranks()
            if got is None:
                continue
            ranks, targets = got
            b = bucket_of(popularity[targets], edges)
            rows.append(recall_by_bucket(ranks, b, len(edges), k))
            counts = np.bincount(b, minlength=len(edges))
        if not rows:
            return None
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # empty buckets stay NaN
            return np.nanmean(np.vstack(rows), axis=0), counts

    base = per_cell(baseline)
    if base is None:
        return None
    base_recall, counts = base
    keep = counts > 0
    labels = [lab for lab, kp in zip(bucket_labels(edges), keep) if kp]
    recall, improvement = {}, {}
    for cell in cells:
        if cell is baseline:
            continue
        got = per_cell(cell)
        if got is None:
            continue
        rec = got[0]
        with np.errstate(divide="ignore", invalid="ignore"):
            imp = np.where(base_recall > 0, (rec - base_recall) / base_recall, np.nan)
        recall[cell.label] = [float(x) for x in rec[keep]]
        improvement[cell.label] = [float(x) for x in imp[keep]]
    return PopularityResult(dataset, labels, [int(c) for c in counts[keep]], baseline.label,
                            [float(x) for x in base_recall[keep]], recall, improvement, k)
