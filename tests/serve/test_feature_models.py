"""Adding items to UniSRec and SASRec-over-text bundles: a new item is embedded from its
features by the trained adapters / projection, exactly as the model embeds its catalogue."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from missrec.serve.bundle import export_bundle
from missrec.serve.recommender import Recommender

from conftest import train_run

HISTORY = ["i1", "i2", "i3", "i9"]


def _original(rec: Recommender, item_id: str) -> dict:
    st = rec.catalogue.state
    r = rec.catalogue.index[item_id]
    return {"id": item_id, "text": st.text[r],
            "features": {m: st.raw[m][r].tolist() for m in st.raw if st.present[m][r]}}


@pytest.mark.parametrize("model,sets", [("unisrec", ()), ("unisrec", ("model.mode=transductive",)),
                                        ("sasrec-text", ())])
def test_readded_item_scores_as_trained(toy_store, tmp_path, model, sets):
    run = train_run(toy_store, tmp_path / "run", model, *sets)
    export_bundle(run, tmp_path / "b")
    rec = Recommender(tmp_path / "b")
    before = rec.recommend([HISTORY], 20)[0]
    target = next(i for i in before.items if i not in HISTORY)
    item = _original(rec, target)
    rec.remove_items([target])
    assert target not in rec.recommend([HISTORY], 20)[0].items
    report = rec.add_items([item])
    assert report["added"] == 1 and report["catalogue_size"] == 50
    after = rec.recommend([HISTORY], 20)[0]
    assert after.items == before.items
    np.testing.assert_allclose(after.scores, before.scores, atol=1e-6)
    vectors, _ = rec.embed([HISTORY, HISTORY[:2]])  # every model gives sequence vectors
    assert vectors.shape[0] == 2 and vectors.shape[1] > 1 and np.isfinite(vectors).all()
    assert not np.allclose(vectors[0], vectors[1])


@pytest.mark.parametrize("model,sets", [("unisrec", ("model.mode=transductive",)), ("sasrec-text", ())])
def test_new_items_are_ranked_by_features_and_compacted_away(toy_store, tmp_path, model, sets):
    run = train_run(toy_store, tmp_path / "run", model, *sets)
    export_bundle(run, tmp_path / "b")
    rec = Recommender(tmp_path / "b")
    twin = _original(rec, "i5")
    rec.add_items([{**twin, "id": "twin"}])
    scores = dict(zip(*(lambda r: (r.items, r.scores))(rec.recommend([HISTORY], 51)[0])))
    if model == "unisrec":  # transductive: the twin has the features of i5 but no id embedding
        table = rec.catalogue.state.cache.vectors
        assert torch.count_nonzero(table[-1] - table[rec.catalogue.index["i5"]]) > 0
        rows = rec.catalogue.model.feature_vectors(
            {m: torch.tensor([twin["features"][m]]) for m in twin["features"]},
            {m: torch.tensor([True]) for m in twin["features"]})
        torch.testing.assert_close(table[-1], rows[0], atol=1e-6, rtol=0)
    else:  # features only: the twin scores exactly as i5
        assert scores["twin"] == pytest.approx(scores["i5"], abs=1e-6)
    rec.remove_items(["twin"])
    rec.catalogue.drop_removed()
    assert rec.n_items == 50 and "twin" not in rec.recommend([HISTORY], 50)[0].items
