"""First come, first ranked: how much of a queue of ranking calls one model pass takes.

Both batchers (the HTTP one on the event loop, :mod:`.batching`, and the flat combining of
:meth:`~.recommender.Recommender.recommend`) take the oldest waiting calls, up to
:data:`MAX_BATCH` histories. Taking everything that piled up would make every call in the
pass wait for the largest, and the calls arriving meanwhile for all of them; a call with
more histories than that goes alone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

MAX_BATCH = 64
"""Most histories ranked in one model pass, unless one call has more."""


def take_batch(pending: list[T], size_of: Callable[[T], int], limit: int = MAX_BATCH) -> tuple[list[T], list[T]]:
    """(the oldest entries of ``pending`` whose sizes add up to at most ``limit``, at least
    one; the rest, in order)."""
    total, n = 0, 0
    for entry in pending:
        total += size_of(entry)
        if n and total > limit:
            break
        n += 1
    return pending[:n], pending[n:]


def n_histories(histories: Any) -> int:
    """How many histories a call ranks (a malformed value counts as one: it fails alone)."""
    return len(histories) if isinstance(histories, list) else 1
