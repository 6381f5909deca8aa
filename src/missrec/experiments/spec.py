"""What an experiment is: a declared list of cells (model, store, overrides) and its tables."""

from __future__ import annotations

from dataclasses import dataclass, field


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
    kind: str = "train"
    """'train' (``missrec train``) or 'pretrain' (``missrec pretrain``, folder ``DIR/pretrain/NAME/seed-S``)."""
    pretrain_stores: tuple[str, ...] = ()
    """Pre-training cells: the domains' store recipes."""
    max_per_domain: int = 0
    """Pre-training cells: at most this many sequences per domain (0: all)."""
    init_from: str | None = None
    """Name of a pre-training cell of this experiment to fine-tune from (its checkpoint of the same seed)."""
    preset: str | None = None
    """The model preset the cell starts from unless ``--preset`` names one (None: the model's
    default; analyses of the paper's own model name 'paper')."""


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
