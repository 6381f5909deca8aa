"""Top-K recommendations from a bundle or a run, over a catalogue that can change live.

:class:`Recommender` is the one API the CLI and the HTTP service call. Exact scoring is the
model's own ``score_all`` (for MISSRec, dynamic fusion, eq. 2) over the served item cache,
so a catalogue that was not changed ranks exactly as offline evaluation does; items are
added through the model's adapters (:mod:`.items`) and changes persist in the bundle
(:mod:`.journal`). Loaded from a run directory, changes live in memory only.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.batching import SequenceBatch
from .ann import ApproximateIndex, ApproximateOptions
from .bundle import ItemState, from_checkpoint, is_bundle, load_bundle, write_json
from .calibration import Calibration, added_share, exposure_offset, top_scores
from .catalogue import Catalogue, Change, NewItem
from .content import ContentEncoder
from .errors import RequestError
from .journal import Journal, read_log
from .queueing import n_histories, take_batch

CALIBRATION_FILE = "calibration.json"
"""In a bundle: the histories kept by ``calibrate_added(..., keep=True)``."""

UNKNOWN_POLICIES = ("error", "skip")


@dataclass
class Recommendation:
    item_id: str
    score: float
    text: str


@dataclass
class Ranking:
    """One history's top-K, with what was left out of the history."""

    items: list[str]
    scores: list[float]
    skipped: list[str] = field(default_factory=list)
    """Unknown ids dropped from the history (``unknown='skip'``)."""
    truncated: int = 0
    """Oldest history items dropped to fit the model's longest history."""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"items": self.items, "scores": self.scores}
        if self.skipped:
            out["skipped"] = self.skipped
        if self.truncated:
            out["truncated"] = self.truncated
        return out


@dataclass
class _Resolved:
    rows: list[int]
    skipped: list[str]
    cut: int


@dataclass
class _Job:
    """A queued :meth:`Recommender.recommend` call."""

    histories: list[list[str]]
    unknown: str
    field_name: str
    k: int
    exclude_seen: bool
    rows: list[_Resolved] = field(default_factory=list)
    done: bool = False
    result: list[Ranking] | None = None
    error: Exception | None = None


class Recommender:
    """Loads a bundle (or a run) once; ranks, embeds, adds and removes items.

    Thread-safe. Two locks: ``_lock`` serialises model calls and the swap of a catalogue
    change; ``_write_lock`` serialises changes (embedding new items, building the next
    catalogue state, logging it, compacting the log), so a write never holds ranking up for
    longer than the swap. ``writable=False`` opens a bundle without taking its write lock;
    changes are then refused.
    """

    def __init__(self, source: str | Path, device: str = "cpu", writable: bool = True,
                 compact_every: int = 1000, encoder: ContentEncoder | None = None):
        source = Path(source)
        self.device = device
        self.journal: Journal | None = None
        ops: list[dict[str, Any]] = []
        if is_bundle(source):
            loaded = load_bundle(source)
            self.manifest, model, self.config, items = (loaded.manifest, loaded.model,
                                                       loaded.config, loaded.items)
            if writable:
                self.journal = Journal(source, loaded.generation)
            else:  # the changes a writer has logged so far, without compacting them
                ops = read_log(source / f"items-{loaded.generation}.log.jsonl")[0]
        else:
            parts = from_checkpoint(source)
            self.manifest, model, self.config, items = parts.manifest, parts.model, parts.config, parts.items
        self.model = model.to(device)
        self.source = source
        self.writable = writable
        self.max_len = int(getattr(self.config, "max_len", 50))
        self._lock = threading.RLock()
        """Held by ranking and by the swap of a catalogue change (never by an encode)."""
        self._write_lock = threading.Lock()
        """Serialises catalogue changes and compaction; ranking never takes it."""
        self._queue_lock = threading.Lock()
        self._queue: list[_Job] = []
        self.catalogue = Catalogue(self.model, self.manifest, items, device)
        if encoder is not None:  # embeds new items' texts and images (default: in this process)
            self.catalogue.encoder = encoder
        self.compact_every = compact_every
        kept = source / CALIBRATION_FILE
        self.calibration_sample: dict[str, Any] | None = (
            json.loads(kept.read_text()) if is_bundle(source) and kept.is_file() else None)
        """Histories (and k) whose offset for added items is found again after every write."""
        self.ann: ApproximateIndex | None = None
        if self.journal is not None:
            ops = self.journal.replay()
        for op in ops:
            self.catalogue.apply(op)
        if ops and self.journal is not None:
            self._compact()

    # ------------------------------------------------------------------ catalogue

    @property
    def n_items(self) -> int:
        """Items that can be recommended (the catalogue size)."""
        return self.catalogue.size

    @property
    def item_ids(self) -> list[str]:
        return self.catalogue.state.ids

    @property
    def item_text(self) -> list[str]:
        return self.catalogue.state.text

    def get_item(self, item_id: str) -> dict[str, Any]:
        with self._lock:
            return self.catalogue.describe(item_id)

    def add_items(self, items: list[NewItem | dict]) -> dict[str, Any]:
        """Add or replace items (raw features and/or text); returns the counts added and
        replaced and the catalogue size. Immediately rankable; persisted in a bundle.

        Ranking goes on meanwhile: the items are embedded, and the next catalogue built,
        outside the lock that ranking takes; only the swap holds it."""
        self._check_writable()
        parsed = [NewItem.parse(x, f"items[{i}]") for i, x in enumerate(items)]
        with self._write_lock:
            return self._recalibrate(self._change(self.catalogue.prepare_put(parsed)))

    def remove_items(self, item_ids: list[str]) -> dict[str, Any]:
        self._check_writable()
        with self._write_lock:
            return self._recalibrate(self._change(self.catalogue.prepare_delete(list(item_ids))))

    def set_added_offset(self, offset: float) -> dict[str, Any]:
        """Score every item added after training ``offset`` higher (0: as the model scores
        them); histories kept for recalibration are forgotten."""
        self._check_writable()
        with self._write_lock:
            self._keep_calibration(None)
            return self._change(self.catalogue.prepare_offset(offset))

    def calibrate_added(self, histories: list[list[str]], k: int = 10, keep: bool = False) -> Calibration:
        """Set the offset on the scores of items added after training so that, over
        ``histories`` (ids of trained items; unknown ids skipped), they take their share of
        the catalogue's places in the top ``k`` (:mod:`.calibration`). Logged like any
        change; ranking goes on meanwhile (only the swap holds it up). With ``keep`` the
        histories are kept (in a bundle, in ``calibration.json``) and the offset is found
        again after every later put or delete."""
        self._check_writable()
        self._check_k(k)
        with self._write_lock:
            found = self._calibrate(histories, k)
            if keep:
                self._keep_calibration({"histories": histories, "k": k})
        return found

    @torch.no_grad()
    def _calibrate(self, histories: list[list[str]], k: int) -> Calibration:
        """:meth:`calibrate_added` under the write lock."""
        state = self.catalogue.state
        alive = torch.from_numpy(state.alive)
        added = self.catalogue.added_rows(torch.arange(len(state.ids))) & alive
        trained = alive & ~added
        if not bool(added.any()) or not bool(trained.any()):
            raise RequestError("items", "the catalogue needs both trained items and items added after "
                                        "training to calibrate their exposure")
        known = [rows for h in histories if (rows := self.catalogue.lookup(h, "histories")[0])]
        if not known:
            raise RequestError("histories", "no history holds an item of the catalogue")
        parts = []
        for start in range(0, len(known), 256):
            batch = self._batch([r[-self.max_len:] for r in known[start:start + 256]])
            scores = self.catalogue.score_all(batch, state, offset=False).float().cpu()
            parts.append(top_scores(scores, added, trained, k))
        tops = (torch.cat([t for t, _ in parts]), torch.cat([a for _, a in parts]))
        target = int(added.sum()) / int(alive.sum())
        offset = exposure_offset(tops, target, k)
        before = added_share(tops, state.added_offset, k)
        self._change(self.catalogue.prepare_offset(offset))
        return Calibration(offset, before, added_share(tops, offset, k), target, len(known), k)

    def _keep_calibration(self, sample: dict[str, Any] | None) -> None:
        self.calibration_sample = sample
        if is_bundle(self.source):
            path = self.source / CALIBRATION_FILE
            if sample is None:
                path.unlink(missing_ok=True)
            else:
                write_json(path, sample)

    def _recalibrate(self, report: dict[str, Any]) -> dict[str, Any]:
        """After a put or delete (write lock held): the kept histories' offset, found again."""
        if self.calibration_sample is not None:
            try:
                report["added_offset"] = self._calibrate(self.calibration_sample["histories"],
                                                         self.calibration_sample["k"]).offset
            except RequestError:  # no added items left, or none of the histories' items
                pass
        return report

    def _check_writable(self) -> None:
        if is_bundle(self.source) and self.journal is None:
            raise RequestError("items", "this bundle is open read-only", 403)

    def _change(self, change: Change) -> dict[str, Any]:
        """Log a prepared change, then swap it in (the caller holds the write lock, so the
        log's order is the order changes are applied, and the change was built against
        the catalogue it replaces)."""
        if self.journal is not None:  # logged before any reader can see it
            self.journal.append(change.op)
        with self._lock:
            self.catalogue.commit(change)
        if self.journal is not None and self.journal.entries >= self.compact_every:
            self._compact()
        return change.report

    def compact(self) -> None:
        """Fold the logged changes into a new generation now (a bundle with changes)."""
        with self._write_lock:
            if self.journal is not None and self.journal.entries:
                self._compact()

    def _compact(self) -> None:
        """Fold the log into a new generation, without the rows of removed added items.
        Readers wait only for the renumbering; the files are written while they rank
        (the state written is a snapshot: changes replace states, never edit them)."""
        with self._lock:
            self.catalogue.drop_removed()
            state = self.catalogue.state
        self.journal.compact(state)

    def close(self) -> None:
        if self.journal is not None:
            self.journal.close()
        self.catalogue.encoder.close()

    # ------------------------------------------------------------------ ranking

    def recommend(self, histories: list[list[str]], k: int = 10, exclude_seen: bool = False,
                  unknown: str = "error", field_name: str = "histories") -> list[Ranking]:
        """Top-``k`` items for every history (external ids, oldest first); approximate
        (:mod:`.ann`) after :meth:`enable_approximate`, exact otherwise.

        Concurrent calls are batched: a call queues its histories, and whichever call holds
        the model next ranks the queued calls, oldest first, in passes of up to
        :data:`~.queueing.MAX_BATCH` histories, until its own is done (flat combining: no
        timer, so a lone request never waits, and under load the model sees larger batches).
        """
        job = _Job(histories, unknown, field_name, k, exclude_seen)
        with self._queue_lock:
            self._queue.append(job)
        with self._lock:
            while not job.done:  # the oldest calls first, a bounded pass at a time
                with self._queue_lock:
                    jobs, self._queue = take_batch(self._queue, lambda j: n_histories(j.histories))
                self._rank(jobs)
        if job.error is not None:
            raise job.error
        return job.result

    def recommend_calls(self, calls: list[dict[str, Any]]) -> list[list[Ranking] | RequestError]:
        """Several :meth:`recommend` calls (their keyword arguments) ranked in one pass; each
        answer is the call's rankings or its :class:`RequestError`."""
        jobs = [_Job(c["histories"], c.get("unknown", "error"), c.get("field_name", "histories"),
                     c.get("k", 10), c.get("exclude_seen", False)) for c in calls]
        with self._lock:
            self._rank(jobs)
        for job in jobs:
            if job.error is not None and not isinstance(job.error, RequestError):
                raise job.error
        return [job.error if job.error is not None else job.result for job in jobs]

    def _rank(self, jobs: list["_Job"]) -> None:
        """Resolve every queued call's histories (under the lock, so ids and rows agree
        with the catalogue being scored) and rank the valid ones in one pass."""
        ready = []
        try:
            for job in jobs:
                try:
                    self._check_k(job.k)
                    job.rows = self._resolve(job.histories, job.unknown, job.field_name)
                    ready.append(job)
                except RequestError as e:
                    job.error = e
            if ready:
                self._top(ready)
        except Exception as e:  # every waiting call learns of it, not only this one
            for job in ready:
                job.error = e
        finally:
            for job in jobs:
                job.done = True

    @torch.no_grad()
    def _top(self, jobs: list["_Job"]) -> None:
        state = self.catalogue.state
        rows = [r for job in jobs for r in job.rows]
        batch = self._batch([r.rows for r in rows])
        seen = torch.tensor([job.exclude_seen for job in jobs for _ in job.rows], device=self.device)
        k = min(max(job.k for job in jobs), self.n_items)
        if self.ann is not None:
            values, indices = self._approximate_top(batch, state, k, seen)
        else:
            scores = self._scores(batch, state)
            if bool(seen.any()):
                hist = batch.items.masked_fill(~seen[:, None], 0)
                scores.scatter_(1, hist, -torch.inf)
            values, indices = scores.topk(k, dim=1)
        values, indices = values.tolist(), indices.tolist()
        at = 0
        for job in jobs:
            job.result = []
            for r in job.rows:
                pairs = [(state.ids[i], s) for s, i in zip(values[at][:job.k], indices[at][:job.k])
                         if s > -float("inf")]
                job.result.append(Ranking([p[0] for p in pairs], [p[1] for p in pairs], r.skipped, r.cut))
                at += 1

    def enable_approximate(self, options: ApproximateOptions | None = None) -> None:
        """Rank with FAISS candidates re-scored exactly (:mod:`.ann`; needs faiss)."""
        with self._lock:
            self.ann = ApproximateIndex(self.catalogue, options or ApproximateOptions())

    def disable_approximate(self) -> None:
        with self._lock:
            self.ann = None

    @torch.no_grad()
    def _approximate_top(self, batch: SequenceBatch, state: ItemState, k: int,
                         exclude_seen: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        items = self.ann.candidates(self.catalogue.user_vectors(batch)).to(self.device)
        scores = self.catalogue.score_items(batch, items).float()
        alive = torch.from_numpy(state.alive).to(self.device)
        drop = ~alive[items]
        if bool(exclude_seen.any()):
            drop |= (items[:, :, None] == batch.items[:, None, :]).any(-1) & exclude_seen[:, None]
        values, where = scores.masked_fill(drop, -torch.inf).topk(min(k, items.shape[1]), dim=1)
        return values, items.gather(1, where)

    def recommend_many(self, histories: list[list[str]], k: int = 10,
                       exclude_seen: bool = False) -> list[list[Recommendation]]:
        """:meth:`recommend` as (id, score, text) triples."""
        text = {i: t for i, t in zip(self.item_ids, self.item_text)}
        return [[Recommendation(i, s, text.get(i, "")) for i, s in zip(r.items, r.scores)]
                for r in self.recommend(histories, k, exclude_seen)]

    @torch.no_grad()
    def embed(self, histories: list[list[str]], unknown: str = "error",
              field_name: str = "histories") -> tuple[np.ndarray, list[Ranking]]:
        """Sequence vectors u [B, d] (normalised as the model scores them) of the histories,
        and per history what was skipped or truncated (as rankings with no items)."""
        with self._lock:
            resolved = self._resolve(histories, unknown, field_name)
            u = self.catalogue.user_vectors(self._batch([r.rows for r in resolved]))
        return u.float().cpu().numpy(), [Ranking([], [], r.skipped, r.cut) for r in resolved]

    def _check_k(self, k: Any) -> None:
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= self.n_items:
            raise RequestError("k", f"must be an integer from 1 to the catalogue size "
                                    f"{self.n_items}, got {k!r}")

    def _resolve(self, histories: list[list[str]], unknown: str, field_name: str) -> list["_Resolved"]:
        if unknown not in UNKNOWN_POLICIES:
            raise RequestError("unknown", f"must be one of {list(UNKNOWN_POLICIES)}, got {unknown!r}")
        if not histories:
            raise RequestError(field_name, "needs at least one history")
        out = []
        for j, h in enumerate(histories):
            where = field_name if field_name == "history" else f"{field_name}[{j}]"
            idx, miss = self.catalogue.lookup(h, where)
            if miss and unknown == "error":
                raise RequestError(where, f"unknown item id(s): {', '.join(miss[:5])}"
                                          + (f" (+{len(miss) - 5} more)" if len(miss) > 5 else ""), 404)
            if not idx:
                raise RequestError(where, "empty history" if not miss else
                                   f"no known item (skipped: {', '.join(miss[:5])})")
            out.append(_Resolved(idx[-self.max_len:], miss, max(len(idx) - self.max_len, 0)))
        return out

    def _batch(self, rows: list[list[int]]) -> SequenceBatch:
        width = max(len(r) for r in rows)
        items = torch.zeros(len(rows), width, dtype=torch.long)
        for r, h in enumerate(rows):
            items[r, :len(h)] = torch.tensor(h)
        n = len(rows)
        batch = SequenceBatch(items, torch.tensor([len(h) for h in rows]),
                              torch.zeros(n, dtype=torch.long), torch.zeros(n, dtype=torch.long))
        return batch.to(self.device)

    @torch.no_grad()
    def _scores(self, batch: SequenceBatch, state: ItemState) -> torch.Tensor:
        scores = self.catalogue.score_all(batch, state).float()
        dead = torch.from_numpy(~state.alive).to(scores.device)
        return scores.masked_fill(dead[None, :], -torch.inf)
