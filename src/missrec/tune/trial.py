"""One trial: ask the study for values, train with them, tell it how it went.

A trial trains like ``missrec train`` with the study's preset and fixed overrides plus its
own values, into ``DIR/trials/<number>/`` (per-epoch lines in ``train.log``), and never
scores the test split. After every validated epoch it reports the best validation score so
far; the pruner may stop it there. The same function runs a trial in the tuning process or
in a worker process: everything it needs travels in a :class:`TrialTask`.

A trial that reruns one a killed process left behind takes over that trial's folder and
continues from its last complete epoch, exactly as ``missrec train --resume`` would: it
first reports the epochs already trained, so the pruner judges it as if it had never
stopped. A folder whose state no longer matches the trial's settings starts afresh.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import MissrecError
from ..locks import turn
from ..train.loop import RunData, TrainResult, train
from ..train.resolve import resolve_configs
from ..train.resume import STATE_FILE, check_model_config, read_state
from .options import TuneOptions
from .records import CAPPED_ATTR, TrialRecord, record_of
from .space import SearchSpace
from .study import RETRY_ATTR, TRIALS_DIR, StudyRef, require_optuna, trial_folder

if TYPE_CHECKING:
    import optuna

LOG_NAME = "train.log"
ASK_LOCK = ".ask.lock"
_data_cache: dict[tuple, RunData] = {}
"""The store the last trial of this process loaded, for the next (trials share one store)."""


@dataclass(frozen=True)
class TrialTask:
    """Everything a trial needs (picklable: it is sent to worker processes)."""

    ref: StudyRef
    options: TuneOptions
    space: SearchSpace
    sampler_seed: int
    """Seeds this trial's sampling: the study's seed plus the trial's place in the order trials start."""


class PruneWatch:
    """The trainer's validation hook: reports the best score so far to the trial and stops
    the run (raising ``optuna.TrialPruned``) when the pruner says so."""

    def __init__(self, trial: "optuna.Trial", metric: str):
        self.trial, self.metric = trial, metric
        self.best, self.best_epoch, self.epochs = -math.inf, 0, 0

    def __call__(self, epoch: int, metrics: dict[str, float]) -> None:
        self.epochs = epoch
        score = metrics[self.metric]
        if score > self.best:
            self.best, self.best_epoch = score, epoch
        # the best so far, not this epoch's: the objective is the best epoch, and a noisy
        # epoch should not end a trial whose best is fine
        if math.isfinite(self.best):
            self.trial.report(self.best, epoch)
        if self.trial.should_prune():
            raise require_optuna().TrialPruned(f"pruned after epoch {epoch}")


def run_trial(task: TrialTask) -> TrialRecord:
    """Run the study's next trial to its end (complete, pruned or failed) and record it.

    A :class:`MissrecError` while training (a non-finite loss, say) fails the trial and
    the study goes on; any other exception fails it and propagates."""
    optuna = require_optuna()
    study = task.ref.load(task.sampler_seed)
    trial = next_trial(study, task.options.out)
    start = time.perf_counter()
    values = task.space.suggest(trial)
    trials_dir = task.options.out / TRIALS_DIR
    run_dir = trials_dir / trial_folder(trial.number)
    _take_over(trials_dir, trial.user_attrs.get(RETRY_ATTR), run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    state, value, error = optuna.trial.TrialState.FAIL, None, None
    watch: PruneWatch | None = None
    try:
        train_cfg, model_cfg = resolve_configs(task.options.model, None,
                                               (*task.options.trial_sets, *task.space.overrides(values)),
                                               task.options.preset, store=task.options.store)
        watch = PruneWatch(trial, train_cfg.valid_metric)
        earlier = _epochs_trained(run_dir, task.options.model, train_cfg, model_cfg)
        if earlier is not None:
            seconds, history = earlier
            start -= seconds  # the trial's time includes the epochs before the kill
            _replay(history, train_cfg.valid_metric, watch)
        result = _train(task.options, run_dir, train_cfg, model_cfg, watch, resume=earlier is not None)
        value = _objective(result, train_cfg.valid_metric)
        state = optuna.trial.TrialState.COMPLETE
        if _capped(result.results, train_cfg):
            trial.set_user_attr(CAPPED_ATTR, True)
    except optuna.TrialPruned:
        state = optuna.trial.TrialState.PRUNED
    except Exception as e:
        error = str(e) or type(e).__name__
        if not isinstance(e, MissrecError):
            _finish(study, trial, state, value, watch, start, error, run_dir)
            raise
    return _finish(study, trial, state, value, watch, start, error, run_dir)


def next_trial(study: "optuna.Study", folder: Path) -> "optuna.Trial":
    """The study's next trial: a queued one (the default, an interrupted trial's rerun) or a
    new one. One process asks at a time: Optuna gives a queued trial to the process that
    marks it running, and SQLite cannot lock the row it reads, so two processes asking at
    once could both take the same one."""
    with turn(folder / ASK_LOCK):
        return study.ask()


def _take_over(trials_dir: Path, retry_of: int | None, run_dir: Path) -> None:
    """Move the interrupted trial's folder, with its training state, to its rerun's place."""
    if retry_of is None or run_dir.exists():
        return
    killed = trials_dir / trial_folder(retry_of)
    if (killed / STATE_FILE).exists():
        killed.rename(run_dir)


def _epochs_trained(run_dir: Path, model: str, train_cfg: Any,
                    model_cfg: Any) -> tuple[float, list[dict[str, Any]]] | None:
    """The seconds and history rows of the epochs whose training state ``run_dir`` holds;
    None where it holds none, or one trained with other settings (the trial then starts
    afresh)."""
    path = run_dir / STATE_FILE
    if not path.exists():
        return None
    try:
        state = read_state(path, model, train_cfg, processes=1)
        check_model_config(path, state, model_cfg)
    except MissrecError:
        return None
    return float(state["train_seconds"]), state["history"]


def _replay(history: list[dict[str, Any]], metric: str, watch: PruneWatch) -> None:
    """Report the epochs already trained to the trial; the pruner may stop it here."""
    for row in history:
        if f"valid_{metric}" in row:
            watch(row["epoch"], {metric: row[f"valid_{metric}"]})


def _train(options: TuneOptions, run_dir: Path, train_cfg: Any, model_cfg: Any, watch: PruneWatch,
           resume: bool) -> TrainResult:
    store = options.store.resolve()
    data = RunData.cached(_data_cache, store, model_cfg)
    with open(run_dir / LOG_NAME, "a" if resume else "w", buffering=1) as out:
        return train(options.model, store, run_dir, train_cfg, model_cfg, data=data,
                     log=lambda line: print(line, file=out), test=False, resume=resume, overwrite=not resume,
                     on_validate=watch)


def _capped(results: dict[str, Any], train_cfg: Any) -> bool:
    """The epoch cap ended the trial before early stopping would have: its best epoch lies
    within ``patience`` epochs of the last."""
    return results["epochs"] >= train_cfg.epochs and results["epochs"] - results["best_epoch"] < train_cfg.patience


def _objective(result: TrainResult, metric: str) -> float:
    score = result.results["valid"].get(metric)
    if score is None or not math.isfinite(score):
        raise MissrecError(f"no finite validation {metric} in any epoch")
    return float(score)


def _finish(study: "optuna.Study", trial: "optuna.Trial", state: Any, value: float | None, watch: PruneWatch | None,
            start: float, error: str | None, run_dir: Path) -> TrialRecord:
    """Record the trial's figures and end it in the study."""
    if watch is not None and math.isfinite(watch.best):
        trial.set_user_attr("valid", watch.best)
        trial.set_user_attr("best_epoch", watch.best_epoch)
    trial.set_user_attr("epochs", watch.epochs if watch is not None else 0)
    trial.set_user_attr("seconds", round(time.perf_counter() - start, 1))
    if error is not None:
        trial.set_user_attr("note", error)
    if state.name != "COMPLETE":  # a stopped run's training state is of no further use
        (run_dir / STATE_FILE).unlink(missing_ok=True)
    return record_of(study.tell(trial, value if state.name == "COMPLETE" else None, state=state))


def clear_cache() -> None:
    """Drop the store a trial run in this process kept in memory."""
    _data_cache.clear()
