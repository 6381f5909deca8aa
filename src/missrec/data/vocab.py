"""External id <-> internal index, with index 0 reserved for padding."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

PAD = "[PAD]"


class Vocab:
    """An ordered vocabulary. ``ids[0]`` is the padding token; real entries are 1..len-1."""

    def __init__(self, external_ids: Iterable[str]):
        self.ids: list[str] = [PAD]
        self._index: dict[str, int] = {}
        for ext in external_ids:
            ext = str(ext)
            if ext in self._index:
                raise ValueError(f"duplicate external id {ext!r}")
            self._index[ext] = len(self.ids)
            self.ids.append(ext)

    def __len__(self) -> int:
        """Number of entries including padding."""
        return len(self.ids)

    @property
    def size(self) -> int:
        """Number of real entries (padding excluded)."""
        return len(self.ids) - 1

    def __contains__(self, ext: str) -> bool:
        return ext in self._index

    def index(self, ext: str) -> int:
        return self._index[ext]

    def get(self, ext: str, default: int = 0) -> int:
        return self._index.get(ext, default)

    def lookup(self, exts: Sequence[str]) -> np.ndarray:
        """Indexes of many external ids; unknown ids map to 0 (padding)."""
        return np.fromiter((self._index.get(e, 0) for e in exts), dtype=np.int64, count=len(exts))

    def external(self, idx: int) -> str:
        return self.ids[idx]
