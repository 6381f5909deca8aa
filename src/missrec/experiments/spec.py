"""What an experiment is: a declared list of cells (model, store, overrides) and its tables."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

CellKind = Literal["train", "pretrain", "zero-shot", "popularity"]

BASE_SEED = 2023
"""Seeds are BASE_SEED, BASE_SEED + 1, ... (TrainConfig's default seed first)."""


@dataclass(frozen=True)
class CellSpec:
    """One setting of an analysis; it runs once per seed."""

    name: str
    """Unique within the experiment; the run folder is ``DIR/runs/NAME/seed-S``."""
    model: str
    """Registered model name (``missrec train --model``)."""
    store: str
    """Store recipe name (see :mod:`missrec.experiments.stores`); pre-training cells: unused."""
    sets: tuple[str, ...] = ()
    """``key=value`` config overrides, as ``--set`` takes them."""
    label: str = ""
    """Row label in the report."""
    table: str = ""
    """Report table id the row belongs to."""
    order: int = 0
    """Row position within the table."""
    paper: tuple[str, str] | None = None
    """(paper table, paper row) to show beside ours (see :mod:`missrec.report.paper`)."""
    note: str = ""
    """Printed after the label (e.g. how a variant maps onto our config)."""
    kind: CellKind = "train"
    """'train' (``missrec train``), 'pretrain' (``missrec pretrain``, folder ``DIR/pretrain/NAME/seed-S``),
    'zero-shot' (the ``init_from`` cell's model evaluated on ``store`` untuned, ``missrec evaluate``) or
    'popularity' (items ranked by training interactions; nothing trains)."""
    pretrain_stores: tuple[str, ...] = ()
    """Pre-training cells: the domains' store recipes."""
    max_per_domain: int = 0
    """Pre-training cells: at most this many sequences per domain (0: all)."""
    init_from: str | None = None
    """Name of a pre-training cell of this experiment to fine-tune from (its checkpoint of the same seed)."""
    preset: str | None = None
    """The model preset the cell starts from unless ``--preset`` names one (None: the model's
    default; analyses of the paper's own model name 'paper')."""
    seed: int | None = None
    """Run once, with this seed, whatever ``--seeds`` (e.g. one pre-training that every seed of
    its fine-tuning cells starts from); None: once per seed."""
    facets: tuple[tuple[str, str], ...] = ()
    """(name, value) pairs the report lays the cell out by (e.g. a transfer cell's target,
    regime and training fraction), written to ``cell.json``."""

    @property
    def has_model(self) -> bool:
        """Whether the cell's runs have a model configuration (all but popularity cells)."""
        return self.kind != "popularity"


@dataclass(frozen=True)
class TableSpec:
    title: str
    note: str = ""


@dataclass(frozen=True)
class Experiment:
    name: str
    description: str
    cells: tuple[CellSpec, ...]
    tables: dict[str, TableSpec] = field(default_factory=dict)
    defaults: tuple[str, ...] = ()
    """Overrides applied to every cell before the cell's own (the user's --set come last)."""
    hidden: bool = False
    """Left out of the command's help list (e.g. the smoke test)."""
    runs_of: str | None = None
    preset_refused: str = ""
    """Why ``--preset`` is refused (empty: it is taken), e.g. an analysis whose cells must share
    one architecture."""
    plan_note: str = ""
    """A line the plan prints (e.g. cells left out until their inputs exist)."""
    """Another experiment whose cells (and runs, in a shared folder) this one reuses."""

    @property
    def run_group(self) -> str:
        """The name recorded in every run's cell.json (shared by experiments that reuse runs)."""
        return self.runs_of or self.name

    def stores(self) -> list[str]:
        """Store recipes the experiment needs, in first-use order."""
        out: list[str] = []
        for c in self.cells:
            for s in (c.pretrain_stores if c.kind == "pretrain" else (c.store,)):
                if s not in out:
                    out.append(s)
        return out
