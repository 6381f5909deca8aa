"""What an experiment prints: the plan (``--dry-run``) and one line per job as it goes."""

from __future__ import annotations

from collections.abc import Callable

from .estimate import TYPICAL_EPOCHS, hms
from .plan import Job, Plan
from .stores import RECIPES, store_ready

Log = Callable[[str], None]


def job_head(plan: Plan, index: int, job: Job) -> str:
    """How progress lines name a job: ``[i/n] CELL seed S``."""
    return f"[{index}/{len(plan.jobs)}] {job.cell.name} seed {job.seed}"


def running_line(head: str, job: Job) -> str:
    return f"{head}: running ({job.cell.label or job.cell.kind})"


def finished_line(head: str, results: dict, took_s: float, elapsed_s: float) -> str:
    score = (results.get("test") or {}).get("ndcg@10")
    return (f"{head}: finished in {hms(took_s)}" + (f", test ndcg@10 {score:.4f}" if score is not None else "")
            + f" (elapsed {hms(elapsed_s)})")


def _job_line(plan: Plan, index: int, job: Job) -> str:
    c = job.cell
    what = (f"pretrain {c.model} on {'+'.join(c.pretrain_stores)}" if c.kind == "pretrain"
            else f"{c.kind} on {c.store}" if c.kind == "popularity"
            else f"{c.model} on {c.store}" + (f" {c.kind} from {c.init_from}" if c.kind == "zero-shot"
                                              else f" from {c.init_from}" if c.init_from else ""))
    state = (("done*" if job.stale() else "done") if job.done else "reuse" if job.reuse_from is not None
             else f"~{hms(job.estimate_s)}")
    sets = " ".join(s for s in job.sets if not s.startswith("train.seed="))
    return (f"  [{index:>2}/{len(plan.jobs)}] {c.name:<28} seed {job.seed}  {state:<9} {what}"
            + (f"  ({c.label})" if c.label else "") + (f"  --preset {job.preset}" if job.preset else "")
            + (f"  --set {sets}" if sets else ""))


def describe_plan(plan: Plan, processes: int = 1) -> str:
    """The planned cells, their state and the estimated time (what --dry-run prints)."""
    exp = plan.experiment
    lines = [f"experiment {exp.name}: {exp.description}",
             f"output: {plan.out}   data root: {plan.data_root}", ""]
    lines.append("stores:")
    for name, path in plan.stores.items():
        state = "ready" if store_ready(path) or (path / "schema.json").exists() else "to build"
        recipe = RECIPES.get(name)
        lines.append(f"  {name:<22} {state:<9} {recipe.description if recipe else path}")
    lines += ["", f"cells ({len({j.cell.name for j in plan.jobs})} settings x "
                  f"{len({j.seed for j in plan.jobs})} seed(s) = {len(plan.jobs)} runs):"]
    lines += [_job_line(plan, i, j) for i, j in enumerate(plan.jobs, 1)]
    if plan.experiment.plan_note:
        lines.append(f"  ({plan.experiment.plan_note})")
    n_todo = sum(not j.done and j.reuse_from is None for j in plan.jobs)
    reused = [j for j in plan.jobs if not j.done and j.reuse_from is not None]
    lines += ["", f"to run: {n_todo} of {len(plan.jobs)}"
                  + (f" ({len(reused)} adopted from finished runs)" if reused else "")
                  + f"; estimated time ~{hms(plan.estimate_s)} "
                  + (f"of run time, ~{hms(plan.estimate_s / processes)} elapsed with {processes} processes "
                     if processes > 1 else "")
                  + f"(rough, for a 2-core CPU; early stopping after ~{TYPICAL_EPOCHS} epochs "
                  "or as many as a cell's finished seeds took; "
                  f"building stores ~{hms(plan.store_estimate_s)})"]
    for j in reused:
        lines.append(f"reuse: {j.cell.name} seed {j.seed} repeats {j.reuse_from}")
    if any(j.stale() for j in plan.jobs):
        lines.append("done*: finished earlier with other overrides or another configuration; it is kept "
                     "(delete its folder to re-run)")
    for p in plan.problems:
        lines.append(f"warning: {p}")
    return "\n".join(lines)
