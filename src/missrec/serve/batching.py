"""Batching of concurrent HTTP requests on the event loop.

Requests wait on the event loop, not in threads: while the model ranks one batch in its
worker thread, the loop keeps parsing requests, and what arrived meanwhile is ranked next,
in one pass (no timer: a lone request is ranked at once). Threads contending for the
interpreter lock would each bring one request; here the model sees them together.

A pass takes the oldest waiting requests, up to :data:`~.queueing.MAX_BATCH` histories
(:mod:`.queueing`): first come, first ranked, and no pass long enough to hold the rest up.
"""

from __future__ import annotations

import asyncio
from typing import Any

from .queueing import MAX_BATCH, n_histories, take_batch
from .recommender import Ranking, Recommender


class Batcher:
    """Collects :meth:`Recommender.recommend` calls made from the event loop."""

    def __init__(self, rec: Recommender, max_batch: int = MAX_BATCH):
        self.rec = rec
        self.max_batch = max_batch
        self._pending: list[tuple[dict[str, Any], asyncio.Future]] = []
        self._draining = False

    async def recommend(self, **call: Any) -> list[Ranking]:
        future = asyncio.get_running_loop().create_future()
        self._pending.append((call, future))
        if not self._draining:
            self._draining = True
            asyncio.get_running_loop().create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch, self._pending = take_batch(self._pending, lambda p: n_histories(p[0].get("histories")), self.max_batch)
                try:
                    answers = await asyncio.to_thread(self.rec.recommend_calls, [c for c, _ in batch])
                except Exception as e:  # an unexpected failure answers every waiting call
                    answers = [e] * len(batch)
                for (_, future), answer in zip(batch, answers):
                    if future.done():
                        continue
                    if isinstance(answer, Exception):
                        future.set_exception(answer)
                    else:
                        future.set_result(answer)
        finally:
            self._draining = False
