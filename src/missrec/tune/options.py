"""What ``missrec tune`` was asked to do: one options object, each default given once."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..config import SPEED_ONLY_TRAIN_KEYS, STOPPING_TRAIN_KEYS, parse_overrides
from ..errors import MissrecError
from ..model.registry import get_model_spec
from ..presets import preset_path

DEFAULT_SEED = 2023
"""Seeds the sampler (the trials' own training seed is ``train.seed``, as for ``missrec train``)."""
BUDGET_KEYS = STOPPING_TRAIN_KEYS
"""Fixed overrides that size a trial rather than describe the model: a run of the best
setting leaves them out."""


@dataclass
class TuneOptions:
    """The ``missrec tune`` command line as data (each default is the command's default)."""

    model: str
    """The model to tune (it needs a search space: ``presets/search/<model>.yaml``)."""
    store: Path
    """The dataset store: trials train on its training split and are scored on its validation split."""
    trials: int
    """Trials in the study, counting those of earlier runs into the same ``out`` (complete,
    pruned or failed; an interrupted trial runs again and counts once)."""
    out: Path
    """Folder of the study: ``study.db``, ``best.yaml``, ``trials.csv``, ``trials/<number>/``."""
    jobs: int = 1
    """Trials run at once, each in its own process."""
    timeout: float | None = None
    """Seconds after which no new trial starts (running ones finish); None: no limit."""
    seed: int = DEFAULT_SEED
    """Seeds the TPE sampler: the same seed, trials and ``jobs=1`` repeat the same study."""
    sets: list[str] = field(default_factory=list)
    """Fixed ``--set KEY=VALUE`` overrides every trial trains with (e.g. ``epochs=30``)."""
    preset: str | None = None
    """The model preset trials start from (None: the model's default, as ``missrec train``)."""
    space: Path | None = None
    """A search-space file to use instead of the model's declared one."""
    startup_trials: int = 5
    """Trials sampled at random before TPE models the results, and finished before any is pruned."""
    warmup_epochs: int = 3
    """Validated epochs a trial always trains before it may be pruned."""
    prune_patience: int = 3
    """Validated epochs without a new best before a trial below the median may be pruned: a
    slow starter (a low learning rate, a large batch) that is still improving is not cut
    for being behind fast ones at the same epoch."""

    def __post_init__(self) -> None:
        self.store, self.out = Path(self.store), Path(self.out)
        self.space = Path(self.space) if self.space is not None else None
        self.sets = list(self.sets)
        get_model_spec(self.model)
        for flag, value, ok, expected in (
                ("--trials", self.trials, self.trials >= 1, ">= 1"), ("--jobs", self.jobs, self.jobs >= 1, ">= 1"),
                ("--seed", self.seed, 0 <= self.seed < 2**32, "in [0, 2**32)"),
                ("startup_trials", self.startup_trials, self.startup_trials >= 0, ">= 0"),
                ("warmup_epochs", self.warmup_epochs, self.warmup_epochs >= 0, ">= 0"),
                ("prune_patience", self.prune_patience, self.prune_patience >= 0, ">= 0")):
            if not ok:
                raise MissrecError(f"{flag} must be {expected}, got {value}")
        if self.timeout is not None and not self.timeout > 0:
            raise MissrecError(f"--timeout must be > 0 seconds, got {self.timeout}")
        if self.preset is not None:
            preset_path(self.model, self.preset)
        if self.out.exists() and not self.out.is_dir():
            raise MissrecError(f"--out {self.out}: is a file, not a folder")

    @property
    def trial_sets(self) -> list[str]:
        """What every trial is given on top of its own values: the fixed overrides, with
        one torch thread per trial unless they set ``threads``."""
        user = parse_overrides(self.sets)
        threads = any(k.rsplit(".", 1)[-1] == "threads" for k in user)
        return [*self.sets, *([] if threads else ["train.threads=1"])]

    def identity_sets(self) -> list[str]:
        """The fixed overrides that change what a trial computes, in a canonical order
        (speed settings such as threads dropped)."""
        user = parse_overrides(self.sets)
        return sorted(f"{k}={v}" for k, v in user.items() if k.rsplit(".", 1)[-1] not in SPEED_ONLY_TRAIN_KEYS)

    def rerun_sets(self) -> list[str]:
        """The fixed overrides a run of the best setting needs too (not the trials' budget)."""
        return [s for s in self.identity_sets() if s.split("=", 1)[0].rsplit(".", 1)[-1] not in BUDGET_KEYS]
