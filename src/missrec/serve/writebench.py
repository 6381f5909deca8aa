"""Read latency while a large write runs (``missrec bench serve --during-write N``).

One PUT /items of N items given as text (the catalogue's own texts, each made distinct, since
the encoder embeds each distinct text once) is sent while ``concurrency`` workers keep
POSTing /recommend; the reads answered from the moment the write is sent until it is
answered are the figures. A one-item write first loads the server's text encoder, so the
figures are those of a write, not of loading a model.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

from ..errors import MissrecError
from .loadclient import Answer, Connection, encode_body, percentiles, post_many


def write_items(texts: list[str], n: int, prefix: str = "bench-write-") -> list[dict[str, str]]:
    """``n`` new items with distinct texts drawn from ``texts``."""
    pool = [t for t in texts if t.strip()] or ["an item"]
    return [{"id": f"{prefix}{i}", "text": f"{pool[i % len(pool)]} (copy {i})"} for i in range(n)]


def reads_during_write(url: str, token: str, reads: list[bytes], items: list[dict],
                       concurrency: int = 1) -> dict[str, Any]:
    """Figures of the reads (encoded /recommend bodies, cycled) during one PUT of ``items``."""
    return asyncio.run(_measure(url, token, reads, items, concurrency))


async def _measure(url: str, token: str, reads: list[bytes], items: list[dict], concurrency: int) -> dict[str, Any]:
    auth = {"authorization": f"Bearer {token}"}
    conn = await Connection.open(url)
    try:
        warm = {"items": [{"id": "bench-warm-up", "text": items[0]["text"] if items else "an item"}]}
        _check(await conn.request("PUT", "/items", encode_body(warm), auth), "the warm-up write")
        await post_many(url, "/recommend", reads[:max(20, concurrency)], concurrency, 60.0)
        body = encode_body({"items": items})

        async def write() -> tuple[Answer, float]:
            t0 = time.perf_counter()
            answer = await conn.request("PUT", "/items", body, auth)
            return answer, time.perf_counter() - t0

        timings, (answer, seconds) = await post_many(url, "/recommend", itertools.cycle(reads), concurrency,
                                                     float("inf"), during=write)
        _check(answer, f"the write of {len(items)} items")
    finally:
        await conn.close()
    if not timings.latencies:
        raise MissrecError("no read was answered during the write")
    figures = percentiles(timings.latencies)
    return {"write_items": len(items), "write_seconds": round(seconds, 2), "read_concurrency": concurrency,
            "read_requests": len(timings.latencies), "read_errors": timings.errors,
            "read_p50_ms": figures["p50_ms"], "read_p99_ms": figures["p99_ms"],
            "read_max_ms": round(max(timings.latencies) * 1000, 2)}


def _check(answer: Answer, what: str) -> None:
    if answer.status != 200:
        raise MissrecError(f"{what} was answered {answer.status}: {answer.body[:300].decode(errors='replace')}")
