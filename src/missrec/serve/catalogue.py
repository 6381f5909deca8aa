"""The served catalogue: item ids, texts, raw features and the model's item cache, changed
by validated puts and deletes (each also the log entry that replays it).

The catalogue owns no model maths: an item is encoded by the model's own
:meth:`~missrec.model.base.SequentialRecommender.encode_items` (the code its offline
evaluation runs), and a change edits the cache's rows.

A change is made in two steps: :meth:`Catalogue.prepare_put` / :meth:`Catalogue.prepare_delete`
validate it, embed new content and build the whole next :class:`ItemState` (slow, and
touching nothing that is served), then :meth:`Catalogue.commit` swaps it in (a few
assignments). The caller serialises changes and holds the readers' lock only for the commit
(:mod:`.recommender`), so ranking never waits for an encode.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..data.batching import SequenceBatch
from ..errors import MissrecError
from ..model.base import SequentialRecommender
from ..model.cache import ItemCache
from .bundle import ItemState
from .content import ContentEncoder, LocalEncoders, gather_features, image_bytes, show
from .errors import RequestError
from .journal import unpack_vector

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
                                              f"characters, got {show(item_id)}")
        if text is not None and not isinstance(text, str):
            raise RequestError(f"{where}.text", f"expected a string, got {show(text)}")
        image = obj.get("image")
        if image is not None:
            image_bytes(image, f"{where}.image")
        if not isinstance(feats, dict):
            raise RequestError(f"{where}.features", "expected an object {modality: [numbers]}")
        return cls(item_id, text, image, dict(feats))

    def digest(self) -> str:
        """A digest of the item's content as given (not its id): a refresh that gives an item
        the same text, image and features again need not embed it again. The same vector
        written another way (a list or base64) digests differently, which only costs an
        embedding."""
        content = json.dumps({"text": self.text, "image": self.image, "features": self.features},
                             sort_keys=True, separators=(",", ":"), allow_nan=True)
        return hashlib.blake2b(content.encode(), digest_size=16).hexdigest()


@dataclass
class Change:
    """A validated catalogue change and the state it leads to, built but not applied."""

    op: dict
    """The log entry that replays it."""
    report: dict[str, Any]
    base: ItemState
    """The state it was built against."""
    state: ItemState
    index: dict[str, int]
    """Id -> row of the items it puts."""
    rows: list[int]
    """Rows it touches, in order."""


class Catalogue:
    """Ids <-> rows of the current :class:`ItemState`, and its changes."""

    def __init__(self, model: SequentialRecommender, manifest: dict, state: ItemState, device: str):
        self.model = model
        self.manifest = manifest
        self.modalities: dict[str, dict] = dict(manifest["modalities"])
        self.device = device
        self.state = dataclasses.replace(state, cache=state.cache.to(device))
        self.index = {e: i for i, e in enumerate(state.ids) if i > 0}
        self.encoder: ContentEncoder = LocalEncoders()
        """Embeds new items' texts and images (:mod:`.content`)."""
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
            raise RequestError("id", f"unknown item id {show(item_id)}", 404)
        st = self.state
        return {"id": item_id, "text": st.text[r],
                "modalities": [m for m in self.modalities if st.present[m][r]],
                "trained": r <= int(self.manifest["n_trained_items"])}

    # ------------------------------------------------------------------ changes

    def put(self, items: list[NewItem]) -> tuple[dict, dict[str, Any]]:
        """Validate, embed and apply a put; (its log entry, its report)."""
        change = self.prepare_put(items)
        self.commit(change)
        return change.op, change.report

    def delete(self, ids: list[str]) -> tuple[dict, dict[str, Any]]:
        change = self.prepare_delete(ids)
        self.commit(change)
        return change.op, change.report

    def apply(self, op: dict) -> tuple[int, int]:
        """Apply a (validated or logged) change; returns (added, replaced)."""
        change = self.prepare(op)
        self.commit(change)
        return change.report.get("added", 0), change.report.get("replaced", 0)

    def prepare_put(self, items: list[NewItem]) -> "Change":
        """The validated put of ``items`` (new content embedded, the next state built),
        not applied yet. Raises :class:`RequestError` naming the first bad field."""
        self._check_can_add()
        if not items:
            raise RequestError("items", "needs at least one item")
        seen: set[str] = set()
        for i, it in enumerate(items):
            if it.id in seen:
                raise RequestError(f"items[{i}].id", f"{show(it.id)} appears twice in this request")
            seen.add(it.id)
        warnings: list[str] = []
        feats = gather_features(items, self.modalities, self.encoder, warnings)
        entries = [{"id": it.id, "text": it.text or "",
                    "features": {m: v for m, v in f.items() if v is not None}, "digest": it.digest()}
                   for it, f in zip(items, feats)]
        change = self.prepare({"op": "put", "items": entries})
        if warnings:
            change.report["warnings"] = warnings
        return change

    def prepare_delete(self, ids: list[str]) -> "Change":
        for item_id in ids:
            self.describe(item_id)  # 404 for an unknown id
        change = self.prepare({"op": "delete", "ids": list(ids)})
        change.report = {"removed": len(ids), "catalogue_size": change.report["catalogue_size"]}
        return change

    def prepare(self, op: dict) -> "Change":
        """The change ``op`` (a log entry) built against the current state, not applied."""
        if op["op"] == "delete":
            alive = self.state.alive.copy()
            rows = [self.index[i] for i in op["ids"] if i in self.index]
            alive[rows] = False
            state = dataclasses.replace(self.state, alive=alive)
            return Change(op, {"catalogue_size": int(alive.sum())}, self.state, state, {}, rows)
        if op["op"] == "offset":
            state = dataclasses.replace(self.state, added_offset=float(op["added"]))
            return Change(op, {"added_offset": state.added_offset}, self.state, state, {}, [])
        if op["op"] != "put":
            raise MissrecError(f"unknown catalogue operation {op['op']!r}")
        return self._prepare_put(op)

    def prepare_offset(self, offset: float) -> "Change":
        """The change that scores every item added after training ``offset`` higher."""
        if not np.isfinite(offset):
            raise RequestError("offset", f"expected a finite number, got {show(offset)}")
        return self.prepare({"op": "offset", "added": float(offset)})

    def commit(self, change: "Change") -> None:
        """Swap a prepared change in. It must have been built against the current state
        (changes are serialised by the caller); readers must not run meanwhile."""
        if change.base is not self.state:
            raise MissrecError("a catalogue change was prepared against an older catalogue")
        self.state = change.state
        self.index.update(change.index)
        self.changes.extend(change.rows)

    def drop_removed(self) -> None:
        """Forget the rows of removed items that were added after training (trained rows keep
        their places: their ids and interests are the model's), renumbering the rest."""
        st = self.state
        keep = st.alive.copy()
        keep[:int(self.manifest["n_trained_items"]) + 1] = True
        if keep.all():
            return
        rows = np.nonzero(keep)[0]
        self.state = dataclasses.replace(
            st, ids=[st.ids[r] for r in rows], text=[st.text[r] for r in rows], alive=st.alive[rows],
            raw={m: x[rows] for m, x in st.raw.items()}, present={m: p[rows] for m, p in st.present.items()},
            cache=st.cache.take(torch.from_numpy(rows)), digest=[st.digest[r] for r in rows])
        self.index = {e: i for i, e in enumerate(self.state.ids) if i > 0}
        self.changes, self.layout = [], self.layout + 1

    def _prepare_put(self, op: dict) -> "Change":
        st, entries = self.state, op["items"]
        n = len(st.ids)
        ids, text, digest, rows, where = list(st.ids), list(st.text), list(st.digest), [], {}
        replaced = 0
        for e in entries:
            r = where.get(e["id"], self.index.get(e["id"]))
            if r is None:
                r = len(ids)
                ids.append(e["id"])
                text.append(e["text"])
                digest.append(e.get("digest", ""))  # logs older than digests have none
            else:
                replaced += int(r < n and st.alive[r])  # an id put twice counts once
                text[r] = e["text"]
                digest[r] = e.get("digest", "")
            where[e["id"]] = r
            rows.append(r)
        grow = len(ids) - n
        raw, present = {}, {}
        for m, info in self.modalities.items():
            x = np.concatenate([st.raw[m], np.zeros((grow, info["dim"]), np.float32)])
            p = np.concatenate([st.present[m], np.zeros(grow, bool)])
            for r, e in zip(rows, entries):
                v = e["features"].get(m)
                p[r] = v is not None
                x[r] = unpack_vector(v, info["dim"]) if v is not None else 0.0
            raw[m], present[m] = x, p
        alive = np.concatenate([st.alive, np.zeros(grow, bool)])
        alive[rows] = True
        rows_t = torch.tensor(rows, dtype=torch.long)
        state = dataclasses.replace(st, ids=ids, text=text, alive=alive, raw=raw, present=present,
                                    cache=st.cache.put(rows_t, self._embed(rows_t, raw, present)), digest=digest)
        report = {"added": len(entries) - replaced, "replaced": replaced, "catalogue_size": int(alive.sum())}
        return Change(op, report, st, state, where, rows)

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

    # ------------------------------------------------------------------ scoring

    def score_all(self, batch: SequenceBatch, state: ItemState | None = None, offset: bool = True) -> torch.Tensor:
        """Scores [B, rows] of ``state`` (the current one by default), with its offset for
        added items unless ``offset`` is False."""
        st = state if state is not None else self.state
        scores = self.model.score_all(batch, st.cache)
        return self._offset(scores, st, None) if offset else scores

    def score_items(self, batch: SequenceBatch, items: torch.Tensor) -> torch.Tensor:
        st = self.state
        return self._offset(self.model.score_items(batch, items, st.cache), st, items)

    def added_rows(self, rows: torch.Tensor) -> torch.Tensor:
        """Which of ``rows`` hold items added after training (trained items keep their rows)."""
        return rows > int(self.manifest["n_trained_items"])

    def _offset(self, scores: torch.Tensor, st: ItemState, items: torch.Tensor | None) -> torch.Tensor:
        if not st.added_offset:
            return scores
        rows = items if items is not None else torch.arange(scores.shape[-1], device=scores.device)
        return scores + st.added_offset * self.added_rows(rows).to(scores.dtype)

    def user_vectors(self, batch: SequenceBatch) -> torch.Tensor:
        return self.model.user_vectors(batch, self.state.cache)
