"""Small generated datasets with learnable structure, for smoke runs and tests."""

from __future__ import annotations

import numpy as np

from .store import SPLIT_TEST, SPLIT_TRAIN, SPLIT_VALID, Dataset, Interactions, ModalityFeatures
from .vocab import Vocab


def synthetic_dataset(seed: int = 0, n_users: int = 80, n_items: int = 60, n_groups: int = 5, dim: int = 16,
                      min_len: int = 5, max_len: int = 12, image_coverage: float = 0.6,
                      name: str = "synthetic", modalities: tuple[str, ...] = ("text", "image")):
    """A small generated dataset with learnable structure: items belong to ``n_groups``
    groups, their text/image features are noisy group centroids, and each user mostly
    interacts with one group. Text for every item, images for ``image_coverage`` of them;
    only the feature matrices named in ``modalities`` are kept (e.g. a text-only store)."""
    rng = np.random.default_rng(seed)
    group = rng.integers(0, n_groups, size=n_items + 1)
    centres = rng.normal(size=(n_groups, dim))
    text = (centres[group] + 0.5 * rng.normal(size=(n_items + 1, dim))).astype(np.float32)
    image = (centres[group] @ rng.normal(size=(dim, dim)) / np.sqrt(dim)
             + 0.5 * rng.normal(size=(n_items + 1, dim))).astype(np.float32)
    text[0] = image[0] = 0
    has_image = np.r_[False, rng.random(n_items) < image_coverage]
    image[~has_image] = 0
    members = [np.nonzero(group[1:] == g)[0] + 1 for g in range(n_groups)]
    users, items, pos, split = [], [], [], []
    for u in range(1, n_users + 1):
        n = int(rng.integers(min_len, max_len + 1))
        g = int(rng.integers(n_groups))
        pool = members[g] if len(members[g]) else np.arange(1, n_items + 1)
        seq = [int(rng.choice(pool)) if rng.random() < 0.8 else int(rng.integers(1, n_items + 1)) for _ in range(n)]
        users += [u] * n
        items += seq
        pos += list(range(n))
        split += [SPLIT_TRAIN] * (n - 2) + [SPLIT_VALID, SPLIT_TEST]
    features = {"text": ModalityFeatures(text, np.r_[False, np.ones(n_items, bool)], "synthetic"),
                "image": ModalityFeatures(image, has_image, "synthetic")}
    return Dataset(
        name=name,
        items=Vocab([f"i{i}" for i in range(1, n_items + 1)]),
        users=Vocab([f"u{u}" for u in range(1, n_users + 1)]),
        interactions=Interactions(np.array(users), np.array(items), np.array(pos), np.array(split, dtype=np.int8)),
        item_text=[""] + [f"item {i} of group {group[i]}" for i in range(1, n_items + 1)],
        features={m: f for m, f in features.items() if m in modalities},
        provenance={"generator": "missrec.data.synthetic.synthetic_dataset", "seed": seed},
    )
