"""Approximate retrieval: FAISS candidates per modality, re-scored exactly by eq. 2."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("faiss")

from missrec.serve.ann import ApproximateOptions  # noqa: E402
from missrec.serve.bench import approximate_recall  # noqa: E402
from missrec.serve.recommender import Recommender  # noqa: E402


def test_approximate_scores_are_exact_and_follow_catalogue_changes(toy_bundle):
    rec = Recommender(toy_bundle)
    histories = [[f"i{j}", f"i{j + 1}"] for j in range(1, 40)]
    full = {tuple(h): dict(zip(r.items, r.scores)) for h, r in zip(histories, rec.recommend(histories, 50))}
    rec.enable_approximate(ApproximateOptions(n_candidates=8))
    for h, a in zip(histories, rec.recommend(histories, 10)):
        assert len(a.items) == 10
        assert a.scores == pytest.approx([full[tuple(h)][i] for i in a.items], abs=1e-5)
    recall = approximate_recall(rec, histories, 10)
    assert 0.8 <= recall <= 1.0
    twin = {m: rec.catalogue.state.raw[m][rec.catalogue.index["i3"]].tolist() for m in ("text", "image")}
    rec.add_items([{"id": "twin", "features": twin}])
    assert "twin" in rec.recommend([["i3"]], 5)[0].items
    rec.remove_items(["twin"])
    assert "twin" not in rec.recommend([["i3"]], 20)[0].items
    rec.close()


@pytest.mark.parametrize("offset", [50.0, -50.0])
def test_approximate_top_follows_the_added_items_offset(toy_bundle, offset):
    # added items with content unlike any history: an inner-product search alone does not
    # bring them among the candidates, yet a large offset puts them first (or last)
    rec = Recommender(toy_bundle)
    g = torch.Generator().manual_seed(0)
    dims = {m: rec.catalogue.state.raw[m].shape[1] for m in ("text", "image")}
    new = [f"new{j}" for j in range(3)]
    rec.add_items([{"id": i, "features": {m: torch.randn(d, generator=g).tolist() for m, d in dims.items()}}
                   for i in new])
    rec.set_added_offset(offset)
    histories = [[f"i{j}", f"i{j + 1}"] for j in range(1, 30)]
    exact = [r.items for r in rec.recommend(histories, 10)]
    rec.enable_approximate(ApproximateOptions(n_candidates=4 if offset > 0 else 12))
    approx = [r.items for r in rec.recommend(histories, 10)]
    if offset > 0:
        assert all(set(new) == set(e[:3]) for e in exact)
        assert [a[:3] for a in approx] == [e[:3] for e in exact]
    else:
        assert not any(set(new) & set(e) for e in exact)
        assert not any(set(new) & set(a) for a in approx) and all(len(a) == 10 for a in approx)
    rec.close()
