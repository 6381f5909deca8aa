"""One command at a time in a folder: a training run's or a study's.

Two commands writing one folder interleave their files: two ``missrec train --resume`` on
one run would each append epochs to its history and overwrite the other's checkpoint. The
lock is an exclusive ``flock`` on ``FOLDER/.lock``, so it is released by the kernel however
the holder ends (killed included) and a stale lock file never blocks anyone.

:func:`turn` is the other kind: processes of one command taking turns at a short step.
"""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, TextIO

from .errors import MissrecError

LOCK_FILE = ".lock"


class FolderLock:
    """Holds ``folder/.lock`` while ``command`` (as named in the error) works in ``folder``."""

    def __init__(self, folder: str | Path, command: str):
        self.path = Path(folder) / LOCK_FILE
        self.command = command
        self.file: TextIO | None = None
        self.made = False

    def __enter__(self) -> "FolderLock":
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    def acquire(self) -> "FolderLock":
        """Take the lock, or raise naming the folder and the process that holds it."""
        self.made = not self.path.parent.exists()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        file = open(self.path, "a+")
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            file.seek(0)
            holder = file.read().strip()
            file.close()
            raise MissrecError(f"{self.path.parent}: another {self.command} is working here"
                               + (f" (process {holder})" if holder.isdigit() else "")) from None
        file.truncate(0)
        file.write(f"{os.getpid()}\n")
        file.flush()
        self.file = file
        return self

    def release(self) -> None:
        if self.file is not None:
            if self.made and [p.name for p in self.path.parent.iterdir()] == [LOCK_FILE]:
                self.path.unlink()  # the command made the folder and left nothing else in it
                self.path.parent.rmdir()
            fcntl.flock(self.file, fcntl.LOCK_UN)
            self.file.close()
            self.file = None


@contextmanager
def turn(path: str | Path) -> Iterator[None]:
    """Wait for an exclusive ``flock`` on ``path`` and hold it for the block."""
    with open(path, "a") as file:
        fcntl.flock(file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(file, fcntl.LOCK_UN)
