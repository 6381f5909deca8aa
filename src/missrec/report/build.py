"""A report as data: tables of mean ± std over seeds from run directories, with the paper's
reference numbers beside ours (:func:`build_report`). Rendering lives in
:mod:`missrec.report.render`, files in :mod:`missrec.report.write`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import MissrecError
from .defaults import defaults_tables
from .paper import METRICS, PAPER_TABLES, SHORT, reference
from .popularity import DEFAULT_EDGES, PopularityResult, popularity_analysis, train_popularity
from .runs import Cell, Placement, Run, Stat, find_runs, group_cells
from .transfer import TransferTarget, is_transfer, transfer_targets
from .views import VALID_COLUMN, Num, TableView, bold_best

README_START = "<!-- results:start -->"
README_END = "<!-- results:end -->"
SUMMARY_START = "<!-- summary:start -->"
SUMMARY_END = "<!-- summary:end -->"


@dataclass
class Report:
    title: str
    tables: list[TableView]
    runs: list[Run]
    pretrain_runs: list[Run]
    popularity: list[PopularityResult]
    notes: list[str]
    sources: list[Path] = field(default_factory=list)
    """The folders the runs were found under."""
    images: dict[str, Path] = field(default_factory=dict)
    """Figure name -> PNG file (filled by :func:`write_report`)."""
    transfer: list[TransferTarget] = field(default_factory=list)
    """The transfer analysis's targets (their tables are among :attr:`tables` too)."""

    @property
    def protocols(self) -> list[str]:
        return sorted({str(r.results.get("protocol", "?")) for r in self.runs if r.kind != "pretrain"})


# ----------------------------------------------------------------------------- building

def build_report(paths: list[str | Path], title: str = "missrec results",
                 edges: tuple[int, ...] = DEFAULT_EDGES) -> Report:
    """Read every run below ``paths``, group seeds into cells and build the tables."""
    runs = find_runs(paths)
    if not runs:
        raise MissrecError(f"no run directories (results.json) found under {', '.join(map(str, paths))}")
    train_runs = [r for r in runs if r.kind != "pretrain"]
    pre_runs = [r for r in runs if r.kind == "pretrain"]
    cells = group_cells(train_runs)
    transfer = transfer_targets(cells)
    others = [c for c in cells if not is_transfer(c)]  # the transfer analysis lays its cells out itself
    tables = _with_paired(_tables(others), defaults_tables(others)) + [t for target in transfer for t in target.tables]
    pops, notes = _popularity(others, edges)
    return Report(title, tables, train_runs, pre_runs, pops, notes, [Path(p) for p in paths], transfer=transfer)


def _tables(cells: list[Cell]) -> list[TableView]:
    placed: dict[str, list[tuple[Cell, Placement]]] = {}
    for c in cells:
        for p in c.placements:
            placed.setdefault(p.table, []).append((c, p))
    out = []
    for tid, members in placed.items():
        members.sort(key=lambda cp: (cp[1].order, cp[1].label))
        out.append(_table(tid, members))
    order = {"table2": 0, "table3": 1, "table4": 2, "table5": 3}
    out.sort(key=lambda t: (order.get(t.id.split("-")[0], 9), t.id))
    return out


def _with_paired(tables: list[TableView], paired: list[TableView]) -> list[TableView]:
    """``tables`` with each paired table (id ``X-paired``) right after table ``X`` (or at the end)."""
    out = list(tables)
    for p in paired:
        main = next((i for i, t in enumerate(out) if t.id == p.id.removesuffix("-paired")), len(out) - 1)
        out.insert(main + 1, p)
    return out


def _table(tid: str, members: list[tuple[Cell, Placement]]) -> TableView:
    refs = [reference(p.paper_table, p.paper_row) if p.paper_table and p.paper_row else None for _, p in members]
    with_paper = any(r is not None for r in refs)
    header = ["Model", "seeds"]
    best_cols = []
    for m in METRICS:
        best_cols.append(len(header))
        header.append(SHORT[m])
        if with_paper:
            best_cols.append(len(header))
            header.append(f"{SHORT[m]} paper")
    best_cols.append(len(header))
    header += [VALID_COLUMN, "best epoch / epochs", "train s / run"]
    rows, comparisons = [], []
    for (cell, p), ref in zip(members, refs):
        row: list[Any] = [p.label + (f" ({p.note})" if p.note else ""), str(len(cell.runs))]
        ours = {}
        for m in METRICS:
            ours[m] = cell.metric(m)
            row.append(Num.of(ours[m]))
            if with_paper:
                row.append(Num(ref[m]) if ref and m in ref else None)
        row.append(Num.of(cell.metric("ndcg@10", split="valid")))
        be, ep = cell.field_stat("best_epoch"), cell.field_stat("epochs")
        row.append(f"{be.mean:.1f} / {ep.mean:.1f}" if be and ep else "–")
        ts = cell.field_stat("train_seconds")
        row.append(f"{ts.mean:.1f}" if ts else "–")
        rows.append(row)
        if ref:
            comparisons.append((p.label, ours, ref))
    first = members[0][1]
    title = first.table_title
    notes = []
    for _, p in members:
        if p.table_note and p.table_note not in notes:
            notes.append(p.table_note)
    for cell, p in members:
        seeds = [str(s) for s in cell.seeds]
        if len(set(seeds)) < len(seeds):
            notes.append(f"{p.label}: {len(seeds)} runs but only {len(set(seeds))} distinct seed(s); "
                         "repeated seeds are averaged as if independent.")
    paper_tables = sorted({p.paper_table for (_, p), r in zip(members, refs) if r is not None})
    for pt in paper_tables:
        notes.append(f"Paper numbers ({PAPER_TABLES[pt].title}): {PAPER_TABLES[pt].setting}.")
    view = TableView(tid, title, header, rows, best_cols, notes,
                     compare_with_paper(comparisons, ", ".join(PAPER_TABLES[t].title for t in paper_tables)),
                     [c for c, _ in members], [p.label for _, p in members])
    view.mark_best()
    return view


def compare_with_paper(rows: list[tuple[str, dict[str, Stat | None], dict[str, float]]], what: str = "") -> str:
    """One plain sentence: where our means are below and where at or above the paper's."""
    below: dict[str, list[tuple[str, float]]] = {}
    above: dict[str, list[tuple[str, float]]] = {}
    for label, ours, ref in rows:
        for m in METRICS:
            s = ours.get(m)
            if s is None or m not in ref or not ref[m]:
                continue
            rel = (s.mean - ref[m]) / ref[m]
            (below if rel < 0 else above).setdefault(label, []).append((m, rel))
    n_below = sum(len(v) for v in below.values())
    n_above = sum(len(v) for v in above.values())
    total = n_below + n_above
    if total == 0:
        return "The paper reports no numbers for these rows, so there is nothing to compare."

    def describe(groups: dict[str, list[tuple[str, float]]]) -> str:
        parts = []
        for label, items in groups.items():
            rels = [r for _, r in items]
            if len(items) == len(METRICS):
                lo, hi = min(rels, key=abs), max(rels, key=abs)
                span = f"{_pct(lo)}" if abs(lo - hi) < 5e-4 else f"{_pct(lo)} to {_pct(hi)}"
                parts.append(f"{label}: all four, {span}")
            else:
                parts.append(f"{label}: " + ", ".join(f"{SHORT[m]} {_pct(r)}" for m, r in items))
        return "; ".join(parts)

    against = f"the paper ({what})" if what else "the paper"
    s = f"Against {against}, we are below on {n_below} of {total} numbers"
    if n_below:
        s += f" ({describe(below)})"
    s += f" and at or above on {n_above}"
    if n_above:
        s += f" ({describe(above)})"
    return s + "."


def _pct(x: float) -> str:
    return f"{100 * x:+.1f}%"


def _popularity(cells: list[Cell], edges: tuple[int, ...]) -> tuple[list[PopularityResult], list[str]]:
    by_data: dict[str, list[Cell]] = {}
    for c in cells:
        by_data.setdefault(c.first.fingerprint or c.first.dataset.get("name", "?"), []).append(c)
    results, notes = [], []
    for fp, group in by_data.items():
        with_ranks = [c for c in group if any(r.ranks() is not None for r in c.runs)]
        bases = sorted((c for c in with_ranks if c.model == "sasrec"), key=lambda c: -len(c.runs))
        name = group[0].first.dataset.get("name", "?")
        others = [c for c in with_ranks if c.model != "sasrec" or (bases and c is not bases[0])]
        if not bases or not others:
            if len(group) > 1 and not bases:
                notes.append(f"No popularity plot for {name} ({fp}): no SASRec (ID) run with saved test ranks.")
            continue
        store = bases[0].first.dataset.get("store")
        if not store or not (Path(store) / "schema.json").exists():
            notes.append(f"No popularity plot for {name} ({fp}): its store {store} is not available "
                         "to count training popularity.")
            continue
        pop = train_popularity(store)
        res = popularity_analysis(others + [bases[0]], bases[0], pop, f"{name} ({fp})", edges)
        if res is not None and res.recall:
            results.append(res)
    return results, notes


