"""Writes never stall reads: an item's content is embedded, and the next catalogue built,
outside the lock ranking takes; concurrent writers are serialised and both logged.

The encoder is replaced by one that waits on an event, so a write is held in the middle
of its embedding for as long as a test needs: the tests assert what readers see then, not
how long anything took."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from missrec.errors import MissrecError
from missrec.serve.content import Encoded
from missrec.serve.errors import RequestError
from missrec.serve.recommender import Recommender

WAIT = 30  # seconds: only reached when something deadlocks


class HeldEncoder:
    """Embeds any text as a constant vector, once ``release`` is set; ``started`` is set
    as soon as an encode begins."""

    def __init__(self, dim: int = 16):
        self.dim = dim
        self.started, self.release = threading.Event(), threading.Event()
        self.calls = 0

    def encode(self, modality: str, source: str, contents: list) -> Encoded:
        self.calls += 1
        self.started.set()
        assert self.release.wait(WAIT), "the test never released the encoder"
        return Encoded(np.full((len(contents), self.dim), 0.1 * self.calls, np.float32))

    def close(self) -> None:
        pass


def in_thread(fn, *args) -> tuple[threading.Thread, dict]:
    out: dict = {}

    def run() -> None:
        try:
            out["result"] = fn(*args)
        except BaseException as e:  # the test thread re-raises it
            out["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, out


def joined(t: threading.Thread, out: dict):
    t.join(WAIT)
    assert not t.is_alive(), "did not finish: blocked"
    if "error" in out:
        raise out["error"]
    return out.get("result")


def test_reads_go_on_during_an_encode_and_see_the_old_catalogue_then_the_new(toy_bundle):
    enc = HeldEncoder()
    rec = Recommender(toy_bundle, encoder=enc)
    before = rec.recommend([["i1", "i2"]], k=5)[0]
    writer = in_thread(rec.add_items, [{"id": "NEW-TEXT", "text": "a slow item"}])
    assert enc.started.wait(WAIT)
    # the write is in its encode now: every read answers, from the old catalogue
    reads = in_thread(lambda: (rec.recommend([["i1", "i2"]], k=5)[0], rec.embed([["i1"]])[0], rec.n_items))
    ranking, vector, size = joined(*reads)
    assert ranking.items == before.items and vector.shape == (1, 16) and size == 50
    with pytest.raises(RequestError):
        rec.get_item("NEW-TEXT")
    with pytest.raises(RequestError, match="unknown item"):
        rec.recommend([["NEW-TEXT"]], k=5)
    enc.release.set()
    assert joined(*writer) == {"added": 1, "replaced": 0, "catalogue_size": 51}
    assert rec.get_item("NEW-TEXT")["text"] == "a slow item"
    assert "NEW-TEXT" in rec.recommend([["i1", "i2"]], k=51)[0].items
    rec.close()


def test_concurrent_writers_are_both_logged_in_order_and_survive_a_restart(toy_bundle):
    enc = HeldEncoder()
    rec = Recommender(toy_bundle, encoder=enc)
    first = in_thread(rec.add_items, [{"id": "A", "text": "first"}])
    assert enc.started.wait(WAIT)
    second = in_thread(rec.add_items, [{"id": "B", "features": {"text": [0.5] * 16}}])
    remove = in_thread(rec.remove_items, ["i3"])
    enc.release.set()
    joined(*first), joined(*second), joined(*remove)
    assert rec.n_items == 51 and rec.get_item("A") and rec.get_item("B")
    ops = rec.journal.path.read_text().splitlines()
    assert len(ops) == 3 and '"id":"A"' in ops[0]  # the held writer came first, and was not lost
    rec.close()
    rec = Recommender(toy_bundle)
    assert rec.get_item("A")["text"] == "first" and rec.get_item("B")["modalities"] == ["text"]
    with pytest.raises(RequestError):
        rec.get_item("i3")
    rec.close()


def test_compaction_writes_its_files_while_readers_rank(toy_bundle, monkeypatch):
    rec = Recommender(toy_bundle, compact_every=1)
    writing, release = threading.Event(), threading.Event()
    compact = rec.journal.compact

    def held_compact(state) -> None:
        writing.set()
        assert release.wait(WAIT)
        compact(state)

    monkeypatch.setattr(rec.journal, "compact", held_compact)
    writer = in_thread(rec.add_items, [{"id": "C", "features": {"text": [0.2] * 16}}])
    assert writing.wait(WAIT)
    ranking = joined(*in_thread(rec.recommend, [["i1"]], 51))[0]
    assert "C" in ranking.items  # applied (and logged) before the compaction began
    release.set()
    joined(*writer)
    assert rec.journal.generation == 1 and rec.journal.entries == 0
    rec.close()


def test_a_change_prepared_against_an_older_catalogue_is_refused(toy_bundle):
    rec = Recommender(toy_bundle)
    cat = rec.catalogue
    stale = cat.prepare_delete(["i1"])
    cat.commit(cat.prepare_delete(["i2"]))
    with pytest.raises(MissrecError, match="older catalogue"):
        cat.commit(stale)
    assert rec.get_item("i1")  # the refused change left nothing behind
    rec.close()
