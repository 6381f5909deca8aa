"""Test helpers: the real datasets from ../shared/datasets and small generated datasets."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from missrec.data.store import Dataset, Interactions, ModalityFeatures, SPLIT_TEST, SPLIT_TRAIN, SPLIT_VALID
from missrec.data.vocab import Vocab

DATASETS = Path(os.environ.get("MISSREC_DATASETS", Path(__file__).resolve().parents[1] / ".." / "shared" / "datasets"))


def shared_dataset(name: str) -> Path:
    path = DATASETS / name
    if not path.exists():
        pytest.skip(f"{path} not available")
    return path


def make_dataset(n_users: int = 30, n_items: int = 40, min_len: int = 4, max_len: int = 12, seed: int = 0,
                 image_coverage: float = 0.6, dim: int = 16) -> Dataset:
    """A small random dataset with text features for all items and images for some."""
    rng = np.random.default_rng(seed)
    users, items, pos, split = [], [], [], []
    for u in range(1, n_users + 1):
        n = int(rng.integers(min_len, max_len + 1))
        seq = rng.integers(1, n_items + 1, size=n)
        users += [u] * n
        items += seq.tolist()
        pos += list(range(n))
        split += [SPLIT_TRAIN] * (n - 2) + [SPLIT_VALID, SPLIT_TEST]
    text = rng.normal(size=(n_items + 1, dim)).astype(np.float32)
    text[0] = 0
    image = rng.normal(size=(n_items + 1, dim)).astype(np.float32)
    present_img = np.r_[False, rng.random(n_items) < image_coverage]
    image[~present_img] = 0
    return Dataset(
        name="toy",
        items=Vocab([f"i{i}" for i in range(1, n_items + 1)]),
        users=Vocab([f"u{u}" for u in range(1, n_users + 1)]),
        interactions=Interactions(np.array(users), np.array(items), np.array(pos), np.array(split, dtype=np.int8)),
        item_text=[""] + [f"item {i}" for i in range(1, n_items + 1)],
        features={"text": ModalityFeatures(text, np.r_[False, np.ones(n_items, bool)], "random"),
                  "image": ModalityFeatures(image, present_img, "random")},
    )


