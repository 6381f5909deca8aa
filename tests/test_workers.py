"""Worker processes end with the process that started them, even when it is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from missrec.workers import worker_pool

PARENT = """
import os, sys, time
from missrec.workers import worker_pool
pool = worker_pool(2)
print(*sorted({pool.submit(os.getpid).result(timeout=120) for _ in range(8)}), flush=True)
time.sleep(600)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie (exited, not yet reaped) counts as gone
        return f.read().split(")")[-1].split()[0] != "Z"


def test_workers_exit_when_their_parent_is_killed():
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True)
    try:
        workers = [int(p) for p in parent.stdout.readline().split()]
        assert workers and all(_alive(p) for p in workers)
    finally:
        parent.send_signal(signal.SIGKILL)  # no shutdown of the pool can run
        parent.wait()
    deadline = time.monotonic() + 30
    while any(_alive(p) for p in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(_alive(p) for p in workers)


def test_the_initializer_runs_in_each_worker(tmp_path):
    with worker_pool(1, initializer=os.chdir, initargs=(str(tmp_path),)) as pool:
        assert pool.submit(os.getcwd).result(timeout=120) == str(tmp_path)
        assert pool.submit(os.getppid).result(timeout=120) == os.getpid()
