"""PNG figures: training curves, the popularity plot and the transfer analysis's recall against the
training fraction (matplotlib, imported lazily)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import MissrecError
from .popularity import PopularityResult
from .runs import Cell
from .transfer import CURVE_METRIC, TransferTarget

LOSS_KEYS = ("loss", "loss_si")
"""The per-epoch training loss logged by each model: ``loss`` (SASRec, SASRec_T, UniSRec)
or ``loss_si`` (MISSRec's sequence-item term, without the regulariser)."""


def pyplot() -> Any:
    """matplotlib.pyplot with the Agg backend, or a MissrecError naming the extra."""
    try:
        import matplotlib
    except ImportError:
        raise MissrecError("report plots need matplotlib, which is not installed; install it with: "
                           "pip install 'missrec[report]' (or pass --no-plots)") from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _mean_curve(cell: Cell, key_options: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray] | None:
    """Per-epoch mean over seeds of the first key in ``key_options`` a run logged."""
    per_epoch: dict[int, list[float]] = {}
    for run in cell.runs:
        key = next((k for k in key_options if any(k in h for h in run.history)), None)
        if key is None:
            continue
        for h in run.history:
            if key in h and h[key] is not None and not math.isnan(float(h[key])):
                per_epoch.setdefault(int(h["epoch"]), []).append(float(h[key]))
    if not per_epoch:
        return None
    epochs = np.array(sorted(per_epoch))
    return epochs, np.array([np.mean(per_epoch[e]) for e in epochs])


def training_curves(cells: list[Cell], labels: list[str], path: Path, title: str) -> Path | None:
    """Training loss and validation NDCG@10 per epoch, one line per cell (mean over seeds)."""
    curves = [(lab, _mean_curve(c, LOSS_KEYS), _mean_curve(c, ("valid_ndcg@10",))) for c, lab in zip(cells, labels)]
    if not any(lc or vc for _, lc, vc in curves):
        return None
    plt = pyplot()
    ncol = 3
    rows = -(-len(curves) // ncol)
    # the legend goes under both panels: inside one it hides the curves once a table has many rows
    fig, (ax_l, ax_v) = plt.subplots(1, 2, figsize=(11, 4 + 0.22 * rows))
    for lab, lc, vc in curves:
        if lc is not None:
            ax_l.plot(lc[0], lc[1], marker="o", markersize=3, label=lab)
        if vc is not None:
            ax_v.plot(vc[0], vc[1], marker="o", markersize=3, label=lab)
    ax_l.set(xlabel="epoch", ylabel="training loss (loss, or loss_si for MISSRec)", title="training loss")
    ax_v.set(xlabel="epoch", ylabel="validation NDCG@10", title="validation NDCG@10")
    from matplotlib.ticker import MaxNLocator

    for ax in (ax_l, ax_v):
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    handles, names = ax_v.get_legend_handles_labels()
    if not handles:
        handles, names = ax_l.get_legend_handles_labels()
    fig.suptitle(title, fontsize=10)
    bottom = (0.22 * rows + 0.08) / (4 + 0.22 * rows)
    fig.legend(handles, names, loc="lower center", ncol=ncol, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, bottom, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def popularity_plot(res: PopularityResult, path: Path) -> Path:
    """Figure 4 style: histogram of test users per popularity bucket (bars, left axis) and
    the relative Recall@K improvement over the baseline per bucket (lines, right axis)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.2))
    x = np.arange(len(res.labels))
    ax.bar(x, res.counts, color="#d0d7e2", edgecolor="#8a97ab", label="test users")
    for i, c in enumerate(res.counts):
        ax.text(i, c, str(c), ha="center", va="bottom", fontsize=7, color="#555")
    ax.set_ylim(0, 1.1 * max(max(res.counts, default=0), 1))  # room for the count above the tallest bar
    ax.set_xticks(x, res.labels)
    ax.set_xlabel("training interactions of the target item")
    ax.set_ylabel("test users")
    ax2 = ax.twinx()
    for label, imp in res.improvement.items():
        ax2.plot(x, [100 * v for v in imp], marker="o", label=label)
    ax2.axhline(0, color="#444", lw=0.8, ls="--")
    ax2.set_ylabel(f"Recall@{res.k} improvement over {res.baseline} (%)")
    ax2.legend(fontsize=7, loc="best")
    ax.set_title(f"{res.dataset}: performance by target popularity", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def fraction_plot(target: TransferTarget, path: Path) -> Path | None:
    """Recall@10 against the share of the target's training users, one line per regime (mean
    over seeds, the seed std as error bars); zero-shot, which trains on none, as a level."""
    if not target.curves and target.zero_shot is None:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for label, points in target.curves.items():
        xs = [f for f, _ in points]
        ax.errorbar(xs, [s.mean for _, s in points], yerr=[s.std for _, s in points], marker="o", markersize=4,
                    capsize=3, label=label)
    if target.zero_shot is not None:
        ax.axhline(target.zero_shot.mean, color="#444", ls="--", lw=1, label="zero-shot")
    fractions = sorted({f for points in target.curves.values() for f, _ in points})
    if len(fractions) > 1 and fractions[-1] / fractions[0] >= 10:
        ax.set_xscale("log")
    if fractions:
        ax.set_xticks(fractions, [f"{f:g}" for f in fractions])
        ax.minorticks_off()
    ax.set(xlabel="share of the target's training users", ylabel=f"test {CURVE_METRIC.replace('recall', 'Recall')}",
           title=target.table.title)
    ax.title.set_fontsize(9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
