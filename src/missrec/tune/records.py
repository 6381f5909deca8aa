"""What a study leaves to read: each trial as a record, ``trials.csv``, ``best.yaml``, and
the lines printed as trials finish and at the end."""

from __future__ import annotations

import csv
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from ..experiments.estimate import hms
from .space import SearchSpace, section_of

if TYPE_CHECKING:
    import optuna

BEST_FILE = "best.yaml"
TRIALS_CSV = "trials.csv"
TOP_ROWS = 5
"""Trials the summary table lists, best first."""
DEFAULT_ATTR = "default"
"""The user attribute marking the trial that trains the model's default."""
DEFAULT_NOTE = "the model's default"
CAPPED_ATTR = "capped"
"""The user attribute marking a complete trial that the epoch cap ended, not early stopping."""
CAPPED_NOTE = "ended at the epoch cap, still improving"


@dataclass
class TrialRecord:
    """One trial as the study stored it."""

    number: int
    state: str
    """COMPLETE, PRUNED, FAIL (or RUNNING / WAITING while a study runs)."""
    params: dict[str, Any] = field(default_factory=dict)
    valid: float | None = None
    """The best validation score it reached (a pruned trial's: before it was stopped)."""
    best_epoch: int | None = None
    epochs: int | None = None
    """Epochs it validated."""
    seconds: float | None = None
    note: str = ""
    """Why it failed, or that it was interrupted and ran again."""
    default: bool = False
    """It trained the model's default (a new study's first trial, when the default lies in
    the search space)."""
    capped: bool = False
    """It ran to the study's epoch cap while still improving: a larger cap might raise its score."""

    @property
    def notes(self) -> str:
        """Everything ``trials.csv`` says of it."""
        return "; ".join(n for n in (self.note, DEFAULT_NOTE if self.default else "",
                                     CAPPED_NOTE if self.capped else "") if n)


def record_of(trial: "optuna.trial.FrozenTrial") -> TrialRecord:
    attrs = trial.user_attrs
    valid = trial.value if trial.value is not None else attrs.get("valid")
    return TrialRecord(trial.number, trial.state.name, dict(trial.params), valid, attrs.get("best_epoch"),
                       attrs.get("epochs"), attrs.get("seconds"), attrs.get("note", ""),
                       bool(attrs.get(DEFAULT_ATTR, False)), bool(attrs.get(CAPPED_ATTR, False)))


def show_value(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def show_params(params: dict[str, Any]) -> str:
    return " ".join(f"{k}={show_value(v)}" for k, v in params.items())


def trial_line(rec: TrialRecord, counted: int, total: int, best: TrialRecord | None, metric: str) -> str:
    """The line printed when a trial ends: what it scored, the best so far, its values."""
    took = f"{hms(rec.seconds)}" if rec.seconds is not None else "?"
    if rec.valid is not None:
        score = f"valid {metric} {rec.valid:.4f} (epoch {rec.best_epoch} of {rec.epochs}, {took})"
    else:
        score = f"({took})"
    if rec.state == "FAIL":
        score += f": {rec.note}"
    lead = f"best {best.valid:.4f} (trial {best.number})" if best is not None else "no complete trial yet"
    values = f"{show_params(rec.params)}" + (f" ({DEFAULT_NOTE})" if rec.default else "")
    return f"trial {rec.number} {rec.state.lower()} [{counted}/{total}]  {score}  {lead}  {values}"


def best_of(records: list[TrialRecord]) -> TrialRecord | None:
    """The complete trial with the highest score (the earliest of a tie)."""
    complete = [r for r in records if r.state == "COMPLETE" and r.valid is not None]
    return max(complete, key=lambda r: (r.valid, -r.number)) if complete else None


def write_trials_csv(path: Path, records: list[TrialRecord], space: SearchSpace, metric: str) -> None:
    """One row per trial: number, state, each dimension, the score, best epoch, epochs, seconds, note."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["number", "state", *space.keys, f"valid_{metric}", "best_epoch", "epochs", "seconds", "note"])
        for r in records:
            w.writerow([r.number, r.state, *(r.params.get(k, "") for k in space.keys),
                        "" if r.valid is None else r.valid, "" if r.best_epoch is None else r.best_epoch,
                        "" if r.epochs is None else r.epochs, "" if r.seconds is None else r.seconds,
                        r.notes])


def best_sections(model: str, best: TrialRecord, space: SearchSpace) -> dict[str, dict[str, Any]]:
    """The best trial's values as config sections (a dimension's ``also`` fields included)."""
    sections: dict[str, dict[str, Any]] = {"train": {}, "model": {}}
    for p in space.params:
        for key in (p.key, *p.also):
            sec, name = section_of(key, model)
            sections[sec][name] = best.params[p.key]
    return sections


def train_command(model: str, preset: str | None, config: Path, store: Path, sets: list[str]) -> str:
    """The ``missrec train`` command that trains the best setting."""
    words = ["missrec", "train", "--model", model, *(["--preset", preset] if preset else []),
             "--config", str(config), "--data", str(store), "--out", "RUN"]
    for s in sets:
        words += ["--set", s]
    return shlex.join(words)


def write_best(path: Path, sections: dict[str, dict[str, Any]], best: TrialRecord, metric: str,
               command: str) -> None:
    """``best.yaml``: only the tuned fields, for ``missrec train --config``; a header says where
    they come from and how to train them."""
    head = (f"# missrec tune: the values of its best trial, {best.number} (valid {metric} {best.valid:.4f} at epoch "
            f"{best.best_epoch}),\n# and nothing else: the rest comes from the model's defaults. Train them with\n"
            f"#   {command}\n")
    path.write_text(head + yaml.safe_dump(sections, sort_keys=False))


def summary_lines(records: list[TrialRecord], space: SearchSpace, metric: str) -> list[str]:
    """A count of trials by state and a table of the best few complete ones, best first."""
    counts = {s: sum(r.state == s for r in records) for s in ("COMPLETE", "PRUNED", "FAIL")}
    lines = [f"{len(records)} trials: {counts['COMPLETE']} complete, {counts['PRUNED']} pruned, "
             f"{counts['FAIL']} failed"]
    ranked = sorted((r for r in records if r.state == "COMPLETE" and r.valid is not None),
                    key=lambda r: (-r.valid, r.number))[:TOP_ROWS]
    if not ranked:
        return lines
    head = ["trial", f"valid {metric}", "best epoch", *space.keys]
    rows = [[str(r.number), f"{r.valid:.4f}", str(r.best_epoch), *(show_value(r.params.get(k, "")) for k in space.keys)]
            for r in ranked]
    widths = [max(len(x) for x in col) for col in zip(head, *rows)]
    lines += ["  ".join(x.rjust(w) for x, w in zip(row, widths)) for row in (head, *rows)]
    capped = [r.number for r in records if r.state == "COMPLETE" and r.capped]
    if capped:
        lines.append(f"{len(capped)} of {counts['COMPLETE']} complete trials ended at the epoch cap while still "
                     f"improving (trial{'s' if len(capped) > 1 else ''} {', '.join(map(str, capped))}"
                     f"{', the best among them' if ranked[0].number in capped else ''}): "
                     "a larger --set epochs may raise their scores")
    return lines
