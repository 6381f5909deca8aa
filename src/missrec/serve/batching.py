"""Batching of concurrent HTTP requests on the event loop.

Requests wait on the event loop, not in threads: while the model ranks one batch in its
worker thread, the loop keeps parsing requests, and everything that arrived meanwhile is
ranked next, in one pass (no timer: a lone request is ranked at once). Threads contending
for the interpreter lock would each bring one request; here the model sees them together.
"""

from __future__ import annotations

import asyncio
from typing import Any

from .recommender import Ranking, Recommender


class Batcher:
    """Collects :meth:`Recommender.recommend` calls made from the event loop."""

    def __init__(self, rec: Recommender):
        self.rec = rec
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
                batch, self._pending = self._pending, []
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
