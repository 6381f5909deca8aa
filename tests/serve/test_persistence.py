"""Item changes persist through a log that survives torn writes and is compacted on load."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

from missrec.errors import MissrecError
from missrec.serve.recommender import Recommender


def item(item_id: str, value: float) -> dict:
    return {"id": item_id, "text": item_id, "features": {"text": [value] * 16}}


def test_torn_last_line_is_dropped_and_the_log_compacted(toy_bundle):
    rec = Recommender(toy_bundle, compact_every=100)
    rec.add_items([item("a", 0.1)])
    rec.add_items([item("b", 0.2)])
    log = rec.journal.path
    rec.close()
    text = log.read_text()
    assert text.count("\n") == 2
    log.write_text(text + text.splitlines()[0][:40])  # a crash in the middle of a third write
    rec = Recommender(toy_bundle)
    assert rec.get_item("a")["text"] == "a" and rec.get_item("b")["text"] == "b"
    assert rec.n_items == 52 and rec.journal.generation == 1 and not rec.journal.path.exists()
    names = sorted(p.name for p in toy_bundle.iterdir() if p.name.startswith("items-"))
    assert names == ["items-1.json", "items-1.safetensors"]
    rec.close()


def test_compaction_threshold_and_replace(toy_bundle):
    rec = Recommender(toy_bundle, compact_every=2)
    rec.add_items([item("a", 0.1)])
    assert rec.journal.entries == 1
    assert rec.add_items([item("a", 0.3)]) == {"added": 0, "replaced": 1, "catalogue_size": 51}
    assert rec.journal.generation == 1 and rec.journal.entries == 0
    rec.close()
    rec = Recommender(toy_bundle)
    assert rec.catalogue.state.raw["text"][rec.catalogue.index["a"]][0] == pytest.approx(0.3)
    rec.close()


def test_logged_vectors_replay_bit_for_bit_and_earlier_logs_still_replay(toy_bundle):
    rng = np.random.default_rng(0)
    exact = rng.standard_normal(16).astype(np.float32)  # decimals of these would round
    rec = Recommender(toy_bundle, compact_every=100)
    rec.add_items([{"id": "a", "text": "a", "features": {"text": exact.tolist()}}])
    rec.close()
    line = json.loads(rec.journal.path.read_text())
    assert isinstance(line["items"][0]["features"]["text"], str)  # packed, not 16 decimals
    # the form earlier versions logged: a list of numbers per vector
    listed = {"op": "put", "items": [{"id": "b", "text": "b", "features": {"text": [0.25] * 16}}]}
    with open(rec.journal.path, "a") as f:
        f.write(json.dumps(listed) + "\n")
    reader = Recommender(toy_bundle, writable=False)
    raw, index = reader.catalogue.state.raw["text"], reader.catalogue.index
    assert raw[index["a"]].tobytes() == exact.tobytes()
    assert (raw[index["b"]] == np.float32(0.25)).all()
    writer = Recommender(toy_bundle)  # replays, then compacts both into a generation
    assert writer.catalogue.state.raw["text"][writer.catalogue.index["a"]].tobytes() == exact.tobytes()
    writer.close()


def test_a_logged_vector_of_the_wrong_width_is_named(toy_bundle):
    rec = Recommender(toy_bundle)
    rec.close()
    bad = {"op": "put", "items": [{"id": "c", "text": "c", "features": {"text": [0.5] * 3}}]}
    rec.journal.path.write_text(json.dumps(bad) + "\n")
    with pytest.raises(MissrecError, match="3 numbers where 16 were expected"):
        Recommender(toy_bundle, writable=False)


def test_one_writer_per_bundle(toy_bundle):
    rec = Recommender(toy_bundle)
    with pytest.raises(MissrecError, match="another process"):
        Recommender(toy_bundle)
    rec.add_items([item("logged", 0.5)])
    reader = Recommender(toy_bundle, writable=False)  # sees the writer's logged changes
    assert reader.recommend([["i1"]], 3)[0].items == rec.recommend([["i1"]], 3)[0].items
    assert reader.get_item("logged")["text"] == "logged"
    assert rec.journal.path.read_text().count("\n") == 1  # the reader compacted nothing
    rec.close()


HAVE_FAISS = importlib.util.find_spec("faiss") is not None


@pytest.mark.parametrize("approximate", [
    False, pytest.param(True, marks=pytest.mark.skipif(not HAVE_FAISS, reason="needs the faiss extra"))])
def test_compaction_forgets_removed_added_items(toy_bundle, approximate):
    rec = Recommender(toy_bundle, compact_every=4)
    if approximate:  # the indexes follow the compaction's renumbered rows
        rec.enable_approximate()
    for name in ("a", "b"):
        rec.add_items([item(name, 0.1)])
        rec.remove_items([name])
    assert rec.journal.generation == 1 and len(rec.item_ids) == 51  # 50 trained + padding
    rec.add_items([item("c", 0.2)])
    assert rec.get_item("c")["text"] == "c" and "c" in rec.recommend([["c"]], 50)[0].items
    rec.remove_items(["i5"])  # a trained item keeps its row, removed
    rec.close()
    rec = Recommender(toy_bundle)
    assert len(rec.item_ids) == 52 and rec.n_items == 50
    rec.close()


def test_reads_and_writes_from_many_threads(toy_bundle):
    """Writers add, replace and remove (with compactions renumbering rows) while readers
    rank, embed and look up: every answer is either a result or a RequestError."""
    from concurrent.futures import ThreadPoolExecutor

    from missrec.serve.errors import RequestError

    rec = Recommender(toy_bundle, compact_every=5)

    def write(j: int) -> None:
        rec.add_items([item(f"w{j}", 0.01 * j)])
        rec.remove_items([f"w{j}"])

    def read(j: int) -> None:
        try:
            rec.recommend([[f"i{1 + j % 40}", f"w{j - 1}"]], 5, unknown="skip" if j % 2 else "error")
            rec.embed([[f"i{1 + j % 40}"]])
            rec.get_item(f"w{j - 1}")
        except RequestError:
            pass

    with ThreadPoolExecutor(8) as pool:
        for f in [pool.submit(write if j % 3 == 0 else read, j) for j in range(90)]:
            f.result()
    assert rec.n_items == 50
    rec.close()
