"""The encoder interface: ``encode(inputs) -> float32[N, d]``, batched, cached, deterministic.

A concrete encoder says three things: its :attr:`Encoder.identity` (everything that changes
its output: model, weights digest, preprocessing), how to turn one raw input into a model
input (:meth:`Encoder._prepare`), and how to run the model on a batch of those
(:meth:`Encoder._forward`). The base class does the rest: content keys, the on-disk cache,
de-duplication, batching and the progress bar. The model is loaded lazily, on the first
batch that misses the cache, so a fully cached run never loads (or even imports) it.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from tqdm.auto import tqdm

from ..errors import MissrecError
from .cache import FeatureCache, bytes_key, text_key


class EncodeError(MissrecError):
    """Some inputs could not be encoded (unreadable image, wrong input type...)."""


@dataclass
class EncodeResult:
    """Output of :meth:`Encoder.encode_partial`.

    ``matrix[i]`` is input i's vector where ``ok[i]``; rows of failed inputs are zero and
    must not be used (the caller marks them absent). ``errors`` maps failed positions to why.
    """

    matrix: np.ndarray
    ok: np.ndarray
    errors: dict[int, str] = field(default_factory=dict)
    n_cached: int = 0
    """Distinct inputs served from the cache."""
    n_computed: int = 0
    """Distinct inputs that went through the model."""
    seconds: float = 0.0


class Encoder(ABC):
    """A frozen pre-trained encoder for one modality (``"text"`` or ``"image"``).

    Parameters
    ----------
    batch_size:
        Inputs per model call.
    cache_dir:
        Root of the feature cache (default ``$MISSREC_CACHE`` or ``~/.cache/missrec``).
    use_cache:
        ``False`` always runs the model and stores nothing.
    progress:
        Show a tqdm progress bar over the inputs that miss the cache.
    """

    modality: ClassVar[str]
    name: ClassVar[str]

    def __init__(self, *, batch_size: int = 32, cache_dir: str | Path | None = None,
                 use_cache: bool = True, progress: bool = False):
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        self.batch_size = batch_size
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.use_cache = use_cache
        self.progress = progress
        self._cache: FeatureCache | None = None

    # ------------------------------------------------------------------ to implement

    @property
    @abstractmethod
    def identity(self) -> str:
        """A string that changes whenever the encoder's output could change. Must not load
        the model (it is computed on fully cached runs too)."""

    @property
    @abstractmethod
    def dim(self) -> int:
        """Output width ``d``."""

    @abstractmethod
    def _prepare(self, raw: Any) -> Any:
        """One raw input -> one model input; raises :class:`EncodeError` if it cannot."""

    @abstractmethod
    def _forward(self, prepared: list[Any]) -> np.ndarray:
        """Run the (lazily loaded) model on a batch of prepared inputs -> float32 ``[B, d]``."""

    def _cost(self, raw: Any) -> int:
        """Batching hint: inputs of similar cost are batched together (texts: length)."""
        return len(raw) if isinstance(raw, str) else 0

    def _key(self, raw: Any) -> str:
        """Content key of one raw input (text: its UTF-8; a path: the file's bytes)."""
        if isinstance(raw, str) and self.modality == "text":
            return text_key(raw)
        if isinstance(raw, (str, Path)):
            with open(raw, "rb") as f:
                return bytes_key(f.read())
        if isinstance(raw, (bytes, bytearray)):
            return bytes_key(bytes(raw))
        raise EncodeError(f"{self.name}: cannot encode an input of type {type(raw).__name__}")

    # ------------------------------------------------------------------ public API

    @property
    def cache(self) -> FeatureCache | None:
        if not self.use_cache:
            return None
        if self._cache is None:
            self._cache = FeatureCache(self.identity, self.cache_dir)
        return self._cache

    def encode(self, inputs: Sequence[Any]) -> np.ndarray:
        """Encode every input -> float32 ``[N, d]``; raises :class:`EncodeError` on any failure."""
        res = self.encode_partial(inputs)
        if res.errors:
            first = min(res.errors)
            raise EncodeError(f"{len(res.errors)} of {len(inputs)} inputs could not be encoded; "
                              f"first: input {first}: {res.errors[first]}")
        return res.matrix

    def encode_partial(self, inputs: Sequence[Any]) -> EncodeResult:
        """Encode what can be encoded; failed inputs are reported, not raised."""
        t0 = time.perf_counter()
        n = len(inputs)
        keys: list[str | None] = [None] * n
        errors: dict[int, str] = {}
        for i, raw in enumerate(inputs):
            try:
                keys[i] = self._key(raw)
            except OSError as e:
                errors[i] = f"{raw}: {e.strerror or e}"
            except EncodeError as e:
                errors[i] = str(e)
        wanted = list(dict.fromkeys(k for k in keys if k is not None))
        cache = self.cache
        vectors: dict[str, np.ndarray] = cache.get_many(wanted) if cache is not None else {}
        n_cached = len(vectors)
        # One model call per distinct content: duplicates share the vector.
        first_pos: dict[str, int] = {}
        for i, k in enumerate(keys):
            if k is not None and k not in vectors and k not in first_pos:
                first_pos[k] = i
        todo = list(first_pos.items())
        # Batch similar-cost inputs together (e.g. texts of similar length, so little padding);
        # the sort is stable, so the batches -- and the outputs -- are the same on every run.
        todo.sort(key=lambda kp: self._cost(inputs[kp[1]]))
        failed_keys: dict[str, str] = {}
        if todo:
            self._run(inputs, todo, vectors, failed_keys)
        for i, k in enumerate(keys):
            if k is not None and k in failed_keys:
                errors[i] = failed_keys[k]
        d = self._width(vectors)
        matrix = np.zeros((n, d), dtype=np.float32)
        ok = np.zeros(n, dtype=bool)
        for i, k in enumerate(keys):
            if k is not None and k in vectors:
                matrix[i] = vectors[k]
                ok[i] = True
        return EncodeResult(matrix, ok, errors, n_cached=n_cached,
                            n_computed=len(todo) - len(failed_keys), seconds=time.perf_counter() - t0)

    # ------------------------------------------------------------------ internals

    def _width(self, vectors: dict[str, np.ndarray]) -> int:
        for v in vectors.values():
            return int(v.shape[0])
        return self.dim

    def _run(self, inputs: Sequence[Any], todo: list[tuple[str, int]],
             vectors: dict[str, np.ndarray], failed: dict[str, str]) -> None:
        cache = self.cache
        bar = tqdm(total=len(todo), desc=f"{self.name} {self.modality}", unit="item",
                   disable=not self.progress, leave=False)
        try:
            for start in range(0, len(todo), self.batch_size):
                chunk = todo[start:start + self.batch_size]
                ready: list[tuple[str, Any]] = []
                for key, pos in chunk:
                    try:
                        ready.append((key, self._prepare(inputs[pos])))
                    except EncodeError as e:
                        failed[key] = str(e)
                if ready:
                    out = np.asarray(self._forward([p for _, p in ready]), dtype=np.float32)
                    if out.shape[0] != len(ready):
                        raise RuntimeError(f"{self.name}: model returned {out.shape[0]} rows for {len(ready)} inputs")
                    new = [(key, out[j]) for j, (key, _) in enumerate(ready)]
                    vectors.update(new)
                    if cache is not None:
                        # Commit every batch: an interrupted run keeps what it computed.
                        cache.put_many(new)
                bar.update(len(chunk))
        finally:
            bar.close()
