"""Report files: ``report.md``, ``report.html`` and figures (:func:`write_report`), and the
results block regenerated inside a Markdown file (:func:`update_readme`)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import MissrecError
from .build import README_END, README_START, SUMMARY_END, SUMMARY_START, build_report
from .plots import fraction_plot, popularity_plot, training_curves
from .popularity import DEFAULT_EDGES
from .render import readme_section, render_html, render_markdown, summary_section

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
        for target in report.transfer:
            png = fraction_plot(target, out / f"fractions-{_slug(target.target)}.png")
            if png is not None:
                report.images[f"fractions:{target.table.id}"] = png
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



def update_readme(readme: str | Path, paths: list[str | Path], title: str = "missrec results",
                  summary: bool = False) -> bool:
    """Regenerate the block between ``<!-- results:start -->`` and ``<!-- results:end -->``
    in the Markdown file ``readme`` (any file: the project's is ``docs/results.md``) from the
    runs under ``paths`` (appended at the end, with the markers, if the file has none).
    With ``summary``, the block between ``<!-- summary:start -->`` and ``<!-- summary:end -->``
    gets the one-table summary (:func:`~missrec.report.render.summary_section`) instead.
    Returns whether the file changed; running it twice changes nothing. The file is replaced
    atomically, so an interrupted run never leaves it half written."""
    readme = Path(readme)
    text = readme.read_text() if readme.exists() else ""
    report = build_report(paths, title)
    start, end = (SUMMARY_START, SUMMARY_END) if summary else (README_START, README_END)
    section = summary_section(report) if summary else readme_section(report, base=readme.parent)
    block = f"{start}\n{section}{end}"
    if start in text or end in text:
        i, j = text.find(start), text.find(end)
        if i < 0 or j < 0 or j < i:
            raise MissrecError(f"{readme}: malformed markers; expected {start} ... {end}")
        new = text[:i] + block + text[j + len(end):]
    else:
        new = text + ("" if text.endswith("\n") or not text else "\n") + ("\n" if text else "") + block + "\n"
    if new == text:
        return False
    tmp = readme.with_name(f".{readme.name}.tmp")
    tmp.write_text(new)
    os.replace(tmp, readme)
    return True
