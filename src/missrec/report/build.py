"""Assemble a report from run directories and render it as Markdown, HTML and a results block
for a Markdown file (the project keeps its block in ``docs/results.md``)."""

from __future__ import annotations

import base64
import html
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import MissrecError
from .paper import METRICS, PAPER_TABLES, SHORT, reference
from .plots import popularity_plot, training_curves
from .popularity import DEFAULT_EDGES, PopularityResult, popularity_analysis, train_popularity
from .runs import Cell, Placement, Run, Stat, find_runs, group_cells

README_START = "<!-- results:start -->"
README_END = "<!-- results:end -->"


@dataclass
class Num:
    """A numeric table entry: mean (± std over ``n`` seeds), bold when best in its column."""

    mean: float
    std: float = 0.0
    n: int = 1
    bold: bool = False
    digits: int = 4

    @classmethod
    def of(cls, s: Stat | None, digits: int = 4) -> "Num | None":
        return None if s is None else cls(s.mean, s.std, s.n, digits=digits)

    def parts(self) -> tuple[str, str]:
        main = f"{self.mean:.{self.digits}f}"
        return main, (f" ± {self.std:.{self.digits}f}" if self.n > 1 else "")


@dataclass
class TableView:
    """One rendered table: header, rows (str | Num | None), bold-able columns, notes."""

    id: str
    title: str
    header: list[str]
    rows: list[list[Any]]
    best_cols: list[int]
    notes: list[str] = field(default_factory=list)
    summary: str = ""
    cells: list[Cell] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)

    def mark_best(self) -> None:
        """Bold the highest mean of every column in ``best_cols`` (ties: all of them)."""
        for j in self.best_cols:
            nums = [r[j] for r in self.rows if isinstance(r[j], Num)]
            if len(nums) < 2:
                continue
            best = max(round(n.mean, n.digits) for n in nums)
            for n in nums:
                n.bold = round(n.mean, n.digits) == best


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
    tables = _tables(cells)
    pops, notes = _popularity(cells, edges)
    return Report(title, tables, train_runs, pre_runs, pops, notes, [Path(p) for p in paths])


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
    header += ["best epoch / epochs", "train s / run"]
    rows, comparisons = [], []
    for (cell, p), ref in zip(members, refs):
        row: list[Any] = [p.label + (f" ({p.note})" if p.note else ""), str(len(cell.runs))]
        ours = {}
        for m in METRICS:
            ours[m] = cell.metric(m)
            row.append(Num.of(ours[m]))
            if with_paper:
                row.append(Num(ref[m]) if ref and m in ref else None)
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


# ----------------------------------------------------------------------------- writing

@dataclass
class ReportFiles:
    markdown: Path
    html: Path
    images: list[Path]


def write_report(paths: list[str | Path], out: str | Path, *, title: str = "missrec results",
                 plots: bool = True, edges: tuple[int, ...] = DEFAULT_EDGES) -> ReportFiles:
    """Write ``out/report.md``, a self-contained ``out/report.html`` and the PNG figures."""
    report = build_report(paths, title, edges)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if plots:
        for t in report.tables:
            png = training_curves(t.cells, t.labels, out / f"curves-{_slug(t.id)}.png", f"{t.title}: training curves")
            if png is not None:
                report.images[f"curves:{t.id}"] = png
        for res in report.popularity:
            report.images[f"popularity:{res.dataset}"] = popularity_plot(
                res, out / f"popularity-{_slug(res.dataset)}.png")
    md = out / "report.md"
    md.write_text(render_markdown(report, base=out))
    page = out / "report.html"
    page.write_text(render_html(report, base=out))
    return ReportFiles(md, page, list(report.images.values()))


def _slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", s).strip("-").lower() or "x"


def _rel(path: Path | str, base: Path | None) -> str:
    path = Path(path)
    if base is None:
        return str(path)
    try:
        return os.path.relpath(path.resolve(), Path(base).resolve())
    except ValueError:
        return str(path)


# ----------------------------------------------------------------------------- markdown

def _md_cell(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, Num):
        main, rest = v.parts()
        return (f"**{main}**" if v.bold else main) + rest
    return str(v).replace("|", "\\|")


def _md_table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(_md_cell(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)


def _tables_markdown(report: Report, level: str = "##") -> list[str]:
    out = []
    for t in report.tables:
        out += [f"{level} {t.title}", "", _md_table(t.header, t.rows), "", t.summary, ""]
        out += [f"- {n}" for n in t.notes]
        if t.notes:
            out.append("")
    return out


def _runs_rows(report: Report, base: Path | None) -> tuple[list[str], list[list[Any]]]:
    header = ["run", "model", "dataset", "fingerprint", "seed", "protocol", "code version",
              "best epoch / epochs", "train s", "from"]
    rows = []
    for r in report.runs:
        rows.append([_rel(r.path, base), r.model, r.dataset.get("name", "?"), r.fingerprint or "?", r.seed,
                     r.results.get("protocol", "?"), r.results.get("code_version", "?"),
                     f"{r.results.get('best_epoch', '?')} / {r.results.get('epochs', '?')}",
                     r.results.get("train_seconds", "?"),
                     _rel(r.results["transfer_from"], base) if r.results.get("transfer_from") else "–"])
    return header, rows


def _pre_rows(report: Report, base: Path | None) -> tuple[list[str], list[list[Any]]]:
    header = ["run", "model", "domains (fingerprint)", "seed", "epochs", "code version", "train s"]
    rows = []
    for r in report.pretrain_runs:
        doms = ", ".join(f"{d.get('name')} ({d.get('fingerprint', '?')})" for d in r.results.get("domains", []))
        rows.append([_rel(r.path, base), r.model, doms, r.seed, r.results.get("epochs", "?"),
                     r.results.get("code_version", "?"), r.results.get("train_seconds", "?")])
    return header, rows


def _popularity_rows(res: PopularityResult) -> tuple[list[str], list[list[Any]]]:
    header = ["", *res.labels]
    rows: list[list[Any]] = [["test users", *res.counts],
                             [f"{res.baseline} Recall@{res.k}", *(f"{v:.4f}" for v in res.baseline_recall)]]
    for label, imp in res.improvement.items():
        rows.append([f"{label} vs {res.baseline}",
                     *("n/a" if v != v else f"{100 * v:+.1f}%" for v in imp)])
    return header, rows


def render_markdown(report: Report, base: Path | None = None) -> str:
    n_cells = sum(len(t.rows) for t in report.tables)
    lines = [f"# {report.title}", "",
             f"Generated by `missrec report` from {len(report.runs)} training runs "
             f"({n_cells} table rows; seeds are averaged, ± is the sample standard deviation over seeds)"
             + (f" and {len(report.pretrain_runs)} pre-training runs" if report.pretrain_runs else "") + ".",
             "", "Evaluation protocol: " + "; ".join(report.protocols) + ".",
             "Best value per column in **bold**. Metrics: R@K = Recall@K, N@K = NDCG@K on the test split.", ""]
    lines += _tables_markdown(report)
    for t in report.tables:
        key = f"curves:{t.id}"
        if key in report.images:
            lines += [f"![{t.title}: training curves]({_rel(report.images[key], base)})", ""]
    if report.popularity or report.notes:
        lines += ["## Performance by item popularity (Figure 4)", "",
                  "Test users bucketed by the number of training interactions of their target item "
                  "(from the store's training split); relative Recall@10 improvement over SASRec (ID).", ""]
        for res in report.popularity:
            lines += [f"### {res.dataset}", "", _md_table(*_popularity_rows(res)), ""]
            key = f"popularity:{res.dataset}"
            if key in report.images:
                lines += [f"![popularity {res.dataset}]({_rel(report.images[key], base)})", ""]
        lines += [f"- {n}" for n in report.notes]
        lines.append("")
    lines += ["## Runs", "", _md_table(*_runs_rows(report, base)), ""]
    if report.pretrain_runs:
        lines += ["### Pre-training runs", "", _md_table(*_pre_rows(report, base)), ""]
    return "\n".join(lines).rstrip() + "\n"


# ----------------------------------------------------------------------------- html

_CSS = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:0.6em 0;font-size:0.85em}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:right}
th:first-child,td:first-child{text-align:left}th{background:#f2f4f7}
td.std{color:#666}img{max-width:100%;border:1px solid #eee}.note{color:#555;font-size:0.9em}"""


def _h_cell(v: Any) -> str:
    if v is None:
        return "<td>–</td>"
    if isinstance(v, Num):
        main, rest = v.parts()
        main = f"<b>{main}</b>" if v.bold else main
        return f"<td>{main}<span class='std'>{html.escape(rest)}</span></td>"
    return f"<td>{html.escape(str(v))}</td>"


def _h_table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(_h_cell(v) for v in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _h_img(path: Path, alt: str) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f"<p><img alt='{html.escape(alt)}' src='data:image/png;base64,{data}'></p>"


def render_html(report: Report, base: Path | None = None) -> str:
    """A self-contained page: tables plus every figure embedded as base64 PNG."""
    e = html.escape
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{e(report.title)}</title>"
             f"<style>{_CSS}</style></head><body><h1>{e(report.title)}</h1>",
             f"<p>{len(report.runs)} training runs; seeds averaged (± sample standard deviation). "
             f"Evaluation protocol: {e('; '.join(report.protocols))}. Best value per column in bold.</p>"]
    for t in report.tables:
        parts += [f"<h2>{e(t.title)}</h2>", _h_table(t.header, t.rows), f"<p>{e(t.summary)}</p>"]
        parts += [f"<p class='note'>{e(n)}</p>" for n in t.notes]
        key = f"curves:{t.id}"
        if key in report.images:
            parts.append(_h_img(report.images[key], f"{t.title}: training curves"))
    if report.popularity or report.notes:
        parts.append("<h2>Performance by item popularity (Figure 4)</h2>")
        for res in report.popularity:
            parts += [f"<h3>{e(res.dataset)}</h3>", _h_table(*_popularity_rows(res))]
            key = f"popularity:{res.dataset}"
            if key in report.images:
                parts.append(_h_img(report.images[key], f"popularity {res.dataset}"))
        parts += [f"<p class='note'>{e(n)}</p>" for n in report.notes]
    parts += ["<h2>Runs</h2>", _h_table(*_runs_rows(report, base))]
    if report.pretrain_runs:
        parts += ["<h3>Pre-training runs</h3>", _h_table(*_pre_rows(report, base))]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


# ----------------------------------------------------------------------------- results block

def readme_section(report: Report, base: Path | None = None) -> str:
    """The generated results block (tables, comparison sentences, run provenance); no plots,
    no timestamps, so regenerating from the same runs gives the same text."""
    lines = [f"Generated by `missrec report` from {len(report.runs)} training runs; "
             "seeds are averaged (± sample std); best per column in **bold**. "
             "Evaluation protocol: " + "; ".join(report.protocols) + ".", ""]
    lines += _tables_markdown(report, level="###")
    codes = sorted({str(r.results.get("code_version", "?")) for r in report.runs})
    fps = sorted({f"{r.dataset.get('name', '?')} {r.fingerprint}" for r in report.runs})
    total = sum(float(r.results.get("train_seconds") or 0) for r in report.runs + report.pretrain_runs)
    lines += [f"Runs under {', '.join(_rel(p, base) for p in report.sources)}; "
              f"datasets: {', '.join(fps)}; code versions: {', '.join(codes)}; "
              f"total training time {total / 3600:.2f} h."]
    return "\n".join(lines).rstrip() + "\n"


def update_readme(readme: str | Path, paths: list[str | Path], title: str = "missrec results") -> bool:
    """Regenerate the block between ``<!-- results:start -->`` and ``<!-- results:end -->``
    in the Markdown file ``readme`` (any file: the project's is ``docs/results.md``) from the
    runs under ``paths`` (appended at the end, with the markers, if the file has none).
    Returns whether the file changed; running it twice changes nothing. The file is replaced
    atomically, so an interrupted run never leaves it half written."""
    readme = Path(readme)
    text = readme.read_text() if readme.exists() else ""
    section = readme_section(build_report(paths, title), base=readme.parent)
    block = f"{README_START}\n{section}{README_END}"
    if README_START in text or README_END in text:
        i, j = text.find(README_START), text.find(README_END)
        if i < 0 or j < 0 or j < i:
            raise MissrecError(f"{readme}: malformed results markers; expected {README_START} ... {README_END}")
        new = text[:i] + block + text[j + len(README_END):]
    else:
        new = text + ("" if text.endswith("\n") or not text else "\n") + ("\n" if text else "") + block + "\n"
    if new == text:
        return False
    tmp = readme.with_name(f".{readme.name}.tmp")
    tmp.write_text(new)
    os.replace(tmp, readme)
    return True
