"""One setting for every catalogue: the best worst case over several domains' studies
(``missrec tune-across``).

Each domain has a study (``missrec tune`` on that domain's store, all with one model, search
space, preset and fixed overrides). Its best few complete trials are the candidates, with
the model's current default. Every candidate is trained on every domain it was not tuned
on, as that domain's trials were (the same preset, overrides and seed, early stopping on
validation), and each validation score is divided by the best seen on that domain (any of
its study's trials or any candidate). A setting a study has already trained (its own
trials, or the same values sampled on another domain too) is not trained again, nor is the
default on a domain whose study trained today's default values (``missrec tune`` queues the
default first). The chosen
setting is the candidate whose lowest ratio over the domains is highest (ties: the higher
mean ratio): a default that is never far from what tuning on a domain reaches. Test splits
are never read.

A candidate's score on its own domain is its trial's: the best of a study, so a little
lucky (the winner's curse). Its own domain is seldom its worst, so the choice, which reads
each candidate's worst domain, is little affected.

Runs go to ``OUT/runs/<domain>/<candidate>/`` and resume where a killed command left them;
``OUT/scores.csv``, ``OUT/table.md`` and ``OUT/choice.yaml`` (a ``missrec train --config``
file) are written once every run has finished.
"""

from __future__ import annotations

import csv
import json
import math
import time
from concurrent.futures import as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import yaml

from ..data.store import read_schema
from ..errors import MissrecError
from ..locks import FolderLock
from ..train.loop import RunData, train
from ..train.resolve import resolve_configs
from ..workers import worker_pool
from .records import TrialRecord, best_sections, record_of, show_params
from .space import SearchSpace, default_values
from .study import IDENTITY_ATTR, STORE_PATH_ATTR, STUDY_FILE, STUDY_NAME, require_optuna
from .trial import LOG_NAME

Log = Callable[[str], None]
DEFAULT = "default"
"""The candidate with no tuned value: the model's current default (its preset's)."""
RUNS_DIR = "runs"
SCORES_CSV = "scores.csv"
TABLE_MD = "table.md"
CHOICE_FILE = "choice.yaml"
RESULTS_FILE = "results.json"


@dataclass(frozen=True)
class Domain:
    """One domain's study and the store its trials trained on."""

    name: str
    """The store folder's name (tables and run folders use it)."""
    study: Path
    store: Path
    trials: tuple[TrialRecord, ...]

    def completed(self) -> list[TrialRecord]:
        """Its study's complete trials, best first."""
        return sorted((t for t in self.trials if t.state == "COMPLETE" and t.valid is not None),
                      key=lambda t: (-t.valid, t.number))


@dataclass(frozen=True)
class Candidate:
    """A setting to score on every domain: a trial's values, or none (the default)."""

    label: str
    """``default``, or ``<domain>-t<trial number>``."""
    params: tuple[tuple[str, Any], ...] = ()
    origin: str | None = None
    """The domain whose study proposed it."""
    trial: TrialRecord | None = None

    @property
    def values(self) -> dict[str, Any]:
        return dict(self.params)


@dataclass(frozen=True)
class Setup:
    """What every study shares: how a candidate trains on any of the domains."""

    model: str
    space: SearchSpace
    preset: str | None
    sets: tuple[str, ...]
    """The studies' fixed overrides (their epoch budget included)."""
    metric: str


@dataclass(frozen=True)
class RunTask:
    """One candidate trained on one domain (picklable: it is sent to worker processes)."""

    setup: Setup
    candidate: Candidate
    domain: str
    store: Path
    run_dir: Path


@dataclass
class AcrossResult:
    """What :func:`tune_across` found."""

    domains: list[Domain]
    candidates: list[Candidate]
    scores: dict[tuple[str, str], float]
    """Validation score by (candidate label, domain name)."""
    best: dict[str, float]
    """The best validation score seen on each domain."""
    metric: str
    choice: Candidate | None = None
    choice_yaml: Path | None = None
    table: Path | None = None
    ran: int = 0
    """Runs this call trained (the others were read back)."""

    def ratio(self, label: str, domain: str) -> float:
        return self.scores[(label, domain)] / self.best[domain]

    def worst(self, label: str) -> float:
        return min(self.ratio(label, d.name) for d in self.domains)

    def mean(self, label: str) -> float:
        return sum(self.ratio(label, d.name) for d in self.domains) / len(self.domains)

    def ranked(self) -> list[Candidate]:
        """Candidates best first: the highest worst-case ratio, then the highest mean ratio."""
        return sorted(self.candidates, key=lambda c: (-self.worst(c.label), -self.mean(c.label)))

    def table_lines(self) -> list[str]:
        """A Markdown table: each candidate's score and ratio on every domain, best first."""
        names = [d.name for d in self.domains]
        head = ["candidate", *names, "worst ratio", "mean ratio", "values"]
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for c in self.ranked():
            cells = [f"{self.scores[(c.label, n)]:.4f} ({self.ratio(c.label, n):.3f})" for n in names]
            mark = "**" if self.choice is not None and c.label == self.choice.label else ""
            lines.append("| " + " | ".join([f"{mark}{c.label}{mark}", *cells, f"{self.worst(c.label):.3f}",
                                             f"{self.mean(c.label):.3f}", show_params(c.values) or "(defaults)"])
                         + " |")
        lines.append("| best seen on the domain | " + " | ".join(f"{self.best[n]:.4f}" for n in names) + " | | | |")
        return lines

    def summary(self) -> str:
        lines = [f"{len(self.candidates)} candidates on {len(self.domains)} domains "
                 f"(valid {self.metric}; in brackets, the ratio to the domain's best)", *self.table_lines()]
        if self.choice is not None:
            lines.append(f"chosen: {self.choice.label} (worst ratio {self.worst(self.choice.label):.3f}) -> "
                         f"{self.choice_yaml}")
        return "\n".join(lines)


def tune_across(model: str, studies: list[str | Path], out: str | Path, *, top: int = 3, jobs: int = 1,
                log: Log = print) -> AcrossResult:
    """Choose ``model``'s setting with the best worst case over the domains of ``studies``
    (``missrec tune`` folders, one per domain): see the module's docstring."""
    if top < 1 or jobs < 1:
        raise MissrecError(f"--top and --jobs must be >= 1, got {top} and {jobs}")
    out = Path(out)
    setup, domains = _read_studies(model, [Path(s) for s in studies])
    default = default_values(setup.space, model, setup.preset, setup.sets)
    candidates = _candidates(domains, top, default)
    with FolderLock(out, "missrec tune-across"):
        scores = {(c.label, d.name): t.valid for c in candidates if c.params for d in domains
                  for t in d.completed() if tuple(sorted(t.params.items())) == c.params}
        # a study whose first trial trained today's default has scored it on its store already
        scores.update({(DEFAULT, d.name): t.valid for d in domains for t in d.completed() if t.params == default})
        tasks = [RunTask(setup, c, d.name, d.store, out / RUNS_DIR / d.name / c.label)
                 for d in domains for c in candidates if (c.label, d.name) not in scores]
        log(f"{len(candidates)} candidates on {len(domains)} domains: {len(tasks)} runs "
            f"({sum((t.run_dir / RESULTS_FILE).exists() for t in tasks)} finished before)")
        ran = _run_all(tasks, jobs, scores, log)
        best = {d.name: max([d.completed()[0].valid, *(s for (_, n), s in scores.items() if n == d.name)])
                for d in domains}
        result = AcrossResult(domains, candidates, scores, best, setup.metric, ran=ran)
        result.choice = result.ranked()[0]
        _write(out, setup, result)
    return result


def _read_studies(model: str, folders: list[Path]) -> tuple[Setup, list[Domain]]:
    """Every study's setup (they must agree) and its domain; errors name the study."""
    if len(folders) < 2:
        raise MissrecError("give at least two studies (--study DIR, one per domain)")
    optuna = require_optuna()
    setups, domains = [], []
    for folder in folders:
        path = folder / STUDY_FILE
        if not path.is_file():
            raise MissrecError(f"{folder}: not a missrec tune study (no {STUDY_FILE})")
        try:
            study = optuna.load_study(study_name=STUDY_NAME, storage=f"sqlite:///{path.resolve()}")
        except Exception as e:  # optuna's and sqlalchemy's errors alike
            raise MissrecError(f"{path}: not a readable missrec tune study ({str(e).splitlines()[0]})") from None
        what, store = study.user_attrs.get(IDENTITY_ATTR), study.user_attrs.get(STORE_PATH_ATTR)
        if not what:
            raise MissrecError(f"{folder}: its study records no setup; is it a missrec tune study?")
        if what["model"] != model:
            raise MissrecError(f"{folder}: tunes {what['model']}, not {model}")
        if not store:
            raise MissrecError(f"{folder}: its study does not record its store (made by an older missrec); run its "
                               "`missrec tune` command once more to record it (with --trials no higher than the "
                               "trials it holds, no new trial runs)")
        store = Path(store)
        if read_schema(store).get("fingerprint", "") != what["store"]["fingerprint"]:
            raise MissrecError(f"{store}: no longer holds the data {folder}'s study tuned on")
        space = SearchSpace.from_identity(what["space"], "the studies' search space")
        setups.append(Setup(model, space, what["preset"], tuple(what["sets"]), what["metric"]))
        domains.append(Domain(store.name, folder, store,
                              tuple(record_of(t) for t in study.get_trials(deepcopy=False))))
    for folder, setup in zip(folders[1:], setups[1:]):
        if setup != setups[0]:
            raise MissrecError(f"{folder}: its study searched another way than {folders[0]}'s (search space, "
                               "preset, fixed --set or metric); the domains must be tuned alike")
    names = [d.name for d in domains]
    if len(set(names)) != len(names) or len({d.store.resolve() for d in domains}) != len(domains):
        raise MissrecError(f"two studies tuned on the same store or on stores named alike ({', '.join(names)}); "
                           "one study per domain")
    return setups[0], domains


def _candidates(domains: list[Domain], top: int, default: dict[str, Any] | None) -> list[Candidate]:
    """The default, then each domain's best ``top`` complete trials other than the default's
    values (a setting proposed twice once)."""
    chosen, seen = [Candidate(DEFAULT)], set()
    for d in domains:
        complete = d.completed()
        if not complete:
            raise MissrecError(f"{d.study}: no trial has completed yet")
        for t in [t for t in complete if t.params != default][:top]:
            params = tuple(sorted(t.params.items()))
            if params not in seen:
                seen.add(params)
                chosen.append(Candidate(f"{d.name}-t{t.number}", params, d.name, t))
    return chosen


def _run_all(tasks: list[RunTask], jobs: int, scores: dict[tuple[str, str], float], log: Log) -> int:
    """Read back the finished runs and train the others, filling ``scores``; returns the runs trained."""
    todo = []
    for task in tasks:
        finished = _finished_score(task)
        if finished is None:
            todo.append(task)
        else:
            scores[(task.candidate.label, task.domain)] = finished
    t0 = time.perf_counter()
    for n, (task, score) in enumerate(_scored(todo, jobs), 1):
        scores[(task.candidate.label, task.domain)] = score
        log(f"[{n}/{len(todo)}] {task.candidate.label} on {task.domain}: valid {task.setup.metric} {score:.4f}  "
            f"({time.perf_counter() - t0:.0f}s in all)")
    return len(todo)


def _scored(todo: list[RunTask], jobs: int) -> Iterator[tuple[RunTask, float]]:
    """Each task with its score as its run ends: in turn, or ``jobs`` at a time in worker
    processes (after a failure no new run starts; the running ones finish first)."""
    if jobs == 1 or len(todo) <= 1:
        for task in todo:
            yield task, score_run(task)
        return
    error: BaseException | None = None
    with worker_pool(min(jobs, len(todo))) as pool:
        futures = {pool.submit(score_run, task): task for task in todo}
        for future in as_completed(futures):
            if future.cancelled():
                continue
            if future.exception() is None:
                yield futures[future], future.result()
            elif error is None:
                error = future.exception()
                for other in futures:
                    other.cancel()
    if error is not None:
        raise MissrecError(f"a run failed ({error}); the finished runs are kept: run the command again to go "
                           "on") from error


def _finished_score(task: RunTask) -> float | None:
    path = task.run_dir / RESULTS_FILE
    if not path.is_file():
        return None
    return _valid(json.loads(path.read_text()), task)


def _valid(results: dict[str, Any], task: RunTask) -> float:
    score = results.get("valid", {}).get(task.setup.metric)
    if score is None or not math.isfinite(score):
        raise MissrecError(f"{task.run_dir}: no finite validation {task.setup.metric}")
    return float(score)


_cache: dict[tuple, RunData] = {}
"""The store this process's last run loaded, for its next run on the same store."""


def score_run(task: RunTask) -> float:
    """Train ``task``'s candidate on its domain (resuming a killed run), validation only;
    its best validation score."""
    setup = task.setup
    sets = (*setup.sets, "train.threads=1", *setup.space.overrides(task.candidate.values))
    train_cfg, model_cfg = resolve_configs(setup.model, None, sets, setup.preset, store=task.store)
    task.run_dir.mkdir(parents=True, exist_ok=True)
    data = RunData.cached(_cache, task.store.resolve(), model_cfg)
    with open(task.run_dir / LOG_NAME, "a", buffering=1) as out:
        result = train(setup.model, task.store.resolve(), task.run_dir, train_cfg, model_cfg, data=data,
                       log=lambda line: print(line, file=out), test=False, resume=True)
    return _valid(result.results, task)


def _write(out: Path, setup: Setup, result: AcrossResult) -> None:
    """``scores.csv`` (one row per candidate and domain), ``table.md`` and ``choice.yaml``."""
    with open(out / SCORES_CSV, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["candidate", "origin", "trial", "domain", f"valid_{setup.metric}", "ratio", *setup.space.keys])
        for c in result.candidates:
            for d in result.domains:
                w.writerow([c.label, c.origin or "", "" if c.trial is None else c.trial.number, d.name,
                            result.scores[(c.label, d.name)], round(result.ratio(c.label, d.name), 6),
                            *(c.values.get(k, "") for k in setup.space.keys)])
    result.table = out / TABLE_MD
    result.table.write_text("\n".join(result.table_lines()) + "\n")
    choice = result.choice
    result.choice_yaml = out / CHOICE_FILE
    if choice.label == DEFAULT:
        sections: dict[str, dict[str, Any]] = {}
    else:
        sections = best_sections(setup.model, TrialRecord(0, "COMPLETE", choice.values), setup.space)
    ratios = ", ".join(f"{d.name} {result.ratio(choice.label, d.name):.3f}" for d in result.domains)
    head = (f"# missrec tune-across: candidate {choice.label}, the best worst case over {len(result.domains)} "
            f"domains\n# (valid {setup.metric} as a share of each domain's best: {ratios}).\n"
            "# Only the tuned fields; the rest comes from the model's defaults"
            + (f" (preset {setup.preset})" if setup.preset else "") + ".\n")
    result.choice_yaml.write_text(head + (yaml.safe_dump(sections, sort_keys=False) if sections else "{}\n"))
