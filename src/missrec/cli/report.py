"""``missrec report``: tables and plots from run directories."""

from __future__ import annotations

from pathlib import Path

import click

from ..report import update_readme, write_report


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


COMMANDS = [report_cmd]
