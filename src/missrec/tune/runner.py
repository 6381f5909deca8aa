"""A whole study: check the request, open (or resume) the study, run trials until the
study holds ``trials`` of them or ``timeout`` passes, then write ``trials.csv`` and
``best.yaml``.

With ``jobs`` > 1 the trials run in that many worker processes at once
(:mod:`missrec.workers`: spawned, and ending with this process), all reading and writing the
one SQLite study.
"""

from __future__ import annotations

import time
from concurrent.futures import FIRST_COMPLETED, Future, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from ..data.store import read_schema
from ..errors import MissrecError
from ..workers import worker_pool
from ..train.resolve import resolve_configs
from .options import TuneOptions
from .records import (BEST_FILE, TRIALS_CSV, TrialRecord, best_of, best_sections, record_of, summary_lines,
                      train_command, trial_line, write_best, write_trials_csv)
from .space import SearchSpace, check_space, default_values, load_space
from .study import (INTERRUPTED, STUDY_FILE, TRIALS_DIR, StudyRef, open_study, recover_interrupted,
                    require_optuna, study_lock)
from .trial import TrialTask, clear_cache, run_trial

Log = Callable[[str], None]
COUNTED = ("COMPLETE", "PRUNED", "FAIL")
"""Trial states that use up the budget: an interrupted trial is FAIL with a queued rerun,
and counts through that rerun instead."""


@dataclass
class TuneResult:
    """What a study holds once :func:`tune` returns."""

    out: Path
    trials: list[TrialRecord]
    """Every trial of the study, in order (earlier runs' too)."""
    best: TrialRecord | None
    """The complete trial with the highest validation score."""
    metric: str
    """The validation metric trials are judged on."""
    space: SearchSpace
    best_yaml: Path | None
    """``out/best.yaml`` (None until a trial completes)."""
    trials_csv: Path
    train_command: str | None
    """The ``missrec train`` command for the best setting."""
    ran: int = 0
    """Trials this call ran."""
    timed_out: bool = False
    """Trials were left to run when the timeout stopped new ones."""
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """A short report: trial counts, the best trials' scores and values, where best.yaml is."""
        counts, *table = summary_lines(self.trials, self.space, self.metric)
        lines = [f"study {self.out / STUDY_FILE}: {counts}", *table, *self.notes]
        if self.best is not None:
            lines += [f"best: trial {self.best.number} -> {self.best_yaml}", f"train it: {self.train_command}"]
        default = next((r for r in self.trials if r.default and r.state == "COMPLETE" and r.valid is not None), None)
        if default is not None and self.best is not None:
            lines.append(f"the default (trial {default.number}): valid {self.metric} {default.valid:.4f}; "
                         f"the best is {self.best.valid - default.valid:+.4f} from it")
        return "\n".join(lines)


def tune(model: str, store: str | Path, trials: int, out: str | Path, *, log: Log = print,
         **options: Any) -> TuneResult:
    """Tune ``model``'s declared hyper-parameters on ``store``'s validation split with Optuna.

    ``options`` are the other fields of :class:`TuneOptions` (``jobs``, ``timeout``,
    ``seed``, ``sets``, ``preset``, ``space``, ...). ``log`` receives one line per finished
    trial. Running it again with the same ``out`` continues the study up to ``trials``."""
    return run_study(TuneOptions(model, Path(store), trials, Path(out), **options), log)


def run_study(options: TuneOptions, log: Log = print) -> TuneResult:
    """Run the study :class:`TuneOptions` describes (see :func:`tune`)."""
    space = load_space(options.model, options.space)
    check_space(space, options.model, options.preset, tuple(options.trial_sets))
    what = identity(options, space)
    require_optuna()
    ref = StudyRef(options.out / STUDY_FILE, options.startup_trials, options.warmup_epochs, options.prune_patience)
    with study_lock(options.out):
        open_study(ref, what, options.store,
                   default_values(space, options.model, options.preset, tuple(options.trial_sets)))
        recover_interrupted(ref, options.out / TRIALS_DIR, log)
        try:
            ran, timed_out = _run_trials(options, space, ref, what["metric"], log)
        finally:
            clear_cache()
        return _write_outputs(options, space, ref, what["metric"], ran, timed_out)


def identity(options: TuneOptions, space: SearchSpace) -> dict[str, Any]:
    """What the study tunes; a study folder refuses to continue with anything else."""
    train_cfg, _ = resolve_configs(options.model, None, tuple(options.trial_sets), options.preset)
    schema = read_schema(options.store)
    # the interactions and item ids (the fingerprint), and where each feature matrix came from
    store = {"fingerprint": schema.get("fingerprint", ""),
             "features": {m: info.get("source") for m, info in sorted(schema["modalities"].items())}}
    return {"model": options.model, "store": store, "space": space.identity(), "preset": options.preset,
            "sets": options.identity_sets(), "metric": train_cfg.valid_metric}


def _records(ref: StudyRef) -> list[TrialRecord]:
    return [record_of(t) for t in ref.trials()]


def _counted(records: list[TrialRecord]) -> int:
    return sum(r.state in COUNTED and r.note != INTERRUPTED for r in records)


def _run_trials(options: TuneOptions, space: SearchSpace, ref: StudyRef, metric: str, log: Log) -> tuple[int, bool]:
    """Start trials until the study holds ``options.trials`` or the timeout passes; returns
    (trials run, whether the timeout stopped new ones)."""
    records = _records(ref)
    first_seed = options.seed + len(records)  # a fresh sampling seed for every trial ever started
    todo = max(0, options.trials - _counted(records))
    if todo == 0:
        log(f"the study holds {_counted(records)} trials already (--trials {options.trials}); none to run")
        return 0, False
    deadline = time.monotonic() + options.timeout if options.timeout is not None else None
    tasks = (TrialTask(ref, options, space, (first_seed + i) % 2**32) for i in range(todo))
    counted = options.trials - todo

    def finished(rec: TrialRecord) -> None:
        nonlocal counted
        counted += 1
        log(trial_line(rec, counted, options.trials, best_of(_records(ref)), metric))

    if options.jobs == 1:
        return _sequential(tasks, todo, deadline, finished, log)
    return _parallel(tasks, todo, min(options.jobs, todo), deadline, finished, log)


def _timed_out(deadline: float | None, left: int, log: Log) -> bool:
    if deadline is None or time.monotonic() < deadline:
        return False
    log(f"timeout: no new trial starts ({left} not run; run the command again to continue)")
    return True


def _sequential(tasks: Iterator[TrialTask], todo: int, deadline: float | None, finished: Callable[[TrialRecord], None],
                log: Log) -> tuple[int, bool]:
    for ran, task in enumerate(tasks):
        if _timed_out(deadline, todo - ran, log):
            return ran, True
        finished(run_trial(task))
    return todo, False


def _parallel(tasks: Iterator[TrialTask], todo: int, processes: int, deadline: float | None, finished: Callable[[TrialRecord], None],
              log: Log) -> tuple[int, bool]:
    """Keep ``processes`` trials running at once; after a trial's error no new one starts."""
    started, timed_out, error = 0, False, None
    running: set[Future] = set()
    with worker_pool(processes) as pool:
        while True:
            while error is None and not timed_out and started < todo and len(running) < processes:
                if _timed_out(deadline, todo - started, log):
                    timed_out = True
                    break
                running.add(pool.submit(run_trial, next(tasks)))
                started += 1
            if not running:
                break
            done, running = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                try:
                    finished(future.result())
                except BrokenProcessPool:
                    error = error or MissrecError("a trial's process died (killed, or out of memory?); "
                                                  "run the command again to rerun its trial")
                except Exception as e:  # reported once the running trials end
                    error = error or MissrecError(f"a trial failed: {str(e) or type(e).__name__}")
    if error is not None:
        raise error
    return started, timed_out


def _write_outputs(options: TuneOptions, space: SearchSpace, ref: StudyRef, metric: str, ran: int,
                   timed_out: bool) -> TuneResult:
    records = _records(ref)
    write_trials_csv(options.out / TRIALS_CSV, records, space, metric)
    best = best_of(records)
    result = TuneResult(options.out, records, best, metric, space, None, options.out / TRIALS_CSV, None, ran,
                        timed_out)
    if timed_out:
        result.notes.append(f"stopped starting trials after --timeout {options.timeout:g}s")
    if best is None:
        return result
    result.best_yaml = options.out / BEST_FILE
    result.train_command = train_command(options.model, options.preset, result.best_yaml, options.store,
                                         options.rerun_sets())
    write_best(result.best_yaml, best_sections(options.model, best, space), best, metric, result.train_command)
    return result
