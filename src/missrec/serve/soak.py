"""A bounded soak test against a server on 127.0.0.1: valid requests, about 20% malformed
ones and concurrent item writes; reports requests served, answers by class, p99 of the
valid requests and the server's memory growth.

It runs on a copy of the bundle (the writes must not change the user's bundle) and is
bounded both in requests and in seconds.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from .bench import sample_histories, start_server
from .recommender import Recommender

TOKEN = "soak-token"


def malformed(rng: np.random.Generator, ids: list[str]) -> tuple[str, str, Any]:
    """One malformed request (method, path, JSON body or raw bytes)."""
    choices = [
        ("POST", "/recommend", {"history": []}),
        ("POST", "/recommend", {"history": [ids[0]], "k": 0}),
        ("POST", "/recommend", {"history": [ids[0]], "k": "ten"}),
        ("POST", "/recommend", {"history": ["no-such-item"]}),
        ("POST", "/recommend", {"history": [1, 2, 3]}),
        ("POST", "/recommend", {"histories": "x"}),
        ("POST", "/recommend", b"{not json"),
        ("POST", "/recommend", {"history": [ids[0]] * 1_000_000}),  # over the 4 MiB body limit
        ("POST", "/embed", {"history": None}),
        ("PUT", "/items", {"items": [{"id": "", "features": {}}]}),
        ("PUT", "/items", {"items": [{"id": "x", "features": {"nope": [1.0]}}]}),
        ("DELETE", "/items/never-was", None),
        ("GET", "/items/never-was", None),
    ]
    return choices[int(rng.integers(len(choices)))]


async def _run(url: str, ids: list[str], dims: dict[str, int], n_requests: int, seconds: float,
               concurrency: int, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    histories = sample_histories(ids, 256, seed)
    counts: Counter = Counter()
    valid_lat: list[float] = []
    added: list[str] = []
    every: list[str] = []
    state = {"sent": 0, "next_id": 0}
    deadline = time.perf_counter() + seconds
    auth = {"Authorization": f"Bearer {TOKEN}"}

    def next_request() -> tuple[str, str, str, Any]:
        r = rng.random()
        if r < 0.2:
            return ("malformed", *malformed(rng, ids))
        if r < 0.3:
            if added and rng.random() < 0.5:
                return "write", "DELETE", f"/items/{added.pop(0)}", None
            state["next_id"] += 1
            item_id = f"soak-{seed}-{state['next_id']}"
            added.append(item_id)
            every.append(item_id)
            feats = {m: rng.normal(size=d).round(4).tolist() for m, d in dims.items()}
            return "write", "PUT", "/items", {"items": [{"id": item_id, "features": feats}]}
        return "valid", "POST", "/recommend", {"history": histories[int(rng.integers(len(histories)))], "k": 10}

    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        async def worker() -> None:
            while state["sent"] < n_requests and time.perf_counter() < deadline:
                state["sent"] += 1
                kind, method, path, body = next_request()
                kwargs: dict[str, Any] = {"headers": auth}
                if isinstance(body, bytes):
                    kwargs.update(content=body, headers={**auth, "content-type": "application/json"})
                elif body is not None:
                    kwargs["json"] = body
                t0 = time.perf_counter()
                try:
                    r = await client.request(method, path, **kwargs)
                except httpx.TransportError:
                    counts[f"{kind}:transport-error"] += 1
                    continue
                counts[f"{kind}:{r.status_code // 100}xx"] += 1
                if kind == "valid" and r.status_code == 200:
                    valid_lat.append(time.perf_counter() - t0)

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
        for item_id in every:  # leave the catalogue as it was (404 for those already gone)
            await client.delete(f"/items/{item_id}", headers=auth)
    ms = np.asarray(valid_lat) * 1000 if valid_lat else np.asarray([np.nan])
    return {"requests": sum(counts.values()), "seconds": round(elapsed, 1),
            "answers": dict(sorted(counts.items())),
            "valid_5xx": counts["valid:5xx"] + counts["valid:transport-error"],
            "any_5xx": sum(n for key, n in counts.items() if key.endswith("5xx")),
            "valid_p99_ms": round(float(np.percentile(ms, 99)), 2)}


def soak_url(url: str, ids: list[str], dims: dict[str, int], n_requests: int = 2000,
             seconds: float = 60.0, concurrency: int = 8, seed: int = 0) -> dict[str, Any]:
    """Soak a server already running at ``url`` (its write token must be :data:`TOKEN`)."""
    return asyncio.run(_run(url, ids, dims, n_requests, seconds, concurrency, seed))


def soak(bundle: Path, n_requests: int = 2000, seconds: float = 60.0, concurrency: int = 8,
         seed: int = 0) -> dict[str, Any]:
    """Start a server on a copy of ``bundle`` and soak it; the server is stopped afterwards."""
    with tempfile.TemporaryDirectory(prefix="missrec-soak-") as tmp:
        copy = Path(shutil.copytree(bundle, Path(tmp) / "bundle"))
        rec = Recommender(copy, writable=False)
        ids = [i for i, alive in zip(rec.item_ids, rec.catalogue.state.alive) if alive]
        dims = {m: int(info["dim"]) for m, info in rec.manifest["modalities"].items()}
        size = rec.n_items
        del rec
        token_file = Path(tmp) / "token"
        token_file.write_text(TOKEN)
        server = start_server(copy, token_file)
        try:
            started = server.rss_mb()
            # a short first round, so the baseline includes the server's warm-up allocations
            warm = soak_url(server.url, ids, dims, min(200, n_requests), seconds, concurrency, seed + 1)
            before = server.rss_mb()
            res = soak_url(server.url, ids, dims, n_requests, seconds, concurrency, seed)
            res["any_5xx"] += warm["any_5xx"]
            res["server_rss_mb_started"] = round(started, 1)
            res["server_rss_mb_before"] = round(before, 1)
            res["server_rss_mb_after"] = round(server.rss_mb(), 1)
            res["catalogue_size_before"] = size
            res["catalogue_size_after"] = httpx.get(server.url + "/readyz").json()["catalogue_size"]
        finally:
            server.stop()
    return res
