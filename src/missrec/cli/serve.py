"""``missrec recommend``, ``missrec export``, ``missrec serve`` and ``missrec bench serve``."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click
import torch

from ..data.store import read_store
from ..errors import MissrecError
from ..serve.bundle import export_bundle, read_manifest
from ..serve.recommender import Recommender
from .common import echo_json
from .train import bench


@click.command("recommend")
@click.argument("run", type=click.Path(exists=True, path_type=Path))
@click.option("--data", "store", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Store whose users' full histories to use (with --users / --user).")
@click.option("--users", "n_users", default=3, show_default=True, help="How many users of the store to show.")
@click.option("--user", "user_ids", multiple=True, help="A user id of the store (repeatable).")
@click.option("--history", default=None, help="Comma-separated item ids instead of a store user.")
@click.option("--k", default=10, show_default=True, help="Items per user (1 to the catalogue size).")
@click.option("--exclude-seen", is_flag=True, help="Drop items already in the history.")
@click.option("--unknown", type=click.Choice(["error", "skip"]), default="error", show_default=True,
              help="What to do with history ids the catalogue does not hold.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (with --history: the object "
                                                       "POST /recommend answers).")
def recommend(run: Path, store: Path | None, n_users: int, user_ids: tuple[str, ...], history: str | None,
              k: int, exclude_seen: bool, unknown: str, as_json: bool) -> None:
    """Recommend top-K items with a trained model (a bundle, RUN_DIR or model.pt)."""
    rec = Recommender(run, writable=False)
    requests: list[tuple[str, list[str]]] = []
    if history is not None:
        ids = [h.strip() for h in history.split(",") if h.strip()]
        res = rec.recommend([ids], k, exclude_seen, unknown, field_name="history")[0]
        if as_json:
            click.echo(json.dumps(res.to_json()))
            return
        requests.append(("history", ids))
    else:
        if store is None:
            raise click.UsageError("give --data STORE (with --users/--user) or --history")
        ds = read_store(store, modalities=[])
        seqs = ds.sequences()
        chosen = list(user_ids) or ds.users.ids[1:1 + n_users]
        for u in chosen:
            if u not in ds.users:
                raise click.UsageError(f"user {u!r} is not in {store}")
            requests.append((u, [ds.items.external(i) for i in seqs[ds.users.index(u)]]))
    results = rec.recommend_many([h for _, h in requests], k, exclude_seen)
    if as_json:
        click.echo(json.dumps([{"user": u, "history": h, "items": [r.__dict__ for r in res]}
                               for (u, h), res in zip(requests, results)], indent=2))
        return
    text = dict(zip(rec.item_ids, rec.item_text))
    for (u, h), res in zip(requests, results):
        click.echo(f"\nuser {u}: last of {len(h)} items: {_short(text.get(h[-1], ''))}")
        for rank, r in enumerate(res, 1):
            click.echo(f"  {rank:2d}. {r.item_id:<12} {r.score:8.3f}  {_short(r.text)}")


def _short(text: str, n: int = 90) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


@click.command("export")
@click.argument("run", type=click.Path(exists=True, path_type=Path))
@click.argument("bundle", type=click.Path(file_okay=False, path_type=Path))
def export(run: Path, bundle: Path) -> None:
    """Write a serving bundle (safetensors + JSON, no pickle) of a run or checkpoint."""
    path = export_bundle(run, bundle)
    m = read_manifest(path)
    click.echo(json.dumps({"bundle": str(path), "model": m["model"], "items": m["n_trained_items"],
                           "modalities": m["modalities"]}))


@click.command("serve")
@click.argument("bundle", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="TCP port.")
@click.option("--token-file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="File holding the bearer token write endpoints require (else $MISSREC_TOKEN; "
                   "without either, writes are disabled).")
@click.option("--protect-reads", is_flag=True, help="Require the token on read endpoints too.")
@click.option("--approximate", is_flag=True, help="Rank with the FAISS candidate path (needs faiss).")
@click.option("--threads", default=1, show_default=True, type=click.IntRange(1),
              help="torch intra-op threads (requests are batched already; on shared cores "
                   "more threads contend with each other).")
@click.option("--max-items", default=1000, show_default=True, type=click.IntRange(1),
              help="Most items in one PUT /items (413 above); load more with `missrec items add`.")
@click.option("--encode-in", type=click.Choice(["process", "thread"]), default="process", show_default=True,
              help="Embed new items' texts and images in a child process of lower priority, or in "
                   "a thread of the server (competing with ranking for the interpreter lock).")
def serve(bundle: Path, host: str, port: int, token_file: Path | None, protect_reads: bool,
          approximate: bool, threads: int, max_items: int, encode_in: str) -> None:
    """Serve a bundle over HTTP (FastAPI + uvicorn; the `serve` extra). Docs at /docs."""
    from ..serve.http import ServiceOptions, run_server

    torch.set_num_threads(threads)
    token = read_token(token_file)
    options = ServiceOptions(token=token, protect_reads=protect_reads, approximate=approximate,
                             max_items_per_request=max_items)
    run_server(bundle, options, host, port, encode_in_process=encode_in == "process")


def read_token(token_file: Path | None) -> str | None:
    """The write token: the file's first line, else ``$MISSREC_TOKEN``; None when neither."""
    if token_file is not None:
        token = token_file.read_text(encoding="utf-8").strip()
        if not token:
            raise MissrecError(f"{token_file}: the token file is empty")
        return token
    return os.environ.get("MISSREC_TOKEN") or None


@bench.command("serve")
@click.argument("bundle", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--requests", "n_requests", default=2000, show_default=True, type=click.IntRange(1),
              help="Requests per concurrency level (bounded by --seconds).")
@click.option("--seconds", default=30.0, show_default=True, type=click.FloatRange(1),
              help="Longest time per concurrency level.")
@click.option("--k", default=10, show_default=True, type=click.IntRange(1), help="Items per request.")
@click.option("--approximate", is_flag=True, help="Also serve with FAISS candidates; report recall@k.")
@click.option("--synthetic-items", type=click.IntRange(1), default=None,
              help="Instead of BUNDLE's catalogue, a generated one of this many items "
                   "(an untrained small model; exact and approximate).")
@click.option("--threads", default=1, show_default=True, type=click.IntRange(1),
              help="The server's torch threads (missrec serve --threads).")
@click.option("--client", type=click.Choice(["asyncio", "httpx"]), default="asyncio", show_default=True,
              help="Load client: lean HTTP/1.1 over asyncio streams, one connection per worker; or "
                   "one shared httpx.AsyncClient (the client of earlier figures).")
@click.option("--during-write", type=click.IntRange(1), default=None,
              help="Also time reads (concurrency 1) during one PUT /items of this many text items, "
                   "on a copy of BUNDLE (adds write_items, write_seconds, read_p50_ms, read_p99_ms).")
@click.option("--encode-in", type=click.Choice(["process", "thread"]), default="process", show_default=True,
              help="With --during-write: the server's --encode-in.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def bench_serve(bundle: Path, n_requests: int, seconds: float, k: int, approximate: bool,
                synthetic_items: int | None, threads: int, client: str, during_write: int | None,
                encode_in: str, as_json: bool) -> None:
    """p50/p99 latency and requests/s at concurrency 1 and 32 against a server on 127.0.0.1."""
    from ..serve.bench import bench_bundle, bench_synthetic, machine

    if synthetic_items:
        if during_write:
            raise click.UsageError("--during-write needs a bundle's texts; it does not go with --synthetic-items")
        res = bench_synthetic(synthetic_items, n_requests, seconds, k, threads)
    else:
        res = bench_bundle(bundle, n_requests, seconds, k, approximate, threads, client,
                           during_write or 0, encode_in)
    res["machine"] = machine()
    if as_json:
        echo_json(res)
    else:
        click.echo(json.dumps(res, indent=2))


@bench.command("soak")
@click.argument("bundle", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--requests", "n_requests", default=2000, show_default=True, type=click.IntRange(1))
@click.option("--seconds", default=60.0, show_default=True, type=click.FloatRange(1))
@click.option("--concurrency", default=8, show_default=True, type=click.IntRange(1, 256))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def bench_soak(bundle: Path, n_requests: int, seconds: float, concurrency: int, as_json: bool) -> None:
    """Bounded soak on a copy of BUNDLE: valid, ~20% malformed and item-writing requests."""
    from ..serve.soak import soak

    res = soak(bundle, n_requests, seconds, concurrency)
    if as_json:
        echo_json(res)
    else:
        click.echo(json.dumps(res, indent=2))


COMMANDS = [recommend, export, serve]
