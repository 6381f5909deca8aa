"""Approximate retrieval: FAISS candidates per modality, re-scored exactly by eq. 2."""

from __future__ import annotations

import pytest

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
