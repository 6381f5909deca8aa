"""``missrec tune``: a hyper-parameter search on the validation split."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import MissrecError
from ..tune import TuneOptions, run_study, tune_across
from ..tune.records import BEST_FILE
from .common import quiet_option
from .train import data_option, model_option, preset_option, set_option


@click.command("tune")
@model_option
@data_option
@click.option("--trials", required=True, type=int,
              help="Trials in the study, counting those of earlier runs into --out.")
@click.option("--out", "out", required=True, type=click.Path(path_type=Path),
              help="Study folder: study.db (SQLite), best.yaml, trials.csv, trials/<number>/.")
@click.option("--jobs", default=TuneOptions.jobs, show_default=True, type=int, help="Trials run at once, one process each.")
@click.option("--timeout", default=None, type=float, metavar="SECONDS",
              help="Start no new trial after this many seconds (running ones finish).")
@click.option("--seed", default=TuneOptions.seed, show_default=True, type=int, help="Seeds the TPE sampler.")
@set_option
@preset_option
@click.option("--space", default=None, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Search-space YAML file instead of the model's (src/missrec/presets/search/MODEL.yaml).")
@quiet_option
def tune_cmd(model: str, store: Path, trials: int, out: Path, jobs: int, timeout: float | None, seed: int,
             sets: tuple[str, ...], preset: str | None, space: Path | None, quiet: bool) -> None:
    """Search MODEL's hyper-parameters on the validation split (Optuna TPE, median pruning).

    Running it again with the same --out continues the study up to --trials; train the best
    setting with `missrec train --config OUT/best.yaml`."""
    options = TuneOptions(model, store, trials, out, jobs=jobs, timeout=timeout, seed=seed, sets=list(sets),
                          preset=preset, space=space)
    log = (lambda s: None) if quiet else (lambda s: click.echo(s, err=True))
    result = run_study(options, log)
    click.echo(result.summary())
    if result.best is None:  # scripts that read best.yaml should not go on
        raise MissrecError(f"no trial has completed yet, so there is no {out / BEST_FILE}; see {result.trials_csv}")


@click.command("tune-across")
@model_option
@click.option("--study", "studies", multiple=True, required=True, type=click.Path(path_type=Path),
              help="A `missrec tune` folder of MODEL on one domain's store (repeat: one per domain).")
@click.option("--out", "out", required=True, type=click.Path(path_type=Path),
              help="Folder: runs/<domain>/<candidate>/, scores.csv, table.md, choice.yaml.")
@click.option("--top", default=3, show_default=True, type=int, help="Best trials of each study to try everywhere.")
@click.option("--jobs", default=1, show_default=True, type=int, help="Runs trained at once, one process each.")
@quiet_option
def tune_across_cmd(model: str, studies: tuple[Path, ...], out: Path, top: int, jobs: int, quiet: bool) -> None:
    """Choose MODEL's setting with the best worst case over several domains.

    The default and each study's best --top trials are trained on every other domain
    (validation only) and scored as a share of the best seen there; the setting whose
    lowest share is highest goes to OUT/choice.yaml, for `missrec train --config`.
    Running it again resumes the runs."""
    log = (lambda s: None) if quiet else (lambda s: click.echo(s, err=True))
    click.echo(tune_across(model, list(studies), out, top=top, jobs=jobs, log=log).summary())


COMMANDS = [tune_cmd, tune_across_cmd]
