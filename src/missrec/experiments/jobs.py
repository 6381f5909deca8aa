"""Run one job: adopt a finished run it repeats, or train (pre-train, evaluate) it and record
its place in the report (``cell.json``)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import MissrecError
from ..train.evalrun import popularity_run, zero_shot_run
from ..train.loop import RunData, train
from ..train.pretrain import pretrain
from .plan import Job, Plan, find_reusable, resolve_job
from .reuse import adopt_run
from .spec import Experiment

Log = Callable[[str], None]


def settle_job(exp: Experiment, plan: Plan, job: Job, head: str, log: Log) -> bool:
    """True when ``job`` needs no training: it is done, or it adopts a finished run it repeats."""
    if job.done:
        stale = job.stale()
        log(f"{head}: done, skipped ({job.run_dir / 'results.json'})"
            + (f"; {stale} (delete its folder to re-run)" if stale else ""))
        return True
    source = find_reusable(plan, job, init_checkpoint(plan, job))
    if source is None:
        return False
    adopt_run(source, job.run_dir, cell_meta(exp, job, plan))
    log(f"{head}: repeats the finished run {source}; adopting its results")
    return True


def run_job(exp: Experiment, plan: Plan, job: Job, cache: dict[tuple, Any], log: Log, progress: bool) -> dict:
    """Train ``job`` into its folder and return its results; a cell an earlier run left
    half-trained continues from its last complete epoch.

    ``cache`` keeps the last store loaded (by store, modalities and sequence length) for the
    next job, which often trains on the same one."""
    cell = job.cell
    init = init_checkpoint(plan, job)
    resolve_job(job, init)
    job.run_dir.mkdir(parents=True, exist_ok=True)
    (job.run_dir / "cell.json").write_text(json.dumps(cell_meta(exp, job, plan), indent=2) + "\n")
    if cell.kind == "pretrain":
        stores = [plan.stores[s] for s in cell.pretrain_stores]
        return pretrain(stores, job.run_dir, job.train_cfg, job.model_cfg, model_name=cell.model,
                        max_examples_per_domain=cell.max_per_domain, progress=progress, log=log, resume=True)
    if cell.kind == "zero-shot":
        return zero_shot_run(init, job.store.resolve(), job.run_dir, job.train_cfg, log=log)
    if cell.kind == "popularity":
        return popularity_run(job.store.resolve(), job.run_dir, job.train_cfg, log=log)
    result = train(cell.model, job.store.resolve(), job.run_dir, job.train_cfg, job.model_cfg,
                   init_from=init, data=RunData.cached(cache, job.store.resolve(), job.model_cfg), progress=progress,
                   log=log, resume=True)
    return result.results


def init_checkpoint(plan: Plan, job: Job) -> Path | None:
    """The pre-trained checkpoint a fine-tuning (or zero-shot) job starts from (None: from scratch)."""
    source = plan.source_of(job)
    if source is None:
        return None
    init = source.run_dir / "model.pt"
    if not init.exists():
        raise MissrecError(f"{job.cell.name}: pre-trained checkpoint {init} is missing (its pre-training cell "
                           "should have run first)")
    return init


def cell_meta(exp: Experiment, job: Job, plan: Plan) -> dict[str, Any]:
    """What ``cell.json`` records: where the run belongs in the report."""
    cell = job.cell
    source = plan.source_of(job)
    table = exp.tables.get(cell.table)
    table_id = cell.table or exp.name
    title = table.title if table else table_id
    if plan.preset and cell.kind == "train" and not cell.init_from:
        # the same analysis under another preset (and overrides) is another table, not more
        # seeds of this one
        table_id, title = f"{table_id}-{plan.preset}", f"{title}; MISSRec with --preset {plan.preset}"
        if plan.sets:
            digest = hashlib.sha1(" ".join(plan.sets).encode()).hexdigest()[:8]
            table_id, title = f"{table_id}-{digest}", title + "".join(f" --set {s}" for s in plan.sets)
    return {
        "experiment": exp.run_group, "cell": cell.name, "label": cell.label or cell.name,
        "table": table_id, "table_title": title,
        "table_note": table.note if table else "",
        "order": cell.order, "note": cell.note,
        "paper": {"table": cell.paper[0], "row": cell.paper[1]} if cell.paper else None,
        "store_recipe": cell.store, "sets": job.sets, "preset": job.preset, "seed": job.seed,
        "pretrain_cell": cell.init_from, "pretrain_seed": source.seed if source is not None else None,
        "kind": cell.kind, "facets": dict(cell.facets),
    }
