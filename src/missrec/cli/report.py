"""``missrec report`` and ``missrec compare``: tables, plots and paired tests from run directories."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..errors import MissrecError
from ..eval.metrics import parse_metric
from ..report import Cell, find_runs, group_cells, paired_comparison, update_readme, write_report
from ..report.paired import DEFAULT_METRICS, RESAMPLES


@click.command("report")
@click.argument("runs", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for report.md, report.html and the PNG figures.")
@click.option("--readme", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also regenerate the block between <!-- results:start --> and <!-- results:end --> "
                   "of this Markdown file, e.g. docs/results.md (appended if the markers are missing).")
@click.option("--summary", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also regenerate the one-table summary (a row per model, R@10 and N@10 per dataset, "
                   "mean ± std, the paper's number, the cells that reproduce it) between <!-- summary:start --> "
                   "and <!-- summary:end --> of this Markdown file, e.g. README.md.")
@click.option("--title", default="missrec results", show_default=True, help="Report title.")
@click.option("--no-plots", is_flag=True, help="Skip the PNG figures (no matplotlib needed).")
def report_cmd(runs: tuple[Path, ...], out_dir: Path | None, readme: Path | None, summary: Path | None,
               title: str, no_plots: bool) -> None:
    """Summarise the runs found (recursively) under RUN_DIR...: seeds of one setting are
    averaged (mean ± std), the paper's numbers are shown beside ours, every run's protocol,
    seed, dataset fingerprint, code version and wall time are listed."""
    if out_dir is None and readme is None and summary is None:
        raise click.UsageError("give --out DIR, --readme FILE.md and/or --summary FILE.md")
    if out_dir is not None:
        files = write_report(list(runs), out_dir, title=title, plots=not no_plots)
        click.echo(f"wrote {files.markdown}, {files.html}"
                   + (f" and {len(files.images)} figure(s)" if files.images else ""))
    if readme is not None:
        changed = update_readme(readme, list(runs), title=title)
        click.echo(f"{readme}: results section {'updated' if changed else 'already up to date'}")
    if summary is not None:
        changed = update_readme(summary, list(runs), title=title, summary=True)
        click.echo(f"{summary}: summary {'updated' if changed else 'already up to date'}")


def _metric(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> tuple[str, ...]:
    for v in values:
        try:
            parse_metric(v)
        except ValueError as e:
            raise click.BadParameter(str(e)) from None
    return values


def _one_cell(path: Path) -> Cell:
    cells = group_cells(find_runs([path]))
    if len(cells) != 1:
        found = f"{len(cells)} settings" if cells else "no training runs"
        raise MissrecError(f"{path}: holds {found}; give the folder of one run or of one setting's seeds")
    return cells[0]


@click.command("compare")
@click.argument("a", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("b", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--metric", "metrics", multiple=True, callback=_metric, default=DEFAULT_METRICS, show_default=True,
              help="A metric to compare (repeatable): recall, ndcg or mrr, then @K.")
@click.option("--resamples", type=click.IntRange(100), default=RESAMPLES, show_default=True,
              help="Bootstrap resamples of the test users.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the resampling.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON (one object per metric).")
def compare_cmd(a: Path, b: Path, metrics: tuple[str, ...], resamples: int, seed: int, as_json: bool) -> None:
    """Compare two models on the same test users: A and B are each a run folder or a folder of
    one setting's seeds (e.g. runs/table2/runs/mm-missrec-tv). Prints each side's mean ± std
    over seeds and, user by user, the mean difference A - B with its 95% paired-bootstrap
    interval and p-value (how likely a difference this large is on other users)."""
    cell_a, cell_b = _one_cell(a), _one_cell(b)
    results = paired_comparison(cell_a, cell_b, metrics, resamples, seed)
    if as_json:
        click.echo(json.dumps([r.as_dict() for r in results], indent=1))
        return
    for name, path, cell in (("A", a, cell_a), ("B", b, cell_b)):
        click.echo(f"{name}  {path}: {cell.label}, {len(cell.runs)} seed(s)")
    click.echo(f"{results[0].users} test users, {resamples} paired bootstrap resamples (seed {seed})\n")
    rows = [("metric", "A", "B", "A - B", "95% interval", "p")]
    rows += [(r.metric, f"{r.a.mean:.4f} ± {r.a.std:.4f}", f"{r.b.mean:.4f} ± {r.b.std:.4f}", f"{r.diff:+.4f}",
              f"[{r.low:+.4f}, {r.high:+.4f}]", f"{r.p:.4f}") for r in results]
    for row in rows:
        click.echo("  ".join(f"{v:<{w}}" for v, w in zip(row, (10, 15, 15, 7, 18, 6))).rstrip())


COMMANDS = [report_cmd, compare_cmd]
