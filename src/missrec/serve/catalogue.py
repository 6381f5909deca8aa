"""The served catalogue: item ids, texts, raw features and the model's item cache, changed
by validated puts and deletes (each also the log entry that replays it).

The catalogue owns no model maths: an item is encoded by the model's own
:meth:`~missrec.model.base.SequentialRecommender.encode_items` (the code its offline
evaluation runs), and a change edits the cache's rows."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..data.batching import SequenceBatch
from ..errors import MissrecError
from ..features.base import EncodeError
from ..model.base import SequentialRecommender
from ..model.cache import ItemCache
from .bundle import ItemState
from .encoders import modality_encoder
from .errors import RequestError

MAX_ID_CHARS = 256
ITEM_KEYS = ("id", "text", "image", "features")


@dataclass
class NewItem:
    """An item to add or replace: raw features per modality and/or its text and image (the
    base64 of an image file's bytes)."""

    id: str
    text: str | None = None
    image: str | None = None
    features: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, obj: Any, where: str) -> "NewItem":
        if isinstance(obj, NewItem):
            obj = dataclasses.asdict(obj)
        if not isinstance(obj, dict):
            raise RequestError(where, "expected an object with 'id' and 'text' and/or 'features'")
        extra = sorted(set(obj) - set(ITEM_KEYS))
        if extra:
            raise RequestError(f"{where}.{extra[0]}", f"unknown field; expected some of {list(ITEM_KEYS)}")
        item_id, text, feats = obj.get("id"), obj.get("text"), obj.get("features") or {}
        if not isinstance(item_id, str) or not item_id.strip() or len(item_id) > MAX_ID_CHARS:
            raise RequestError(f"{where}.id", f"expected a non-empty string of at most {MAX_ID_CHARS} "
                                              f"characters, got {_show(item_id)}")
        if text is not None and not isinstance(text, str):
            raise RequestError(f"{where}.text", f"expected a string, got {_show(text)}")
        image = obj.get("image")
        if image is not None:
            _image_bytes(image, f"{where}.image")
        if not isinstance(feats, dict):
            raise RequestError(f"{where}.features", "expected an object {modality: [numbers]}")
        return cls(item_id, text, image, dict(feats))


def _image_bytes(value: Any, where: str) -> bytes:
    if not isinstance(value, str):
        raise RequestError(where, f"expected a base64 string of an image file, got {_show(value)}")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise RequestError(where, "expected the base64 of an image file's bytes; this is not "
                                  "valid base64") from None


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


class Catalogue:
    """Ids <-> rows of the current :class:`ItemState`, and its changes."""

    def __init__(self, model: SequentialRecommender, manifest: dict, state: ItemState, device: str):
        self.model = model
        self.manifest = manifest
        self.modalities: dict[str, dict] = dict(manifest["modalities"])
        self.device = device
        self.state = dataclasses.replace(state, cache=state.cache.to(device))
        self.index = {e: i for i, e in enumerate(state.ids) if i > 0}
        self._encoders: dict[str, Any] = {}
        self.changes: list[int] = []
        """Rows touched by every change, in order (indexes built on the catalogue follow it)."""
        self.layout = 0
        """Incremented when rows are renumbered (:meth:`drop_removed`)."""

    @property
    def size(self) -> int:
        return int(self.state.alive.sum())

    def lookup(self, history: Any, where: str) -> tuple[list[int], list[str]]:
        """Rows of a history's known, live items and the ids that are not."""
        if not isinstance(history, list) or not all(isinstance(h, str) for h in history):
            raise RequestError(where, "expected a list of item id strings")
        rows, missing = [], []
        alive = self.state.alive
        for h in history:
            r = self.index.get(h)
            if r is None or not alive[r]:
                missing.append(h)
            else:
                rows.append(r)
        return rows, missing

    def describe(self, item_id: str) -> dict[str, Any]:
        r = self.index.get(item_id)
        if r is None or not self.state.alive[r]:
            raise RequestError("id", f"unknown item id {_show(item_id)}", 404)
        st = self.state
        return {"id": item_id, "text": st.text[r],
                "modalities": [m for m in self.modalities if st.present[m][r]],
                "trained": r <= int(self.manifest["n_trained_items"])}

    # ------------------------------------------------------------------ changes

    def put(self, items: list[NewItem]) -> tuple[dict, dict[str, Any]]:
        self._check_can_add()
        if not items:
            raise RequestError("items", "needs at least one item")
        seen: set[str] = set()
        entries, warnings = [], []
        for i, it in enumerate(items):
            if it.id in seen:
                raise RequestError(f"items[{i}].id", f"{_show(it.id)} appears twice in this request")
            seen.add(it.id)
            feats = self._features_of(it, f"items[{i}]", warnings)
            if not any(v is not None for v in feats.values()):
                raise RequestError(f"items[{i}]", "has no modality: give 'features' for at least one "
                                                  f"of {list(self.modalities)} or a text or image an "
                                                  "installed encoder can embed")
            entries.append({"id": it.id, "text": it.text or "",
                            "features": {m: v.tolist() for m, v in feats.items() if v is not None}})
        op = {"op": "put", "items": entries}
        added, replaced = self.apply(op)
        report = {"added": added, "replaced": replaced, "catalogue_size": self.size}
        if warnings:
            report["warnings"] = warnings
        return op, report

    def delete(self, ids: list[str]) -> tuple[dict, dict[str, Any]]:
        for item_id in ids:
            self.describe(item_id)  # 404 for an unknown id
        op = {"op": "delete", "ids": list(ids)}
        self.apply(op)
        return op, {"removed": len(ids), "catalogue_size": self.size}

    def apply(self, op: dict) -> tuple[int, int]:
        """Apply a (validated or logged) change; returns (added, replaced)."""
        if op["op"] == "delete":
            alive = self.state.alive.copy()
            for item_id in op["ids"]:
                if item_id in self.index:
                    alive[self.index[item_id]] = False
                    self.changes.append(self.index[item_id])
            self.state = dataclasses.replace(self.state, alive=alive)
            return 0, 0
        if op["op"] != "put":
            raise MissrecError(f"unknown catalogue operation {op['op']!r}")
        return self._apply_put(op["items"])

    def drop_removed(self) -> None:
        """Forget the rows of removed items that were added after training (trained rows keep
        their places: their ids and interests are the model's), renumbering the rest."""
        st = self.state
        keep = st.alive.copy()
        keep[:int(self.manifest["n_trained_items"]) + 1] = True
        if keep.all():
            return
        rows = np.nonzero(keep)[0]
        self.state = ItemState([st.ids[r] for r in rows], [st.text[r] for r in rows], st.alive[rows],
                               {m: x[rows] for m, x in st.raw.items()},
                               {m: p[rows] for m, p in st.present.items()}, st.cache.take(torch.from_numpy(rows)))
        self.index = {e: i for i, e in enumerate(self.state.ids) if i > 0}
        self.changes, self.layout = [], self.layout + 1

    def _apply_put(self, entries: list[dict]) -> tuple[int, int]:
        st = self.state
        n = len(st.ids)
        ids, text, rows = list(st.ids), list(st.text), []
        replaced = 0
        for e in entries:
            r = self.index.get(e["id"])
            if r is None:
                r = len(ids)
                ids.append(e["id"])
                text.append(e["text"])
            else:
                replaced += int(st.alive[r])
                text[r] = e["text"]
            rows.append(r)
        grow = len(ids) - n
        raw, present = {}, {}
        for m, info in self.modalities.items():
            x = np.concatenate([st.raw[m], np.zeros((grow, info["dim"]), np.float32)])
            p = np.concatenate([st.present[m], np.zeros(grow, bool)])
            for r, e in zip(rows, entries):
                v = e["features"].get(m)
                p[r] = v is not None
                x[r] = np.asarray(v, np.float32) if v is not None else 0.0
            raw[m], present[m] = x, p
        alive = np.concatenate([st.alive, np.zeros(grow, bool)])
        alive[rows] = True
        rows_t = torch.tensor(rows, dtype=torch.long)
        cache = self.state.cache.put(rows_t, self._embed(rows_t, raw, present))
        self.state = ItemState(ids, text, alive, raw, present, cache)
        for r, e in zip(rows, entries):
            self.index[e["id"]] = r
        self.changes.extend(rows)
        return len(entries) - replaced, replaced

    def _embed(self, rows: torch.Tensor, raw: dict[str, np.ndarray], present: dict[str, np.ndarray]) -> ItemCache:
        """Cache rows of ``rows`` through the model's own item encoding; a trained item keeps
        its id (its id embedding, for a model that has them), an added one has none."""
        sel = rows.numpy()
        trained = torch.where(rows <= int(self.manifest["n_trained_items"]), rows, torch.zeros_like(rows))
        return self.model.encode_items({m: torch.from_numpy(raw[m][sel]) for m in self.modalities},
                                       {m: torch.from_numpy(present[m][sel]) for m in self.modalities}, trained)

    def _check_can_add(self) -> None:
        if not self.model.modalities:
            raise RequestError("items", f"model {self.manifest['model']!r} scores item ids only: it cannot "
                                        "rank unseen items, so items cannot be added", 400)

    def _features_of(self, it: NewItem, where: str, warnings: list[str]) -> dict[str, np.ndarray | None]:
        unknown = sorted(set(it.features) - set(self.modalities))
        if unknown:
            raise RequestError(f"{where}.features.{unknown[0]}",
                               f"unknown modality; this model reads {list(self.modalities)}")
        out: dict[str, np.ndarray | None] = {}
        for m, info in self.modalities.items():
            v = it.features.get(m)
            out[m] = None if v is None else _vector(v, info["dim"], f"{where}.features.{m}")
        if it.image is not None and "image" not in self.modalities:
            raise RequestError(f"{where}.image", f"this model reads no image; it reads {list(self.modalities)}")
        raw = {"text": it.text or None,
               "image": None if it.image is None else _image_bytes(it.image, f"{where}.image")}
        for m, content in raw.items():
            if out.get(m) is None and m in self.modalities and content is not None:
                out[m] = self._encode(m, content, it.id, f"{where}.{m}", warnings)
        return out

    def _encode(self, modality: str, content: Any, item_id: str, where: str,
                warnings: list[str]) -> np.ndarray | None:
        """Embed raw content by the encoder that made the bundle's ``modality`` features, or
        warn and leave the modality missing when that encoder cannot be rebuilt here."""
        enc, why = modality_encoder(modality, self.modalities[modality].get("source", ""), self._encoders)
        if enc is None:
            warnings.append(f"{item_id}: {modality} not embedded ({why}); its {modality} modality is missing")
            return None
        try:
            return enc.encode([content])[0].astype(np.float32)
        except EncodeError as e:
            raise RequestError(where, f"cannot be embedded: {e}") from None

    # ------------------------------------------------------------------ scoring

    def score_all(self, batch: SequenceBatch) -> torch.Tensor:
        return self.model.score_all(batch, self.state.cache)

    def score_items(self, batch: SequenceBatch, items: torch.Tensor) -> torch.Tensor:
        return self.model.score_items(batch, items, self.state.cache)

    def user_vectors(self, batch: SequenceBatch) -> torch.Tensor:
        return self.model.user_vectors(batch, self.state.cache)


def _vector(value: Any, dim: int, where: str) -> np.ndarray:
    if (not isinstance(value, list) or len(value) != dim
            or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in value)):
        raise RequestError(where, f"expected a list of {dim} numbers")
    if not all(math.isfinite(x) for x in value):
        raise RequestError(where, "values must be finite numbers")
    return np.asarray(value, dtype=np.float32)
