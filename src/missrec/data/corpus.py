"""A generated pre-training corpus at the paper's scale (§4.1: five Amazon domains, about
1.36 M users, 447 K items, 14 M interactions, text and image features for the items).

Every array is drawn in one vectorised pass (no per-user Python loop), so a paper-sized
corpus takes seconds to draw and its memory is that of the arrays themselves. Structure
that training and clustering can find: items belong to interest groups, their text and
image features are noisy group centres (the image side through a fixed linear map),
popularity is skewed, and a user draws most items from one group.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .store import SPLIT_TEST, SPLIT_TRAIN, SPLIT_VALID, Dataset, Interactions, ModalityFeatures
from .vocab import Vocab


@dataclass(frozen=True)
class CorpusShape:
    """Sizes of a generated corpus; the defaults are the paper's pre-training corpus."""

    users: int = 1_361_408
    items: int = 446_975
    dim: int = 512
    """Width of both modalities' features (CLIP ViT-B/32's, as the paper uses)."""
    groups: int = 2_000
    image_coverage: float = 0.9
    min_len: int = 5
    """The 5-core filter's shortest sequence."""
    max_len: int = 500
    mean_extra: float = 1.35
    """Log-mean of the lengths beyond ``min_len`` (lognormal, sigma 1), so that the mean
    length is near the corpus's 14.0 M interactions / 1.36 M users = 10.3."""
    in_group: float = 0.8
    """Share of a user's items drawn from their own group (the rest by global popularity)."""


def sequence_lengths(shape: CorpusShape, rng: np.random.Generator) -> np.ndarray:
    """Per-user sequence lengths: ``min_len`` + a lognormal tail, capped at ``max_len``."""
    extra = np.floor(np.exp(rng.normal(shape.mean_extra, 1.0, shape.users)))
    return np.minimum(shape.min_len + extra, shape.max_len).astype(np.int64)


def draw_items(shape: CorpusShape, lengths: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(item of every interaction [sum(lengths)], group of every item [items + 1]).

    Group g owns the contiguous item range ``bounds[g]:bounds[g + 1]``; within a group and
    globally, low offsets are drawn more often (squared / cubed uniforms: skewed popularity).
    """
    n = int(lengths.sum())
    bounds = np.linspace(1, shape.items + 1, shape.groups + 1).astype(np.int64)
    user_group = rng.integers(0, shape.groups, len(lengths))
    group = np.repeat(user_group, lengths)
    size = bounds[group + 1] - bounds[group]
    own = bounds[group] + np.minimum((rng.random(n) ** 2 * size).astype(np.int64), size - 1)
    anywhere = 1 + np.minimum((rng.random(n) ** 3 * shape.items).astype(np.int64), shape.items - 1)
    items = np.where(rng.random(n) < shape.in_group, own, anywhere)
    item_group = np.zeros(shape.items + 1, dtype=np.int64)
    item_group[1:] = np.searchsorted(bounds, np.arange(1, shape.items + 1), side="right") - 1
    return items, item_group


def draw_features(shape: CorpusShape, item_group: np.ndarray, rng: np.random.Generator
                  ) -> dict[str, ModalityFeatures]:
    """Text for every item, images for ``image_coverage`` of them: noisy group centres."""
    d = shape.dim
    centres = rng.standard_normal((shape.groups, d), dtype=np.float32)
    mix = rng.standard_normal((d, d), dtype=np.float32) / np.float32(np.sqrt(d))
    text = centres[item_group]
    text += np.float32(0.5) * rng.standard_normal(text.shape, dtype=np.float32)
    image = centres[item_group] @ mix
    image += np.float32(0.5) * rng.standard_normal(image.shape, dtype=np.float32)
    has_image = np.r_[False, rng.random(shape.items) < shape.image_coverage]
    text[0] = 0
    image[~has_image] = 0
    return {"text": ModalityFeatures(text, np.r_[False, np.ones(shape.items, bool)], "synthetic-corpus"),
            "image": ModalityFeatures(image, has_image, "synthetic-corpus")}


def paper_corpus(shape: CorpusShape = CorpusShape(), seed: int = 0, name: str = "corpus") -> Dataset:
    """A generated corpus of ``shape`` (leave-one-out splits: each user's last item is test,
    the one before valid, the rest train)."""
    rng = np.random.default_rng(seed)
    lengths = sequence_lengths(shape, rng)
    items, item_group = draw_items(shape, lengths, rng)
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    position = np.arange(len(items), dtype=np.int64) - starts
    from_end = np.repeat(lengths, lengths) - position
    split = np.full(len(items), SPLIT_TRAIN, dtype=np.int8)
    split[from_end == 2] = SPLIT_VALID
    split[from_end == 1] = SPLIT_TEST
    user = np.repeat(np.arange(1, shape.users + 1, dtype=np.int64), lengths)
    return Dataset(
        name=name,
        items=Vocab(f"i{i}" for i in range(1, shape.items + 1)),
        users=Vocab(f"u{u}" for u in range(1, shape.users + 1)),
        interactions=Interactions(user, items, position, split),
        features=draw_features(shape, item_group, rng),
        provenance={"generator": "missrec.data.corpus.paper_corpus", "seed": seed,
                    "shape": {k: getattr(shape, k) for k in shape.__dataclass_fields__}},
    )
