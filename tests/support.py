"""Test helpers: the real datasets from ../shared/datasets and small generated datasets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from missrec.data.store import Dataset
from missrec.data.synthetic import synthetic_dataset

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
