"""A loaded store and its train/valid/test examples, shared by the runs of one dataset."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..data.batching import Examples, build_examples
from ..data.store import Dataset, read_schema, read_store
from ..model.registry import ItemFeatures, required_modalities
from .meta import max_len_of


@dataclass
class RunData:
    """A loaded store and its examples, reusable across runs of the same dataset."""

    store: Path
    dataset: Dataset
    train: Examples
    valid: Examples
    test: Examples
    fingerprint: str

    @classmethod
    def load(cls, store: str | Path, modalities: list[str], max_len: int) -> "RunData":
        store = Path(store)
        ds = read_store(store, modalities=modalities)
        return cls(store, ds, build_examples(ds, "train", max_len), build_examples(ds, "valid", max_len),
                   build_examples(ds, "test", max_len), read_schema(store).get("fingerprint", ""))

    @property
    def catalogue(self) -> ItemFeatures:
        return ItemFeatures(self.dataset.n_items, self.dataset.features)

    @classmethod
    def cached(cls, cache: dict[tuple, "RunData"], store: str | Path, model_cfg: Any) -> "RunData":
        """The store loaded for ``model_cfg`` (its modalities and history length), from ``cache``
        when the last run loaded the same; the cache keeps one store at a time."""
        key = (str(store), tuple(sorted(required_modalities(model_cfg))), max_len_of(model_cfg))
        if key not in cache:
            cache.clear()
            cache[key] = cls.load(store, list(key[1]), key[2])
        return cache[key]
