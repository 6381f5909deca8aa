"""A loaded store and its train/valid/test examples, shared by the runs of one dataset."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..data.batching import Examples, build_examples
from ..data.store import Dataset, read_schema, read_store
from ..model.registry import Catalogue


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
    def catalogue(self) -> Catalogue:
        return Catalogue(self.dataset.n_items, self.dataset.features)
