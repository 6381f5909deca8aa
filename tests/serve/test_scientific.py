"""Done-when test of issue 17: on amazon-scientific-mm, the service's top-10 for every test
user is the offline evaluator's ranking from the same model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from missrec.data.batching import build_examples, iterate_batches
from missrec.data.store import read_store
from missrec.eval.evaluator import EvalProtocol, evaluate
from missrec.serve.recommender import Recommender
from missrec.train.checkpoint import load_model, read_checkpoint

from conftest import cli, train_run
from support import shared_dataset

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from missrec.serve.http import create_app  # noqa: E402


def offline_top(run, store, k: int = 10):
    """Top-k and scores of every test user, scored as the evaluator scores them."""
    model, config = load_model(read_checkpoint(run))
    ds = read_store(store, modalities=list(config.modalities))
    examples = build_examples(ds, "test", config.max_len)
    cache = model.item_cache()
    tops, scores = [], []
    with torch.no_grad():
        for batch in iterate_batches(examples, 512):
            s = model.score_all(batch, cache).float()
            s[:, 0] = -torch.inf
            top = s.topk(k + 5, dim=1)  # a margin to look past ties at the cut
            tops.append(top.indices)
            scores.append(top.values)
    ranks = evaluate(model, examples, EvalProtocol(ks=[10])).ranks
    return ds, examples, torch.cat(tops).numpy(), torch.cat(scores).numpy(), ranks


def test_service_top10_equals_offline_ranking_for_every_test_user(tmp_path):
    src = shared_dataset("amazon-scientific-mm")
    store = tmp_path / "scimm"
    cli("data", "import", "--format", "unisrec", src, store)
    run = train_run(store, tmp_path / "run", "missrec", "d=16", "ffn_dim=32", "batch_size=1024")
    cli("export", run, tmp_path / "bundle")
    ds, ex, tops, scores, ranks = offline_top(run, store)
    rec = Recommender(tmp_path / "bundle", writable=False)
    client = TestClient(create_app(rec))
    histories = [[ds.items.external(i) for i in ex.flat[ex.offsets[u]:ex.offsets[u + 1]]]
                 for u in range(len(ex))]
    served = []
    for start in range(0, len(histories), 256):
        r = client.post("/recommend", json={"histories": histories[start:start + 256], "k": 10})
        assert r.status_code == 200, r.text
        served += r.json()["results"]
    assert len(served) == len(ex) == 2928
    for u, res in enumerate(served):
        expected = [ds.items.external(i) for i in tops[u, :10]]
        np.testing.assert_allclose(res["scores"], scores[u, :10], atol=1e-5)
        if res["items"] != expected:  # only a near-tie may swap places
            ties = np.abs(scores[u, :, None] - np.asarray(res["scores"])[None]).min(0) < 1e-5
            assert ties.all() and set(res["items"]) <= {ds.items.external(i) for i in tops[u]}
        target = ds.items.external(int(ex.targets[u]))
        if ranks[u] < 10:
            # the evaluator's 0-based rank of the target is its served place, up to near-ties
            place = res["items"].index(target)
            assert abs(res["scores"][place] - res["scores"][ranks[u]]) < 1e-5
