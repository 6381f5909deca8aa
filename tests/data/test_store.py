"""The dataset store round-trips and writes atomically."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

from missrec.data import store as store_mod
from missrec.data.batching import build_examples, collate, iterate_batches
from missrec.data.store import ModalityFeatures, read_schema, read_store, write_features, write_store
from missrec.errors import MissrecError


def test_round_trip(tmp_path, toy_dataset):
    write_store(toy_dataset, tmp_path / "s")
    back = read_store(tmp_path / "s")
    assert back.items.ids == toy_dataset.items.ids and back.users.ids == toy_dataset.users.ids
    assert back.item_text == toy_dataset.item_text
    for name in ("text", "image"):
        np.testing.assert_array_equal(back.features[name].matrix, toy_dataset.features[name].matrix)
        np.testing.assert_array_equal(back.features[name].present, toy_dataset.features[name].present)
    assert [s.tolist() for s in back.sequences()] == [s.tolist() for s in toy_dataset.sequences()]
    assert read_schema(tmp_path / "s")["fingerprint"] == toy_dataset.fingerprint()


def test_crash_while_writing_keeps_the_old_store(tmp_path, toy_dataset, monkeypatch):
    dest = write_store(toy_dataset, tmp_path / "s")
    before = sorted(p.name for p in dest.rglob("*"))

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(store_mod, "_schema", boom)
    with pytest.raises(RuntimeError):
        write_store(toy_dataset, dest)
    assert sorted(p.name for p in dest.rglob("*")) == before
    assert [p.name for p in tmp_path.iterdir()] == ["s"]  # no temporary left behind


def test_crash_on_first_write_leaves_nothing(tmp_path, toy_dataset, monkeypatch):
    monkeypatch.setattr(store_mod, "_schema", lambda ds: (_ for _ in ()).throw(RuntimeError("x")))
    with pytest.raises(RuntimeError):
        write_store(toy_dataset, tmp_path / "new")
    assert list(tmp_path.iterdir()) == []


def test_refuses_to_replace_a_foreign_directory(tmp_path, toy_dataset):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "precious.txt").write_text("keep me")
    with pytest.raises(MissrecError, match="not a missrec store"):
        write_store(toy_dataset, tmp_path / "d")


def test_write_features_updates_schema(tmp_path, toy_dataset):
    dest = write_store(toy_dataset, tmp_path / "s")
    n = toy_dataset.n_items + 1
    present = np.zeros(n, bool)
    present[1:4] = True
    write_features(dest, "audio", ModalityFeatures(np.ones((n, 3)), present, "test"))
    schema = read_schema(dest)
    assert schema["modalities"]["audio"]["dim"] == 3
    assert schema["modalities"]["audio"]["coverage"] == pytest.approx(3 / toy_dataset.n_items)
    with pytest.raises(MissrecError, match="rows"):
        write_features(dest, "bad", ModalityFeatures(np.ones((n - 1, 3)), np.ones(n - 1, bool)))


def test_missing_store_message(tmp_path):
    with pytest.raises(MissrecError, match="not a missrec dataset store"):
        read_store(tmp_path)


def test_batches_pad_to_longest_in_batch(toy_dataset):
    ex = build_examples(toy_dataset, "train", max_len=5)
    assert ex.lengths.max() <= 5
    idx = np.argsort(ex.lengths)[:4]
    b = collate(ex, idx)
    assert b.items.shape[1] == ex.lengths[idx].max()
    for row, i in enumerate(idx):
        n = ex.lengths[i]
        assert b.items[row, :n].tolist() == ex.history(i).tolist()
        assert (b.items[row, n:] == 0).all()
    seen = np.concatenate([b.targets.numpy() for b in iterate_batches(ex, 8, True, np.random.default_rng(0), True)])
    assert sorted(seen.tolist()) == sorted(ex.targets.tolist())  # bucketing drops nothing


def test_examples_follow_leave_one_out(toy_dataset):
    seqs = toy_dataset.sequences()
    test = build_examples(toy_dataset, "test")
    valid = build_examples(toy_dataset, "valid")
    train = build_examples(toy_dataset, "train")
    assert len(test) == len(valid) == toy_dataset.n_users
    assert len(train) == sum(len(s) - 3 for s in seqs[1:])
    for i in range(len(test)):
        s = seqs[test.users[i]]
        assert test.targets[i] == s[-1] and test.history(i).tolist() == s[:-1].tolist()
        assert valid.targets[i] == s[-2] and valid.history(i).tolist() == s[:-2].tolist()


def test_tampered_store_is_refused_naming_the_file(tmp_path, toy_dataset):
    dest = write_store(toy_dataset, tmp_path / "s")
    table = pq.read_table(dest / "interactions.parquet")
    items = table.column("item").to_numpy().copy()
    items[0] = toy_dataset.n_items + 5  # an item index the store does not have
    pq.write_table(table.set_column(table.column_names.index("item"), "item", [items]), dest / "interactions.parquet")
    with pytest.raises(MissrecError, match=r"interactions\.parquet: column 'item' holds values outside 1\.\."):
        read_store(dest)


def test_presence_mask_of_the_wrong_length_is_refused(tmp_path, toy_dataset):
    dest = write_store(toy_dataset, tmp_path / "s")
    np.save(dest / "features" / "image.present.npy", np.ones(3, dtype=bool))
    with pytest.raises(MissrecError, match=r"image\.present\.npy: presence mask has shape \(3,\), expected"):
        read_store(dest)
    read_store(dest, modalities=["text"])  # the other modality still loads
