"""Worker processes that end with the process that started them.

Experiments, tuning and the service's encoder run work in spawned child processes (spawned,
not forked, so no half-initialised thread pool of the parent is copied into them). A
``ProcessPoolExecutor`` stops its workers when its owner shuts it down, but not when the
owner is killed: a killed ``missrec experiment`` would leave its training runs going on,
writing into the run folders that the next, resumed command trains into as well. So every
worker watches its parent and exits as soon as the parent is gone; whatever it was writing
is lost whole, never half-written (run files are replaced atomically), and a resumed
command starts that job again from its last checkpoint.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Callable

WATCH_SECONDS = 1.0
"""How often a worker checks that its parent still runs."""


def worker_pool(processes: int, initializer: Callable[..., None] | None = None,
                initargs: tuple[Any, ...] = ()) -> ProcessPoolExecutor:
    """A pool of ``processes`` spawned workers that exit when this process is gone.

    ``initializer(*initargs)`` runs in each worker after its watch has started."""
    return ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_start, initargs=(os.getpid(), initializer, initargs))


def _start(parent: int, initializer: Callable[..., None] | None, initargs: tuple[Any, ...]) -> None:
    threading.Thread(target=_exit_with, args=(parent,), daemon=True, name="exit-with-parent").start()
    if initializer is not None:
        initializer(*initargs)


def _exit_with(parent: int) -> None:
    """Exit at once when ``parent`` is gone (this process is then re-parented)."""
    while os.getppid() == parent:
        time.sleep(WATCH_SECONDS)
    os._exit(1)
