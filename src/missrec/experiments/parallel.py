"""Run an experiment's (cell, seed) jobs several at a time, one process each.

Small models use a second thread poorly, so on a 2-core CPU two runs side by side at one
thread each get through more epochs than one run at two threads: MISSRec on
amazon-scientific-mm took about 15 s an epoch per run with ``--jobs 2`` against 10-11 s for
one run alone, about 1.4x the throughput (Table 3's chosen configuration, 3 seeds x 2 modes:
19.8 min elapsed). Each worker process gets
an equal share of the cores (``train.threads``, unless the user set it: a speed setting, so
it does not change which finished runs a job may adopt). A fine-tuning job waits for the
pre-training job it starts from. Worker processes are spawned, not forked, so no
half-initialised thread pool of the parent is copied into them.

Results do not depend on the number of processes for a given thread count: each job seeds
itself from its config exactly as in a sequential run.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any

from ..errors import MissrecError
from .runner import Job, Log, Plan, finished_line, job_head, override_field, run_job, settle_job
from .spec import Experiment

LOG_NAME = "train.log"
"""Per-epoch lines of a job run in a worker go to ``RUN_DIR/train.log``."""

_worker_cache: dict[tuple, Any] = {}
"""A worker keeps the last store it loaded for its next job."""


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def with_thread_share(job: Job, processes: int) -> Job:
    """``job`` with ``train.threads`` set to its share of the cores, unless already set."""
    if any(override_field(s) == "threads" for s in job.sets):
        return job
    job.sets = [*job.sets, f"train.threads={max(1, usable_cores() // processes)}"]
    return job


def _work(exp: Experiment, plan: Plan, job: Job) -> dict:
    """Train one job in a worker process; its per-epoch lines go to its own log file."""
    job.run_dir.mkdir(parents=True, exist_ok=True)
    with open(job.run_dir / LOG_NAME, "w", buffering=1) as out:
        return run_job(exp, plan, job, _worker_cache, lambda line: print(line, file=out), progress=False)


def _blocked_by(job: Job, plan: Plan) -> Job | None:
    """The unfinished pre-training job ``job`` starts from, if any."""
    if not job.cell.init_from:
        return None
    for other in plan.jobs:
        if other.cell.name == job.cell.init_from and other.seed == job.seed and not other.done:
            return other
    return None


def run_jobs_in_parallel(exp: Experiment, plan: Plan, processes: int, log: Log) -> None:
    """Run every pending job of ``plan`` with at most ``processes`` at once.

    After a failure no new job starts; the running ones finish, then the first error is
    raised naming its cell and seed."""
    heads = {id(j): job_head(plan, i, j) for i, j in enumerate(plan.jobs, 1)}
    waiting = list(plan.jobs)
    running: dict[Future, tuple[Job, float]] = {}
    failed: list[tuple[Job, BaseException]] = []
    t0 = time.perf_counter()
    with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn")) as pool:
        while waiting or running:
            if not failed:
                for job in list(waiting):
                    if len(running) >= processes:
                        break
                    blocker = _blocked_by(job, plan)
                    in_flight = {id(j) for j in waiting} | {id(j) for j, _ in running.values()}
                    if blocker is not None and id(blocker) in in_flight:
                        continue
                    waiting.remove(job)
                    if blocker is not None:  # its pre-training job has ended without a result
                        failed.append((job, MissrecError(f"its pre-training run {blocker.run_dir} did not finish")))
                        continue
                    if settle_job(exp, plan, job, heads[id(job)], log):
                        continue
                    job = with_thread_share(job, processes)
                    log(f"{heads[id(job)]}: running ({job.cell.label or job.cell.kind}); "
                        f"log: {job.run_dir / LOG_NAME}")
                    running[pool.submit(_work, exp, plan, job)] = (job, time.perf_counter())
            else:
                waiting.clear()
            if not running:
                continue
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                job, start = running.pop(future)
                error = future.exception()
                if error is not None:
                    log(f"{heads[id(job)]}: failed: {error}")
                    failed.append((job, error))
                else:
                    now = time.perf_counter()
                    log(finished_line(heads[id(job)], future.result(), now - start, now - t0))
    if failed:
        job, error = failed[0]
        raise MissrecError(f"{job.cell.name} seed {job.seed} failed: {error}"
                           + (f" (see {job.run_dir / LOG_NAME})" if (job.run_dir / LOG_NAME).exists() else "")) \
            from error

