"""New items' raw features: vectors sent as they are, texts and images embedded in batches.

A put names, per item, feature vectors and/or raw content (a text, the base64 of an image
file). Vectors are checked against the modality's width; content is embedded by the
encoder that made the bundle's features of that modality (:mod:`.encoders`), one batched
call per modality for the whole request (one call per item would pay the model's fixed
cost per item). This is the slow part of a write, so it runs before, and outside, the lock
that ranking needs (:mod:`.recommender`).
"""

from __future__ import annotations

import base64
import binascii
import math
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from .encoders import modality_encoder
from .errors import RequestError


@dataclass
class Encoded:
    """Vectors of a batch of one modality's contents."""

    vectors: np.ndarray | None
    """[n, d] float32, one row per content; None when no encoder can be rebuilt here."""
    errors: dict[int, str] = field(default_factory=dict)
    """Position -> why that content could not be embedded (its row must not be used)."""
    missing: str = ""
    """Why there is no encoder (when ``vectors`` is None)."""


class ContentEncoder(Protocol):
    def encode(self, modality: str, source: str, contents: list[Any]) -> Encoded: ...

    def close(self) -> None: ...


class LocalEncoders:
    """Embeds contents in this process, by encoders rebuilt on first use and kept."""

    def __init__(self) -> None:
        self._loaded: dict[str, Any] = {}

    def encode(self, modality: str, source: str, contents: list[Any]) -> Encoded:
        enc, why = modality_encoder(modality, source, self._loaded)
        if enc is None:
            return Encoded(None, {}, why)
        res = enc.encode_partial(contents)
        return Encoded(np.asarray(res.matrix, dtype=np.float32), dict(res.errors))

    def close(self) -> None:
        self._loaded.clear()


def gather_features(items: list[Any], modalities: dict[str, dict], encoder: ContentEncoder,
                    warnings: list[str]) -> list[dict[str, np.ndarray | None]]:
    """Per item (a :class:`~.catalogue.NewItem`), its raw feature vector per modality (None:
    missing): sent vectors first, then embedded content; a modality whose encoder cannot be
    rebuilt here is missing, with a line in ``warnings``. Raises :class:`RequestError`
    naming the first bad field."""
    out: list[dict[str, np.ndarray | None]] = []
    todo: dict[str, list[tuple[int, Any]]] = {m: [] for m in modalities}
    for i, it in enumerate(items):
        feats = sent_vectors(it, modalities, f"items[{i}]")
        content = {"text": it.text or None,
                   "image": None if it.image is None else image_bytes(it.image, f"items[{i}].image")}
        for m, value in content.items():
            if feats.get(m) is None and m in modalities and value is not None:
                todo[m].append((i, value))
        out.append(feats)
    for m, wanted in todo.items():
        if wanted:
            _embed_content(items, out, m, modalities[m].get("source", ""), wanted, encoder, warnings)
    for i, feats in enumerate(out):
        if not any(v is not None for v in feats.values()):
            raise RequestError(f"items[{i}]", "has no modality: give 'features' for at least one "
                                              f"of {list(modalities)} or a text or image an "
                                              "installed encoder can embed")
    return out


def sent_vectors(it: Any, modalities: dict[str, dict], where: str) -> dict[str, np.ndarray | None]:
    """An item's feature vectors as sent, checked (None for a modality it sends none of)."""
    unknown = sorted(set(it.features) - set(modalities))
    if unknown:
        raise RequestError(f"{where}.features.{unknown[0]}",
                           f"unknown modality; this model reads {list(modalities)}")
    if it.image is not None and "image" not in modalities:
        raise RequestError(f"{where}.image", f"this model reads no image; it reads {list(modalities)}")
    return {m: None if it.features.get(m) is None else vector(it.features[m], info["dim"], f"{where}.features.{m}")
            for m, info in modalities.items()}


def _embed_content(items: list[Any], out: list[dict], modality: str, source: str,
                   wanted: list[tuple[int, Any]], encoder: ContentEncoder, warnings: list[str]) -> None:
    res = encoder.encode(modality, source, [value for _, value in wanted])
    if res.vectors is None:
        warnings.extend(f"{items[i].id}: {modality} not embedded ({res.missing}); its {modality} "
                        "modality is missing" for i, _ in wanted)
        return
    if res.errors:
        first = min(res.errors)
        raise RequestError(f"items[{wanted[first][0]}].{modality}", f"cannot be embedded: {res.errors[first]}")
    for row, (i, _) in enumerate(wanted):
        out[i][modality] = res.vectors[row]


def image_bytes(value: Any, where: str) -> bytes:
    if not isinstance(value, str):
        raise RequestError(where, f"expected a base64 string of an image file, got {show(value)}")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise RequestError(where, "expected the base64 of an image file's bytes; this is not "
                                  "valid base64") from None


def vector(value: Any, dim: int, where: str) -> np.ndarray:
    if (not isinstance(value, list) or len(value) != dim
            or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in value)):
        raise RequestError(where, f"expected a list of {dim} numbers")
    if not all(math.isfinite(x) for x in value):
        raise RequestError(where, "values must be finite numbers")
    return np.asarray(value, dtype=np.float32)


def show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
