"""The cold-start experiment on a small generated store: held-out items leave training,
come back through add_items, and their targets are ranked (MISSRec, UniSRec, SASRec over
text features) or missed (SASRec-ID)."""

from __future__ import annotations

import json

import numpy as np

from missrec.data.store import read_store
from missrec.experiments.coldstart import ColdStartOptions, hold_out, popularity_ranks, run_coldstart


def test_hold_out_removes_items_everywhere(toy_store):
    ds = read_store(toy_store)
    reduced, held = hold_out(ds, 0.2, 0)
    assert len(held) == 10 and reduced.n_items == 40
    assert not held & set(reduced.items.ids)
    kept = [e for e in ds.items.ids[1:] if e not in held]
    i, j = ds.items.index(kept[3]), reduced.items.index(kept[3])
    assert np.array_equal(ds.features["text"].matrix[i], reduced.features["text"].matrix[j])
    ranks = popularity_ranks(reduced, sorted(held), ds.n_items)
    assert (ranks == ds.n_items - 1).all()  # never seen: last, after every tie


def test_coldstart_ranks_held_out_targets_only_with_added_items(toy_store, tmp_path):
    opts = ColdStartOptions(fraction=0.2, models=["missrec", "unisrec", "sasrec-text", "sasrec", "popularity"],
                            sets=["epochs=1", "batch_size=64"])
    res = run_coldstart(toy_store, tmp_path, opts, log=lambda s: None)
    table = res["results"]
    assert table["missrec"]["held-out targets"]["users"] > 0
    assert table["sasrec"]["held-out targets"]["recall@50"] == 0.0  # it cannot rank them
    assert table["missrec"]["held-out targets"]["recall@50"] > 0.0
    for model in ("unisrec", "sasrec-text"):  # inductive: they rank the added items too
        assert table[model]["held-out targets"]["recall@50"] > 0.0
        assert table[model]["other targets"]["users"] == table["missrec"]["other targets"]["users"]
    assert json.loads((tmp_path / "coldstart.json").read_text())["held_out_items"] == 10
