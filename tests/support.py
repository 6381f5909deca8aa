"""Test helpers: the real datasets from ../shared/datasets, small generated datasets, and
processes that train together."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any, Callable

import pytest
import torch
import torch.distributed
import torch.multiprocessing as mp

from missrec.data.store import Dataset
from missrec.data.synthetic import synthetic_dataset
from missrec.model.base import SequentialRecommender
from missrec.model.cache import ItemVectors

DATASETS = Path(os.environ.get("MISSREC_DATASETS", Path(__file__).resolve().parents[1] / ".." / "shared" / "datasets"))


def shared_dataset(name: str) -> Path:
    path = DATASETS / name
    if not path.exists():
        pytest.skip(f"{path} not available")
    return path


def make_dataset(n_users: int = 30, n_items: int = 40, min_len: int = 4, max_len: int = 12, seed: int = 0,
                 image_coverage: float = 0.6, dim: int = 16) -> Dataset:
    """A small generated dataset: text features for all items, images for some."""
    return synthetic_dataset(seed=seed, n_users=n_users, n_items=n_items, dim=dim, min_len=min_len,
                             max_len=max_len, image_coverage=image_coverage, name="toy")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _process(rank: int, world: int, port: int, worker: Callable, args: tuple) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world), RANK=str(rank))
    try:
        worker(rank, world, *args)
    finally:
        if torch.distributed.is_initialized():  # a worker that failed before its run closed the group
            torch.distributed.destroy_process_group()


def spawn_ranks(worker: Callable, *args: Any, world: int = 2, before_retry: Callable[[], None] | None = None) -> None:
    """Run ``worker(rank, world, *args)`` in ``world`` processes that find each other through
    the environment, as under ``torchrun``.

    Runs once more (after ``before_retry`` puts the files back) when the rendezvous failed,
    since the free port is released before rank 0 binds it and another process can take it
    meanwhile, or when a process died by a signal, which gloo's threads can raise while a
    process exits. A second failure is the test's failure.
    """
    for attempt in range(2):
        try:
            mp.spawn(_process, args=(world, _free_port(), worker, args), nprocs=world)
            return
        except mp.ProcessExitedException:
            if attempt:
                raise
        except mp.ProcessRaisedException as e:
            if attempt or not any(w in str(e).lower() for w in ("address", "connect")):
                raise
        if before_retry is not None:
            before_retry()


class RowScorer(SequentialRecommender):
    """A test stand-in that scores whole rows: subclasses define ``score_all(batch)``; the
    contract's user side passes the batch through and blocks are slices of those rows."""

    cache_type = ItemVectors

    def __init__(self, n_items: int):
        super().__init__()
        self.n_items = n_items

    def training_loss(self, batch):
        raise NotImplementedError("a scoring stand-in does not train")

    def item_cache(self) -> ItemVectors:
        return ItemVectors(torch.zeros(self.n_items + 1, 1))

    def encode_items(self, features, present, ids) -> ItemVectors:
        return ItemVectors(torch.zeros(len(ids), 1))

    def user_vectors(self, batch, cache=None):
        return batch

    def score_block(self, users, cache, items):
        return self.score_all(users, cache)[:, items]

    def score_rows(self, users, cache, items):
        return self.score_all(users, cache).gather(1, items)

    def retrieval_tables(self, cache):
        return []
