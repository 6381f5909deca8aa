"""What ``missrec experiment`` was asked to do: one options object for planning and running."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import MissrecError


@dataclass
class ExperimentOptions:
    """The ``missrec experiment`` command line as data (each default is the command's default)."""

    name: str
    """The experiment (see :data:`missrec.experiments.catalog.EXPERIMENTS`)."""
    out: Path
    """Folder for stores/, pretrain/, runs/ and the report."""
    seeds: int = 1
    """Seeds per cell: BASE_SEED, BASE_SEED + 1, ..."""
    data_root: Path | None = None
    """Raw datasets folder (None: :func:`missrec.experiments.stores.default_data_root`)."""
    sets: list[str] = field(default_factory=list)
    """The user's ``--set`` overrides (``pretrain.K=V`` / ``finetune.K=V`` limit their scope)."""
    data: Path | None = None
    """One existing store that replaces every cell's store (debugging, tests)."""
    max_per_domain: int | None = None
    """Pre-training cells: at most this many sequences per domain (None: the cell's own)."""
    only: list[str] = field(default_factory=list)
    """Run just these cells (and the pre-training cells they start from); empty: all."""
    reuse: list[Path] = field(default_factory=list)
    """Other experiment folders whose finished runs and built stores may be adopted."""
    preset: str | None = None
    """A model preset for every from-scratch training cell whose model has presets."""
    processes: int = 1
    """Runs trained at once, each in its own worker process (``--jobs``)."""
    dry_run: bool = False
    """Plan and print, run nothing."""
    plots: bool = True
    """Draw the report's figures (needs matplotlib)."""
    progress: bool = False
    """Progress bars while training (sequential runs only)."""
    targets: list[str] = field(default_factory=list)
    """The transfer experiment's target domains (empty: its defaults)."""
    fractions: list[float] = field(default_factory=list)
    """The transfer experiment's shares of the target's training users (empty: its defaults)."""
    tuned: Path | None = None
    """The defaults experiment's tuning folder (``DOMAIN/MODEL/best.yaml``, ``across/MODEL/choice.yaml``)."""

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        self.data_root = Path(self.data_root) if self.data_root is not None else None
        self.data = Path(self.data) if self.data is not None else None
        self.tuned = Path(self.tuned) if self.tuned is not None else None
        self.sets, self.only = list(self.sets), list(self.only)
        self.targets, self.fractions = list(self.targets), [float(f) for f in self.fractions]
        self.reuse = [Path(r) for r in self.reuse]
        if self.seeds < 1:
            raise MissrecError(f"--seeds must be >= 1, got {self.seeds}")
        if self.processes < 1:
            raise MissrecError(f"--jobs must be >= 1, got {self.processes}")
