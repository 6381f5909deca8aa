"""``missrec bench serve``: drive a running server over HTTP.

The server runs in its own process (``missrec serve`` on 127.0.0.1 and a free port), so
its latency includes HTTP parsing and JSON, and its memory is read from ``/proc``. Load
comes from asyncio workers, each with its own keep-alive connection, of a lean HTTP/1.1
client (:mod:`.loadclient`; ``client="httpx"``: one shared ``httpx.AsyncClient``, as
before); on a small machine the client competes with the server for the same cores, which
the figures include.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import torch

from ..data.store import ModalityFeatures
from ..errors import MissrecError
from ..model.missrec import MISSRec, MISSRecConfig
from .bundle import from_model, write_bundle
from .loadclient import encode_bodies, percentiles, post_many
from .recommender import Recommender
from .writebench import reads_during_write, write_items


@dataclass
class Server:
    process: subprocess.Popen
    url: str

    def rss_mb(self) -> float:
        return process_rss_mb(self.process.pid)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def process_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(bundle: Path, token_file: Path | None = None, approximate: bool = False,
                 threads: int = 1, timeout: float = 300.0, extra: tuple[str, ...] = ()) -> Server:
    """``missrec serve`` (with ``extra`` options) in a child process on 127.0.0.1; returns
    once /readyz answers."""
    port = free_port()
    cmd = [sys.executable, "-m", "missrec", "serve", str(bundle), "--port", str(port),
           "--threads", str(threads), *extra]
    if token_file is not None:
        cmd += ["--token-file", str(token_file)]
    if approximate:
        cmd.append("--approximate")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    server = Server(proc, f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise MissrecError(f"the server exited: {proc.stderr.read().decode()[-500:]}")
        try:
            if httpx.get(server.url + "/readyz", timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    server.stop()
    raise MissrecError(f"the server did not become ready within {timeout:.0f} s")


async def _drive(url: str, bodies: list[dict], concurrency: int, seconds: float) -> tuple[list[float], float, int]:
    """POST /recommend with ``bodies`` (cycled) from ``concurrency`` workers until every body
    was sent once or ``seconds`` passed; (latencies of 200 answers, elapsed, errors)."""
    latencies: list[float] = []
    errors = 0
    queue = iter(bodies)
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:
        async def worker() -> None:
            nonlocal errors
            for body in queue:
                if time.perf_counter() > deadline:
                    return
                t0 = time.perf_counter()
                r = await client.post("/recommend", json=body)
                if r.status_code == 200:
                    latencies.append(time.perf_counter() - t0)
                else:
                    errors += 1

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return latencies, time.perf_counter() - start, errors


CLIENTS = ("asyncio", "httpx")


def load_figures(url: str, bodies: list[dict], concurrency: int, seconds: float,
                 client: str = "asyncio") -> dict[str, float]:
    """Latency percentiles and throughput of POST /recommend with ``bodies`` at ``concurrency``,
    after a warm-up round."""
    if client == "httpx":
        asyncio.run(_drive(url, bodies[:max(20, concurrency)], concurrency, seconds))
        lat, elapsed, errors = asyncio.run(_drive(url, bodies, concurrency, seconds))
    else:
        raw = encode_bodies(bodies)
        asyncio.run(post_many(url, "/recommend", raw[:max(20, concurrency)], concurrency, seconds))
        timings = asyncio.run(post_many(url, "/recommend", raw, concurrency, seconds))[0]
        lat, elapsed, errors = timings.latencies, timings.elapsed, timings.errors
    if not lat:
        raise MissrecError("no request succeeded")
    return {"requests": len(lat), "errors": errors, **percentiles(lat),
            "requests_per_second": round(len(lat) / elapsed, 1)}



def sample_histories(ids: list[str], n: int, seed: int = 0, max_len: int = 20) -> list[list[str]]:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, max_len + 1, size=n)
    return [[ids[j] for j in rng.integers(0, len(ids), size=int(m))] for m in lengths]


def approximate_recall(rec: Recommender, histories: list[list[str]], k: int = 10) -> float:
    """Mean |approximate top-k ∩ exact top-k| / k (``rec`` must have approximation on)."""
    chunks = [histories[i:i + 32] for i in range(0, len(histories), 32)]  # bounds [B, N] scores
    approx = [r for c in chunks for r in rec.recommend(c, k)]
    ann, rec.ann = rec.ann, None
    try:
        exact = [r for c in chunks for r in rec.recommend(c, k)]
    finally:
        rec.ann = ann
    return float(np.mean([len(set(a.items) & set(e.items)) / max(len(e.items), 1)
                          for a, e in zip(approx, exact)]))


def bench_bundle(bundle: Path, n_requests: int, seconds: float, k: int, approximate: bool,
                 threads: int = 1, client: str = "asyncio", during_write: int = 0,
                 encode_in: str = "process") -> dict[str, Any]:
    """Latency and throughput at concurrency 1 and 32, exact (and approximate), + memory;
    with ``during_write`` N, also read latency during a PUT of N text items (on a copy)."""
    rec = Recommender(bundle, writable=False)
    ids = [i for i, alive in zip(rec.item_ids, rec.catalogue.state.alive) if alive]
    histories = sample_histories(ids, n_requests)
    bodies = [{"history": h, "k": k} for h in histories]
    out: dict[str, Any] = {"bundle": str(bundle), "catalogue_size": rec.n_items, "k": k,
                           "server_threads": threads, "client": client, "load_average": os.getloadavg()[0]}
    for mode in ("exact", "approximate") if approximate else ("exact",):
        server = start_server(bundle, approximate=mode == "approximate", threads=threads)
        try:
            res = {f"concurrency_{c}": load_figures(server.url, bodies, c, seconds, client) for c in (1, 32)}
            res["server_rss_mb"] = round(server.rss_mb(), 1)
        finally:
            server.stop()
        out[mode] = res
    if approximate:
        rec.enable_approximate()
        out["approximate"][f"recall@{k}"] = round(approximate_recall(rec, histories[:500], k), 4)
    if during_write:
        texts = [t for t, alive in zip(rec.item_text, rec.catalogue.state.alive) if alive]
        out.update(bench_during_write(bundle, encode_bodies(bodies), write_items(texts, during_write),
                                      threads, encode_in))
        out["load_average_end"] = os.getloadavg()[0]
    return out


def bench_during_write(bundle: Path, reads: list[bytes], items: list[dict], threads: int = 1,
                       encode_in: str = "process") -> dict[str, Any]:
    """Read figures during one PUT of ``items``, against a server on a copy of ``bundle``
    (the write must not change it) that accepts that many items in one request."""
    with tempfile.TemporaryDirectory(prefix="missrec-write-") as tmp:
        copy = Path(shutil.copytree(bundle, Path(tmp) / "bundle"))
        token = secrets.token_hex(16)
        (Path(tmp) / "token").write_text(token)
        server = start_server(copy, Path(tmp) / "token", threads=threads,
                              extra=("--max-items", str(max(len(items), 1)), "--encode-in", encode_in))
        try:
            res = reads_during_write(server.url, token, reads, items)
            res["server_rss_mb_after_write"] = round(server.rss_mb(), 1)
        finally:
            server.stop()
    return res


def synthetic_bundle(path: Path, n_items: int, dim: int = 32, d: int = 32, n_groups: int = 2000,
                     seed: int = 0) -> Path:
    """A bundle of an untrained small MISSRec over ``n_items`` generated items (text and
    image features: noisy centroids of ``n_groups`` groups, so neighbourhoods exist as in
    real embeddings); for speed and memory figures only, not for quality."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_groups, dim)).astype(np.float32)
    group = rng.integers(0, n_groups, size=n_items + 1)
    feats = {}
    for m in ("text", "image"):
        x = centres[group] + 0.5 * rng.normal(size=(n_items + 1, dim)).astype(np.float32)
        x[0] = 0
        present = np.ones(n_items + 1, dtype=bool)
        present[0] = False
        feats[m] = ModalityFeatures(x, present, source=f"synthetic:{seed}")
    config = MISSRecConfig(d=d, ffn_dim=2 * d, clustering="kmeans", n_clusters=256, kmeans_iters=3)
    torch.manual_seed(seed)
    model = MISSRec(config, n_items, {m: dim for m in feats})
    model.attach_catalogue({m: torch.from_numpy(f.matrix) for m, f in feats.items()},
                           {m: torch.from_numpy(f.present) for m, f in feats.items()})
    model.eval()
    ids = ["[PAD]"] + [f"s{i}" for i in range(1, n_items + 1)]
    return write_bundle(from_model("missrec", model, config, ids, None, feats), path)


def bench_synthetic(n_items: int, n_requests: int, seconds: float, k: int, threads: int = 1) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="missrec-bench-") as tmp:
        t0 = time.perf_counter()
        bundle = synthetic_bundle(Path(tmp) / "synthetic", n_items)
        built = time.perf_counter() - t0
        res = bench_bundle(bundle, n_requests, seconds, k, approximate=True, threads=threads)
        res["build_seconds"] = round(built, 1)
        res["bundle_mb"] = round(sum(f.stat().st_size for f in bundle.iterdir()) / 2**20, 1)
        res["bundle"] = f"synthetic:{n_items}"
    return res


def machine() -> dict[str, Any]:
    return {"cpus": os.cpu_count(), "python": sys.version.split()[0], "torch": torch.__version__}
