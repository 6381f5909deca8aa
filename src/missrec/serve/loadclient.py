"""A lean HTTP/1.1 load client over asyncio streams, for ``missrec bench serve``.

The benchmark runs client and server on the same cores, so the client's own cost is part
of every figure. httpx spends over a millisecond of CPU per request, and at concurrency 32
its workers queue behind each other on the client's event loop: the server saw requests
one or two at a time and answered them several times faster than httpx reported (see
docs/serving.md). This client keeps one keep-alive connection per worker, sends bodies
encoded beforehand and reads ``Content-Length`` answers (what the service sends), so what
it times is the server's answer rather than its own queue.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from ..errors import MissrecError


@dataclass
class Answer:
    status: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Connection:
    """One keep-alive HTTP/1.1 connection; one request at a time."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str):
        self.reader, self.writer, self.host = reader, writer, host

    @classmethod
    async def open(cls, url: str) -> "Connection":
        parts = urlsplit(url)
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port or 80, limit=1 << 24)
        return cls(reader, writer, parts.netloc)

    async def request(self, method: str, path: str, body: bytes = b"",
                      headers: dict[str, str] | None = None) -> Answer:
        head = f"{method} {path} HTTP/1.1\r\nhost: {self.host}\r\ncontent-length: {len(body)}\r\n"
        if body:
            head += "content-type: application/json\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        self.writer.write(head.encode("latin-1") + b"\r\n" + body)
        await self.writer.drain()
        status_line, *lines = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        fields = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines if line)}
        if "content-length" not in fields:
            raise MissrecError(f"{method} {path}: the answer has no Content-Length ({status_line})")
        return Answer(int(status_line.split()[1]), await self.reader.readexactly(int(fields["content-length"])))

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except ConnectionError:
            pass


@dataclass
class Timings:
    latencies: list[float] = field(default_factory=list)
    """Seconds per answered (2xx) request."""
    errors: int = 0
    elapsed: float = 0.0


async def post_many(url: str, path: str, bodies: Iterable[bytes], concurrency: int, seconds: float,
                    during: Callable[[], Awaitable[Any]] | None = None) -> tuple[Timings, Any]:
    """POST ``bodies`` (each once, in order) from ``concurrency`` workers, each sending its
    next request when the last one is answered, until all are sent or ``seconds`` passed;
    with ``during``, until that coroutine (started once every worker has sent its first
    request) has finished. Returns the timings and what ``during`` returned."""
    out, queue, stop = Timings(), iter(bodies), False
    deadline = time.perf_counter() + seconds
    conns = [await Connection.open(url) for _ in range(concurrency)]

    async def worker(conn: Connection) -> None:
        for body in queue:
            t0 = time.perf_counter()
            answer = await conn.request("POST", path, body)
            if answer.status // 100 == 2:
                out.latencies.append(time.perf_counter() - t0)
            else:
                out.errors += 1
            if stop or time.perf_counter() > deadline:
                return

    start = time.perf_counter()
    try:
        tasks = [asyncio.ensure_future(worker(c)) for c in conns]
        result = None
        if during is not None:
            await asyncio.sleep(0)  # the workers' first requests go out first
            result = await during()
            stop = True
        await asyncio.gather(*tasks)
    finally:
        for c in conns:
            await c.close()
    out.elapsed = time.perf_counter() - start
    return out, result


def percentiles(seconds: list[float]) -> dict[str, float]:
    """``p50_ms`` and ``p99_ms`` of latencies in seconds."""
    ms = np.asarray(seconds) * 1000
    return {"p50_ms": round(float(np.percentile(ms, 50)), 2), "p99_ms": round(float(np.percentile(ms, 99)), 2)}


def encode_body(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


def encode_bodies(bodies: list[dict]) -> list[bytes]:
    return [encode_body(b) for b in bodies]
