"""Run an experiment: plan its cells, build the stores it needs, train each (cell, seed)
with skip-if-done (one at a time, or several at once: :mod:`.parallel`), then write the report.

Folder layout under ``DIR``::

    stores/NAME/               dataset stores built from the data root (recipe.json = complete)
    pretrain/CELL/seed-S/      pre-training runs (model.pt, results.json, history.jsonl)
    runs/CELL/seed-S/          training runs (results.json, history.jsonl, test ranks, cell.json)
    report.md, report.html, *.png

A (cell, seed) whose ``results.json`` exists is not run again, so an interrupted experiment
resumes where it stopped, and two analyses sharing a folder share their runs. A (cell, seed)
that repeats a finished run exactly (same model, resolved config, seed, data and starting
checkpoint), in this folder or in a ``reuse`` folder, adopts that run instead of training
again (:mod:`missrec.experiments.reuse`); ready stores of the same recipe are used in place.
"""

from __future__ import annotations

import time
from typing import Any

from ..errors import MissrecError
from ..report import write_report
from .jobs import run_job, settle_job
from .options import ExperimentOptions
from .parallel import run_jobs_in_parallel
from .plan import Plan, plan_experiment
from .progress import Log, describe_plan, finished_line, job_head, running_line
from .stores import RECIPES, ensure_store, store_ready


def run_experiment(options: ExperimentOptions, log: Log = print, train_log: Log | None = None) -> Plan:
    """Plan, (unless ``options.dry_run``) run every pending (cell, seed) and write the report.

    ``train_log`` takes the per-epoch lines of sequential runs (default: ``log``); with
    ``options.processes`` > 1 they go to ``RUN_DIR/train.log`` instead."""
    plan = plan_experiment(options)
    log(describe_plan(plan, options.processes))
    if options.dry_run:
        return plan
    if plan.problems:
        raise MissrecError("cannot run experiment " + options.name + ": " + "; ".join(plan.problems))
    if options.data is None:
        for s, path in plan.stores.items():
            if not store_ready(path):
                ensure_store(RECIPES[s], path.parent, plan.data_root, log)
    if options.processes > 1:
        run_jobs_in_parallel(plan, options.processes, log)
    else:
        _run_in_turn(plan, log, train_log if train_log is not None else log, options.progress)
    sources = [p for p in (plan.out / "runs", plan.out / "pretrain") if p.exists()]
    files = write_report(sources, plan.out, title=f"missrec experiment {plan.experiment.name}", plots=options.plots)
    log(f"report: {files.markdown} and {files.html}")
    return plan


def _run_in_turn(plan: Plan, log: Log, train_log: Log, progress: bool) -> None:
    """Run the pending jobs one after another, in plan order (pre-training first)."""
    t0 = time.perf_counter()
    cache: dict[tuple, Any] = {}
    for i, job in enumerate(plan.jobs, 1):
        head = job_head(plan, i, job)
        if settle_job(plan.experiment, plan, job, head, log):
            continue
        log(running_line(head, job))
        start = time.perf_counter()
        res = run_job(plan.experiment, plan, job, cache, train_log, progress)
        log(finished_line(head, res, time.perf_counter() - start, time.perf_counter() - t0))
