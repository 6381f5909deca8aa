"""One trial: ask the study for values, train with them, tell it how it went.

A trial trains like ``missrec train`` with the study's preset and fixed overrides plus its
own values, into ``DIR/trials/<number>/`` (per-epoch lines in ``train.log``), and never
scores the test split. After every validated epoch it reports the best validation score so
far; the pruner may stop it there. The same function runs a trial in the tuning process or
in a worker process: everything it needs travels in a :class:`TrialTask`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import MissrecError
from ..train.loop import RunData, TrainResult, train
from ..train.resolve import resolve_configs
from ..train.resume import STATE_FILE
from .options import TuneOptions
from .records import TrialRecord, record_of
from .space import SearchSpace
from .study import TRIALS_DIR, StudyRef, require_optuna, trial_folder

if TYPE_CHECKING:
    import optuna

LOG_NAME = "train.log"
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
    trial = study.ask()
    start = time.perf_counter()
    values = task.space.suggest(trial)
    run_dir = task.options.out / TRIALS_DIR / trial_folder(trial.number)
    run_dir.mkdir(parents=True, exist_ok=True)
    state, value, error = optuna.trial.TrialState.FAIL, None, None
    watch: PruneWatch | None = None
    try:
        train_cfg, model_cfg = resolve_configs(task.options.model, None,
                                               (*task.options.trial_sets, *task.space.overrides(values)),
                                               task.options.preset, store=task.options.store)
        watch = PruneWatch(trial, train_cfg.valid_metric)
        result = _train(task.options, run_dir, train_cfg, model_cfg, watch)
        value = _objective(result, train_cfg.valid_metric)
        state = optuna.trial.TrialState.COMPLETE
    except optuna.TrialPruned:
        state = optuna.trial.TrialState.PRUNED
    except Exception as e:
        error = str(e) or type(e).__name__
        if not isinstance(e, MissrecError):
            _finish(study, trial, state, value, watch, start, error, run_dir)
            raise
    return _finish(study, trial, state, value, watch, start, error, run_dir)


def _train(options: TuneOptions, run_dir: Path, train_cfg: Any, model_cfg: Any, watch: PruneWatch) -> TrainResult:
    store = options.store.resolve()
    data = RunData.cached(_data_cache, store, model_cfg)
    with open(run_dir / LOG_NAME, "w", buffering=1) as out:
        return train(options.model, store, run_dir, train_cfg, model_cfg, data=data,
                     log=lambda line: print(line, file=out), test=False, overwrite=True, on_validate=watch)


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
