"""``missrec recommend``: top-K items for users of a store or for a given history."""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.command("recommend")
@click.argument("run", type=click.Path(exists=True, path_type=Path))
@click.option("--data", "store", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Store whose users' full histories to use (with --users / --user).")
@click.option("--users", "n_users", default=3, show_default=True, help="How many users of the store to show.")
@click.option("--user", "user_ids", multiple=True, help="A user id of the store (repeatable).")
@click.option("--history", default=None, help="Comma-separated item ids instead of a store user.")
@click.option("--k", default=10, show_default=True, help="Items per user.")
@click.option("--exclude-seen", is_flag=True, help="Drop items already in the history.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def recommend(run: Path, store: Path | None, n_users: int, user_ids: tuple[str, ...], history: str | None,
              k: int, exclude_seen: bool, as_json: bool) -> None:
    """Recommend top-K items with a trained model (RUN_DIR or model.pt)."""
    from ..data.store import read_store
    from ..serve.recommender import Recommender

    rec = Recommender(run)
    requests: list[tuple[str, list[str]]] = []
    if history:
        requests.append(("history", [h.strip() for h in history.split(",") if h.strip()]))
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
    for (u, h), res in zip(requests, results):
        click.echo(f"\nuser {u}: last of {len(h)} items: {_short(rec.item_text[rec.indexes([h[-1]])[0]])}")
        for rank, r in enumerate(res, 1):
            click.echo(f"  {rank:2d}. {r.item_id:<12} {r.score:8.3f}  {_short(r.text)}")


def _short(text: str, n: int = 90) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


COMMANDS = [recommend]
