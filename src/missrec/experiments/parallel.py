"""Run an experiment's (cell, seed) jobs several at a time, one process each.

Small models use a second thread poorly, so on a few cores several runs side by side at one
thread each get through more epochs than one run at all threads (docs/experiments.md gives
elapsed and run times of the analyses run that way). Each worker process gets an equal share of the cores (``train.threads``,
unless the user set it: a speed setting, so it does not change which finished runs a job
may adopt). A fine-tuning job waits for the pre-training job it starts from. Worker
processes are spawned and end with this process (:mod:`missrec.workers`).

Results do not depend on the number of processes for a given thread count: each job seeds
itself from its config exactly as in a sequential run.
"""

from __future__ import annotations

import dataclasses
import os
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any

from ..errors import MissrecError
from ..workers import worker_pool
from .jobs import run_job, settle_job
from .overrides import override_field
from .plan import Job, Plan
from .progress import Log, finished_line, job_head, running_line
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
    threads = max(1, usable_cores() // processes)
    job.sets = [*job.sets, f"train.threads={threads}"]
    job.train_cfg = dataclasses.replace(job.train_cfg, threads=threads)
    return job


def _work(exp: Experiment, plan: Plan, job: Job) -> dict:
    """Train one job in a worker process; its per-epoch lines go to its own log file."""
    job.run_dir.mkdir(parents=True, exist_ok=True)
    with open(job.run_dir / LOG_NAME, "w", buffering=1) as out:
        return run_job(exp, plan, job, _worker_cache, lambda line: print(line, file=out), progress=False)


def _blocked_by(job: Job, plan: Plan) -> Job | None:
    """The unfinished pre-training job ``job`` starts from, if any."""
    source = plan.source_of(job)
    return source if source is not None and not source.done else None


class _Pool:
    """The jobs waiting, running and failed while :func:`run_jobs_in_parallel` runs."""

    def __init__(self, plan: Plan, processes: int, log: Log):
        self.plan, self.processes, self.log = plan, processes, log
        self.heads = {id(j): job_head(plan, i, j) for i, j in enumerate(plan.jobs, 1)}
        self.waiting = list(plan.jobs)
        self.running: dict[Future, tuple[Job, float]] = {}
        self.failed: list[tuple[Job, BaseException]] = []
        self.t0 = time.perf_counter()

    def start_ready(self, pool: ProcessPoolExecutor) -> None:
        """Start waiting jobs whose pre-training job has finished, up to ``processes`` at once."""
        exp = self.plan.experiment
        for job in list(self.waiting):
            if len(self.running) >= self.processes:
                break
            blocker = _blocked_by(job, self.plan)
            in_flight = {id(j) for j in self.waiting} | {id(j) for j, _ in self.running.values()}
            if blocker is not None and id(blocker) in in_flight:
                continue
            self.waiting.remove(job)
            if blocker is not None:  # its pre-training job has ended without a result
                self.failed.append((job, MissrecError(f"its pre-training run {blocker.run_dir} did not finish")))
                continue
            if settle_job(exp, self.plan, job, self.heads[id(job)], self.log):
                continue
            job = with_thread_share(job, self.processes)
            self.log(f"{running_line(self.heads[id(job)], job)}; log: {job.run_dir / LOG_NAME}")
            self.running[pool.submit(_work, exp, self.plan, job)] = (job, time.perf_counter())

    def collect(self) -> None:
        """Wait for at least one running job to end and log how it ended."""
        finished, _ = wait(self.running, return_when=FIRST_COMPLETED)
        for future in finished:
            job, start = self.running.pop(future)
            error = future.exception()
            if error is not None:
                self.log(f"{self.heads[id(job)]}: failed: {error}")
                self.failed.append((job, error))
            else:
                now = time.perf_counter()
                self.log(finished_line(self.heads[id(job)], future.result(), now - start, now - self.t0))


def run_jobs_in_parallel(plan: Plan, processes: int, log: Log) -> None:
    """Run every pending job of ``plan`` with at most ``processes`` at once.

    After a failure no new job starts; the running ones finish, then the first error is
    raised naming its cell and seed."""
    state = _Pool(plan, processes, log)
    with worker_pool(processes) as pool:
        while state.waiting or state.running:
            if not state.failed:
                state.start_ready(pool)
            else:
                state.waiting.clear()
            if state.running:
                state.collect()
    if state.failed:
        job, error = state.failed[0]
        raise MissrecError(f"{job.cell.name} seed {job.seed} failed: {error}"
                           + (f" (see {job.run_dir / LOG_NAME})" if (job.run_dir / LOG_NAME).exists() else "")) \
            from error
