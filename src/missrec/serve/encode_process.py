"""New items' content embedded in a child process of lower priority (``missrec serve``).

Embedding a write's texts (MiniLM) is the slow part of a write. In the server's own
process it would compete with ranking twice: for the cores, and for the interpreter lock
(the encoder's Python code between its tensor operations, and loading the model, hold it).
In a child process the lock is not shared, and the child runs at a lower scheduling
priority with one torch thread, so while reads are waiting the kernel gives them the
cores, and the encode takes what is left.

The child is started on the first content to embed (spawned: a fork would copy the
server's threads; it exits if the server is killed, :mod:`missrec.workers`) and kept;
encoders that cannot be rebuilt here are found without it.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import torch

from ..errors import MissrecError
from ..workers import worker_pool
from .content import Encoded, LocalEncoders
from .encoders import modality_encoder

_CHILD: LocalEncoders | None = None
"""The child's encoders (set in the child by :func:`_start`)."""


class EncoderProcess:
    """Embeds contents in one child process (``nice`` steps lower, ``threads`` torch threads)."""

    def __init__(self, nice: int = 10, threads: int = 1):
        self.nice, self.threads = nice, threads
        self._pool: ProcessPoolExecutor | None = None
        self._found: dict[str, Any] = {}

    def encode(self, modality: str, source: str, contents: list[Any]) -> Encoded:
        enc, why = modality_encoder(modality, source, self._found)  # cheap: no model is loaded
        if enc is None:
            return Encoded(None, {}, why)
        for attempt in range(2):
            try:
                return self._executor().submit(_encode, modality, source, contents).result()
            except BrokenProcessPool:  # the child died (killed, out of memory): start another once
                self._pool = None
        raise MissrecError(f"the {modality} encoder process died twice while embedding "
                           f"{len(contents)} items")

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = worker_pool(1, initializer=_start, initargs=(self.nice, self.threads))
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def _start(nice: int, threads: int) -> None:
    global _CHILD
    os.nice(nice)
    torch.set_num_threads(threads)
    _CHILD = LocalEncoders()


def _encode(modality: str, source: str, contents: list[Any]) -> Encoded:
    return _CHILD.encode(modality, source, contents)
