"""Test helpers for tests/features: a tiny store builder and fake encoders (no model)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from missrec.data.store import Dataset, Interactions, write_store
from missrec.data.vocab import Vocab
from missrec.features.base import Encoder, EncodeError


def make_store(path: Path, item_ids: list[str], texts: list[str] | None = None,
               images: list[str | None] | None = None) -> Path:
    """A store with the given items, two users and a few interactions (ids as given)."""
    n = len(item_ids)
    user = np.array([1] * n + [2] * n)
    item = np.array(list(range(1, n + 1)) * 2)
    position = np.array(list(range(n)) * 2)
    split = np.zeros(2 * n, dtype=np.int8)
    split[n - 1] = split[2 * n - 1] = 2
    split[n - 2] = split[2 * n - 2] = 1
    ds = Dataset(
        name="toy",
        items=Vocab(item_ids),
        users=Vocab(["u1", "u2"]),
        interactions=Interactions(user=user, item=item, position=position, split=split),
        item_text=[""] + list(texts if texts is not None else [f"item {i}" for i in item_ids]),
        item_image=[None] + list(images if images is not None else [None] * n),
    )
    return write_store(ds, path)


class CountingTextEncoder(Encoder):
    """A deterministic stand-in for a text model: counts the inputs it really encodes."""

    modality = "text"
    name = "counting"

    def __init__(self, dim: int = 8, tag: str = "v1", **kwargs):
        super().__init__(**kwargs)
        self._dim = dim
        self.tag = tag
        self.calls = 0
        self.seen: list[str] = []

    @property
    def identity(self) -> str:
        return f"counting:{self.tag}:{self._dim}"

    @property
    def dim(self) -> int:
        return self._dim

    def _prepare(self, raw):
        if not isinstance(raw, str):
            raise EncodeError(f"expected a string, got {type(raw).__name__}")
        if raw == "BAD":
            raise EncodeError("this input is unencodable")
        return raw

    def _forward(self, prepared):
        self.calls += 1
        self.seen.extend(prepared)
        out = np.zeros((len(prepared), self._dim), dtype=np.float32)
        for r, text in enumerate(prepared):
            rng = np.random.default_rng(sum(text.encode()) + len(text))
            out[r] = rng.standard_normal(self._dim)
        return out


class MeanColourEncoder(Encoder):
    """A stand-in image model: the mean RGB of the decoded image (needs Pillow)."""

    modality = "image"
    name = "mean-colour"

    @property
    def identity(self) -> str:
        return "mean-colour:v1"

    @property
    def dim(self) -> int:
        return 3

    def _prepare(self, raw):
        from missrec.features.image import open_rgb

        return np.asarray(open_rgb(raw), dtype=np.float32).mean(axis=(0, 1))

    def _forward(self, prepared):
        return np.stack(prepared) / 255.0
