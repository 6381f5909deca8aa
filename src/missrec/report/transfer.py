"""The transfer analysis in a report (``missrec experiment transfer``).

Its runs carry facets in ``cell.json`` (target domain, regime, training fraction). Per
target this builds:

* a table of regime (zero-shot, fine-tune, scratch, UniSRec, popularity) x training fraction
  with Recall/NDCG@10 and @50 as mean ± std over seeds (best per fraction in bold);
* fine-tune against scratch at every fraction, user by user over the test users: the mean
  difference, its 95% paired-bootstrap interval and p (:mod:`missrec.report.paired`, what
  ``missrec compare`` prints);
* the recall@10 of every regime against the fraction (the figure, :mod:`missrec.report.plots`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import MissrecError
from .paired import DEFAULT_METRICS, paired_comparison
from .paper import METRICS, SHORT
from .runs import Cell, Stat
from .views import VALID_COLUMN, Num, TableView, bold_best, mean_std

REGIMES = {"zero-shot": "zero-shot", "fine-tune": "fine-tune", "scratch": "scratch", "unisrec": "UniSRec",
           "popularity": "popularity"}
"""Regime id (a cell's ``regime`` facet) -> row label, in the tables' order."""
ZERO_SHOT = "zero-shot"
CURVE_METRIC = "recall@10"


@dataclass
class TransferTarget:
    """One target domain's tables and curves."""

    target: str
    table: TableView
    paired: TableView | None
    curves: dict[str, list[tuple[float, Stat]]] = field(default_factory=dict)
    """Regime label -> (training fraction, recall@10 over seeds), fractions ascending."""
    zero_shot: Stat | None = None
    """The zero-shot recall@10 (no training on the target: a level, not a curve)."""

    @property
    def tables(self) -> list[TableView]:
        return [self.table] + ([self.paired] if self.paired is not None else [])



def is_transfer(cell: Cell) -> bool:
    f = cell.facets
    return f.get("regime") in REGIMES and "target" in f and "fraction" in f


def transfer_targets(cells: list[Cell]) -> list[TransferTarget]:
    """Every target's tables and curves from the transfer cells among ``cells``, in first-seen order."""
    by_target: dict[str, list[Cell]] = {}
    for c in cells:
        if is_transfer(c):
            by_target.setdefault(c.facets["target"], []).append(c)
    return [_target(name, members) for name, members in by_target.items()]


def _key(cell: Cell) -> tuple[float, int]:
    f = cell.facets
    return float(f["fraction"]), list(REGIMES).index(f["regime"])


def _target(name: str, cells: list[Cell]) -> TransferTarget:
    cells = sorted(cells, key=_key)
    placement = cells[0].placements[0]
    header = ["fraction", "regime", "seeds", *(SHORT[m] for m in METRICS), VALID_COLUMN, "best epoch / epochs"]
    rows, labels = [], []
    for c in cells:
        f = c.facets
        label = REGIMES[f["regime"]] + _duplicate_mark(c, cells)
        be, ep = c.field_stat("best_epoch"), c.field_stat("epochs")
        rows.append([_fraction_label(f["fraction"]), label, str(len(c.runs)), *(Num.of(c.metric(m)) for m in METRICS),
                     Num.of(c.metric("ndcg@10", split="valid")),
                     f"{be.mean:.1f} / {ep.mean:.1f}" if be and ep and ep.mean else "–"])
        labels.append(f"{label}, {_fraction_label(f['fraction'])}")
    for fraction in {r[0] for r in rows}:  # bold the best of each fraction, not across fractions
        for j in range(3, 3 + len(METRICS) + 1):
            bold_best([r[j] for r in rows if r[0] == fraction and isinstance(r[j], Num)])
    notes = ([placement.table_note] if placement.table_note else []) + [
        "fraction: the share of the target's training users trained on (the same users for every regime at a "
        "seed); zero-shot trains on none. Best per fraction in bold."]
    table = TableView(f"transfer-{name}", placement.table_title, header, rows, [], notes, "", cells, labels)
    return TransferTarget(name, table, _paired(name, placement.table_title, cells), *_curves(cells))


def _duplicate_mark(cell: Cell, cells: list[Cell]) -> str:
    """`` #i`` for a cell whose (regime, fraction) another cell also has (runs of two settings)."""
    same = [c for c in cells if _key(c) == _key(cell)]
    return f" #{same.index(cell) + 1}" if len(same) > 1 else ""


def _fraction_label(fraction: str) -> str:
    return "0 (zero-shot)" if float(fraction) == 0 else fraction


def _paired(name: str, title: str, cells: list[Cell]) -> TableView | None:
    """Fine-tune − scratch per fraction, paired over the test users both were evaluated on."""
    by = {(c.facets["regime"], c.facets["fraction"]): c for c in cells}
    fractions = sorted({f for r, f in by if r == "fine-tune" and ("scratch", f) in by}, key=float)
    if not fractions:
        return None
    header = ["fraction", "metric", "fine-tune", "scratch", "fine-tune − scratch", "95% interval", "p", "users"]
    rows, notes = [], []
    for f in fractions:
        try:
            results = paired_comparison(by[("fine-tune", f)], by[("scratch", f)], DEFAULT_METRICS)
        except MissrecError as e:
            notes.append(f"fraction {f}: no paired test ({e})")
            continue
        rows += [[f, r.metric, mean_std(r.a), mean_std(r.b), f"{r.diff:+.4f}", f"[{r.low:+.4f}, {r.high:+.4f}]",
                  f"{r.p:.4f}", str(r.users)] for r in results]
    notes.append("Each user's metric is averaged over a cell's seeds; users are resampled with replacement "
                 "(paired bootstrap, as `missrec compare`); p is two-sided.")
    return TableView(f"transfer-{name}-paired", f"{title}: fine-tune − scratch, paired over test users",
                     header, rows, [], notes)


def _curves(cells: list[Cell]) -> tuple[dict[str, list[tuple[float, Stat]]], Stat | None]:
    curves: dict[str, list[tuple[float, Stat]]] = {}
    zero_shot = None
    for c in cells:
        f, stat = c.facets, c.metric(CURVE_METRIC)
        if stat is None:
            continue
        if f["regime"] == ZERO_SHOT:
            zero_shot = stat
        else:
            curves.setdefault(REGIMES[f["regime"]] + _duplicate_mark(c, cells), []).append((float(f["fraction"]), stat))
    return curves, zero_shot


__all__ = ["REGIMES", "TransferTarget", "is_transfer", "transfer_targets"]
