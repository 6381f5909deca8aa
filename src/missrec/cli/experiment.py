"""``missrec experiment``: run one of the paper's analyses end to end."""

from __future__ import annotations

from pathlib import Path

import click

from ..experiments import ExperimentOptions, run_experiment
from ..experiments.catalog import PRETRAIN_PER_DOMAIN
from ..experiments.coldstart import ColdStartOptions, coldstart_experiment
from ..experiments.defaults import DEFAULT_DOMAINS
from ..experiments.transfer import DEFAULT_FRACTIONS, DEFAULT_TARGETS
from .common import quiet_option, show_progress


def _names(value: str | None) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()] if value else []


def _fractions(ctx: click.Context, param: click.Parameter, value: str | None) -> list[float]:
    fractions = []
    for v in _names(value):
        try:
            f = float(v)
        except ValueError:
            raise click.BadParameter(f"{v!r} is not a number") from None
        if not 0 < f <= 1:
            raise click.BadParameter(f"{v} is not in (0, 1]")
        fractions.append(f)
    return fractions


@click.command("experiment")
@click.argument("name")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for stores/, pretrain/, runs/ and the report.")
@click.option("--seeds", default=None, type=click.IntRange(min=1),
              help=f"Seeds per cell (2023, 2024, ...); the report shows mean ± std [default: {ExperimentOptions.seeds}; "
                   f"coldstart: {ColdStartOptions.seeds} for the content models].")
@click.option("--data-root", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Raw datasets folder (default: $MISSREC_DATASETS or ../shared/datasets).")
@click.option("--dry-run", is_flag=True, help="Print the planned cells and an estimated time; run nothing.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Override a config field in every cell that has it (repeatable); "
                   "pretrain.KEY=VALUE / finetune.KEY=VALUE limit it to pre-training / training cells.")
@click.option("--no-plots", is_flag=True, help="Write the report without figures (no matplotlib needed).")
@click.option("--data", "data_store", type=click.Path(exists=True, file_okay=False, path_type=Path),
              default=None, hidden=True, help="Use this store for every cell (debugging).")
@click.option("--max-per-domain", type=click.IntRange(min=0), default=None,
              help="Pre-training cells sample at most this many sequences per domain (default: the "
                   f"experiment's, {PRETRAIN_PER_DOMAIN}; 0: all).")
@click.option("--only", default=None, help="Comma-separated cell names: run just these (e.g. to split an "
                                          "analysis over two processes); for coldstart, model names (the "
                                          "report keeps the models ranked before).")
@click.option("--reuse", "reuse_dirs", multiple=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Another experiment's --out folder (repeatable): a cell that would repeat one of its finished "
                   "runs exactly (model, config, seed, data, starting checkpoint) adopts it instead of training; "
                   "its built stores are used too.")
@click.option("--preset", default=None, metavar="NAME",
              help="Start every from-scratch cell whose model has presets from this one (e.g. 'released', the "
                   "official code's settings); pre-training and fine-tuning cells keep their configs.")
@click.option("--jobs", "processes", default=ExperimentOptions.processes, show_default=True,
              type=click.IntRange(min=1),
              help="Train this many runs at once, each in its own process with an equal share of the cores "
                   "(small models use extra threads poorly, so side-by-side runs get through more epochs); "
                   "their per-epoch lines go to RUN_DIR/train.log.")
@click.option("--targets", default=None, metavar="A,B",
              help="transfer: comma-separated target domains (default: "
                   f"{','.join(DEFAULT_TARGETS)}); each is pre-trained on the others. defaults: the domains "
                   f"(default: {','.join(DEFAULT_DOMAINS)}).")
@click.option("--tuned", default=None, type=click.Path(file_okay=False, path_type=Path),
              help="defaults: the tuning folder (DOMAIN/MODEL/best.yaml from missrec tune, "
                   "across/MODEL/choice.yaml from missrec tune-across); cells whose file is missing wait.")
@click.option("--fractions", default=None, metavar="F,G", callback=_fractions,
              help="transfer: comma-separated shares of the target's training users, each in (0, 1] (default: "
                   f"{','.join(f'{f:g}' for f in DEFAULT_FRACTIONS)}).")
@click.option("--text-only", is_flag=True,
              help="coldstart: add the held-out items with their text only (else with all their modalities).")
@click.option("--split", "split", type=click.Choice(["test", "valid"]), default="test", show_default=True,
              help="coldstart: rank the test users' targets, or the validation users' (to choose a setting for "
                   "new items without reading the test split).")
@click.option("--calibrate", is_flag=True,
              help="coldstart: before ranking, give each content model's added items their share of the top 10 "
                   "over the validation users' histories (one offset on their scores; no targets read).")
@quiet_option
def experiment_cmd(name: str, out_dir: Path, seeds: int | None, data_root: Path | None, dry_run: bool,
                   sets: tuple[str, ...], no_plots: bool, data_store: Path | None, max_per_domain: int | None,
                   only: str | None, reuse_dirs: tuple[Path, ...], preset: str | None,
                   processes: int, targets: str | None, tuned: Path | None, fractions: list[float], text_only: bool,
                   split: str, calibrate: bool, quiet: bool) -> None:
    """Run one of the paper's analyses, NAME: table2, fig4, table3, table4 or table5 (or
    baselines: the baselines' validation search; transfer: leave-one-domain-out transfer at
    several training fractions, with --targets and --fractions; defaults: every model at its
    default and tuned, on every domain, with --targets and --tuned; or coldstart: held-out items
    added after training to convergence, with --data, --set, --seeds, --jobs, --text-only, --split and
    --calibrate).

    Builds the stores it needs under OUT/stores (from --data-root), runs each (cell, seed) in
    turn (or --jobs N at once), skipping those whose results.json exists (or adopting a
    finished run it would repeat exactly, from OUT or a --reuse folder), then writes
    OUT/report.md and OUT/report.html. Use --dry-run to see the cells and an estimated time first."""
    log = lambda s: click.echo(s, err=True)  # noqa: E731
    if name == "coldstart":  # its own protocol, not a table of cells
        models = [m for m in only.split(",") if m] if only else ColdStartOptions().models
        if reuse_dirs or preset or max_per_domain is not None:
            raise click.UsageError("coldstart trains each model at its default preset in OUT: --reuse, --preset "
                                   "and --max-per-domain are not options of it")
        coldstart_experiment(out_dir, data_root, data_store, ColdStartOptions(
            seeds=seeds or ColdStartOptions.seeds, text_only=text_only, sets=list(sets), jobs=processes,
            models=models, split=split, calibrate=calibrate, dry_run=dry_run), log)
        return
    options = ExperimentOptions(
        name, out_dir, seeds=seeds or ExperimentOptions.seeds, data_root=data_root, sets=list(sets), data=data_store,
        max_per_domain=max_per_domain, only=[c for c in only.split(",") if c] if only else [],
        reuse=list(reuse_dirs), preset=preset, processes=processes, dry_run=dry_run, plots=not no_plots,
        progress=show_progress(quiet), targets=_names(targets), fractions=fractions, tuned=tuned)
    run_experiment(options, log=log, train_log=(lambda s: None) if quiet else log)


COMMANDS = [experiment_cmd]
