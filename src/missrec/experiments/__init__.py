"""The paper's analyses as runnable experiments (``missrec experiment NAME --out DIR``).

Each experiment (:data:`EXPERIMENTS`: table2, fig4, table3, table4, table5; smoke for tests)
is a declared list of cells (model, store, overrides). :func:`run_experiment` builds the
stores it needs from the shared raw data, runs every (cell, seed) (one at a time, or several
at once in worker processes), skipping those already done, and writes the report;
:func:`plan_experiment` / :func:`describe_plan` give the plan and a time estimate without
running anything.
"""

from .catalog import EXPERIMENTS
from .runner import Plan, cell_overrides, describe_plan, get_experiment, plan_experiment, run_experiment
from .spec import CellSpec, Experiment, TableSpec
from .stores import RECIPES, StoreRecipe, default_data_root, ensure_store, synthetic_dataset

__all__ = ["EXPERIMENTS", "RECIPES", "CellSpec", "Experiment", "Plan", "StoreRecipe", "TableSpec", "cell_overrides",
           "default_data_root", "describe_plan", "ensure_store", "get_experiment", "plan_experiment",
           "run_experiment", "synthetic_dataset"]
