"""Item changes of a bundle: an append-only log, compacted into a new catalogue generation.

Every change is one JSON line in ``items-<g>.log.jsonl`` (``{"op": "put", "items": [...]}``
with each item's id, text and raw features, or ``{"op": "delete", "ids": [...]}``), flushed
and fsync'ed before the change is acknowledged. Replaying the log over generation g gives
the current catalogue; a line cut short by a crash is the last line and is dropped on
replay. Compaction writes generation g+1 (new files), switches ``catalogue.json`` to it with
``os.replace`` and only then deletes generation g and its log, so at every instant the
pointer names a complete generation. The operations are idempotent (a put sets an item, a
delete removes it), so a log replayed twice gives the same catalogue.

A raw feature vector is logged as the base64 of its little-endian float32 bytes
(:func:`pack_vector`): exact, a third of the size of its decimal form, and written in C
rather than number by number under the interpreter lock. A list of numbers (the form of
earlier logs) replays too (:func:`unpack_vector`).

One process writes a bundle at a time: the journal holds an exclusive ``flock`` on
``catalogue.json.lock`` while open.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import MissrecError
from .bundle import POINTER, ItemState, write_json, write_generation


class BundleBusy(MissrecError):
    """Another process holds the bundle's write lock (a server, or a bulk load)."""


class Journal:
    """The change log of one bundle's current generation."""

    def __init__(self, bundle: Path, generation: int):
        self.bundle = Path(bundle)
        self.generation = generation
        self._lock_file = open(self.bundle / (POINTER + ".lock"), "a")
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lock_file.close()
            raise BundleBusy(f"{self.bundle}: another process is serving this bundle "
                             "(open it read-only instead)") from None
        self.entries = 0

    @property
    def path(self) -> Path:
        return self.bundle / f"items-{self.generation}.log.jsonl"

    def replay(self) -> list[dict[str, Any]]:
        """The log's operations, in order (a torn last line is dropped and cut off)."""
        ops, good = read_log(self.path)
        if self.path.exists() and good < self.path.stat().st_size:
            with open(self.path, "r+b") as f:
                f.truncate(good)
        self.entries = len(ops)
        return ops

    def append(self, op: dict[str, Any]) -> None:
        line = log_line(op)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())
        self.entries += 1

    def compact(self, items: ItemState) -> None:
        """Make ``items`` generation g+1 and start an empty log for it."""
        old = self.generation
        new = old + 1
        write_generation(self.bundle, new, items)
        write_json(self.bundle / POINTER, {"generation": new})
        self.generation, self.entries = new, 0
        for name in (f"items-{old}.json", f"items-{old}.safetensors", f"items-{old}.log.jsonl"):
            (self.bundle / name).unlink(missing_ok=True)

    def close(self) -> None:
        if not self._lock_file.closed:
            fcntl.flock(self._lock_file, fcntl.LOCK_UN)
            self._lock_file.close()


def log_line(op: dict[str, Any]) -> str:
    """``op`` as one JSON line, its feature vectors (numpy arrays) packed by
    :func:`pack_vector`. A put is serialised item by item: one ``json.dumps`` over thousands
    of items would hold the interpreter lock, and so every thread that ranks, for its whole
    length."""
    if op.get("op") == "put" and set(op) == {"op", "items"}:
        return '{"op":"put","items":[' + ",".join(_dumps(e) for e in op["items"]) + "]}\n"
    return _dumps(op) + "\n"


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=_packed)


def _packed(obj: Any) -> str:
    if isinstance(obj, np.ndarray):
        return pack_vector(obj)
    raise TypeError(f"{type(obj).__name__} cannot go into the item log")


def pack_vector(v: np.ndarray) -> str:
    """A feature vector as the base64 of its little-endian float32 bytes."""
    return base64.b64encode(np.ascontiguousarray(v, dtype="<f4").tobytes()).decode("ascii")


def unpack_vector(v: str | list[float] | np.ndarray, dim: int) -> np.ndarray:
    """A logged feature vector (packed, or a list of numbers) as float32 of width ``dim``."""
    try:
        x = (np.frombuffer(base64.b64decode(v, validate=True), dtype="<f4") if isinstance(v, str)
             else np.asarray(v, dtype=np.float32))
    except (ValueError, TypeError):
        raise MissrecError("the item log holds a feature vector that is neither base64 of float32 "
                           "bytes nor a list of numbers") from None
    if x.shape != (dim,):
        raise MissrecError(f"the item log holds a vector of {x.size} numbers where {dim} were expected")
    return x


def read_log(path: Path) -> tuple[list[dict[str, Any]], int]:
    """The complete lines' operations of log ``path`` and the bytes they span (read only)."""
    if not path.exists():
        return [], 0
    ops, good = [], 0
    for line in path.read_bytes().splitlines(keepends=True):
        try:
            if not line.endswith(b"\n"):
                raise ValueError("torn line")
            ops.append(json.loads(line))
        except ValueError:
            break
        good += len(line)
    return ops, good
