"""The defaults analysis in a report (``missrec experiment defaults``): MISSRec against the
best baseline, user by user, in every regime of every domain.

Its runs carry facets in ``cell.json`` (domain, regime). Each domain's main table is an
ordinary one (a row per model and regime); this adds, per domain, a paired table: in each
regime (default, tuned on the domain, chosen across domains) MISSRec against the baseline
with the highest mean validation NDCG@10 in that regime (chosen on validation, so the test
columns choose nothing), by the paired bootstrap of :mod:`missrec.report.paired`.
"""

from __future__ import annotations

from ..errors import MissrecError
from .paired import DEFAULT_METRICS, paired_comparison
from .runs import Cell
from .views import TableView, mean_std

REGIMES = {"default": "default", "tuned": "tuned on the domain", "across": "chosen across domains"}
"""Regime facet -> label, in the table's order (the ``reference`` regime, popularity, is not compared)."""
METRICS = (*DEFAULT_METRICS, "recall@50", "ndcg@50")



def is_defaults(cell: Cell) -> bool:
    f = cell.facets
    return "domain" in f and f.get("regime") in (*REGIMES, "reference")


def defaults_tables(cells: list[Cell]) -> list[TableView]:
    """One paired table per domain among ``cells`` that has MISSRec and a baseline in some regime."""
    by_domain: dict[str, list[Cell]] = {}
    for c in cells:
        if is_defaults(c) and c.facets["regime"] in REGIMES:
            by_domain.setdefault(c.facets["domain"], []).append(c)
    return [t for domain, members in by_domain.items() if (t := _paired(domain, members)) is not None]


def _valid(cell: Cell) -> float:
    stat = cell.metric("ndcg@10", split="valid")
    return stat.mean if stat is not None else float("-inf")


def _paired(domain: str, cells: list[Cell]) -> TableView | None:
    header = ["regime", "metric", "MISSRec", "best baseline", "baseline", "MISSRec − baseline", "95% interval", "p",
              "users"]
    rows, notes = [], []
    for regime, label in REGIMES.items():
        here = [c for c in cells if c.facets["regime"] == regime]
        ours = [c for c in here if c.model == "missrec"]
        baselines = [c for c in here if c.model not in ("missrec", "popularity")]
        if not ours or not baselines:
            continue
        best = max(baselines, key=_valid)
        name = best.label.rsplit(", ", 1)[0]
        try:
            results = paired_comparison(ours[0], best, METRICS)
        except MissrecError as e:
            notes.append(f"{label}: no paired test ({e})")
            continue
        rows += [[label, r.metric, mean_std(r.a), name, mean_std(r.b), f"{r.diff:+.4f}",
                  f"[{r.low:+.4f}, {r.high:+.4f}]", f"{r.p:.4f}", str(r.users)] for r in results]
    if not rows and not notes:
        return None
    notes.append("The baseline of each regime is the one with the highest mean validation NDCG@10 there. Each "
                 "user's metric is averaged over a cell's seeds; users are resampled with replacement (paired "
                 "bootstrap, as `missrec compare`); p is two-sided.")
    return TableView(f"defaults-{domain}-paired", f"{domain}: MISSRec − the best baseline, paired over test users",
                     header, rows, [], notes)


__all__ = ["defaults_tables", "is_defaults"]
