"""``missrec tune``: a hyper-parameter search on the validation split."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import MissrecError
from ..tune import TuneOptions, run_study
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


COMMANDS = [tune_cmd]
