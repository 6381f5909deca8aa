"""The paper's analyses as runnable experiments (``missrec experiment NAME --out DIR``).

Each experiment (:data:`EXPERIMENTS`: table2, fig4, table3, table4, table5, baselines,
transfer; smoke for tests) is a declared list of cells (model, store, overrides). :func:`run_experiment` builds the
stores it needs from the shared raw data, runs every (cell, seed) (one at a time, or several
at once in worker processes), skipping those already done, and writes the report;
:func:`plan_experiment` / :func:`describe_plan` give the plan and a time estimate without
running anything. Both take an :class:`ExperimentOptions` (the command line as data).

Modules, in dependency order: ``spec`` (what a cell is), ``transfer`` (the transfer
analysis's cells, built for its ``--targets`` and ``--fractions``), ``catalog`` (the experiments),
``stores`` (building the datasets), ``options``, ``overrides`` (a cell's ``--set`` list),
``estimate`` (time estimates), ``reuse`` (finding a finished run to adopt), ``plan`` (jobs
with their resolved configs), ``progress`` (printed lines), ``jobs`` (running one job),
``parallel`` (several at once), ``runner`` (the whole experiment).
"""

from .catalog import EXPERIMENTS, get_experiment
from .options import ExperimentOptions
from .overrides import cell_overrides
from .plan import Job, Plan, plan_experiment
from .progress import describe_plan
from .runner import run_experiment
from .spec import CellSpec, Experiment, TableSpec
from .stores import RECIPES, StoreRecipe, default_data_root, ensure_store

__all__ = ["EXPERIMENTS", "RECIPES", "CellSpec", "Experiment", "ExperimentOptions", "Job", "Plan", "StoreRecipe",
           "TableSpec", "cell_overrides", "default_data_root", "describe_plan", "ensure_store", "get_experiment",
           "plan_experiment", "run_experiment"]
