"""Export: safe formats, atomic, loadable without the run or the store; the Python API."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from missrec.cli import main
from missrec.errors import MissrecError
from missrec.serve.bundle import export_bundle
from missrec.serve.errors import RequestError
from missrec.serve.recommender import Recommender
from missrec.train.checkpoint import load_model, read_checkpoint

from conftest import train_run


def test_bundle_holds_only_safe_formats_and_loads_alone(toy_run, toy_bundle, tmp_path):
    names = sorted(p.name for p in toy_bundle.iterdir())
    assert all(n.endswith((".json", ".safetensors")) for n in names), names
    manifest = json.loads((toy_bundle / "manifest.json").read_text())
    assert manifest["model"] == "missrec" and manifest["modalities"]["text"]["source"] == "synthetic"
    history = ["i1", "i2", "i3"]
    from_run = Recommender(toy_run).recommend([history], 10)[0]
    # no run directory, no store: the bundle alone
    moved = shutil.move(str(toy_bundle), tmp_path / "elsewhere")
    rec = Recommender(moved)
    again = rec.recommend([history], 10)[0]
    assert again.items == from_run.items
    assert again.scores == pytest.approx(from_run.scores, abs=1e-5)


def test_export_is_atomic_and_refuses_foreign_directories(toy_run, tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    with pytest.raises(MissrecError, match="not a missrec bundle"):
        export_bundle(toy_run, tmp_path / "taken")
    assert (tmp_path / "taken" / "notes.txt").read_text() == "mine"
    export_bundle(toy_run, tmp_path / "b")
    export_bundle(toy_run, tmp_path / "b")  # replaces a bundle
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b", "taken"]  # no temporary left


def test_added_items_match_the_cache_of_a_larger_catalogue(toy_run, toy_bundle):
    """An added item's candidates are what item_cache() gives when the catalogue holds it."""
    rec = Recommender(toy_bundle)
    raw = rec.catalogue.state.raw
    rng = np.random.default_rng(0)
    new = {m: rng.normal(size=raw[m].shape[1]).astype(np.float32) for m in raw}
    rec.add_items([{"id": "fresh", "features": {m: v.tolist() for m, v in new.items()}}])
    payload = read_checkpoint(toy_run)
    model, _ = load_model(payload)
    n = model.n_items
    model.reset_items(n + 1)
    feats = {m: torch.from_numpy(np.vstack([raw[m], new[m][None]])) for m in raw}
    present = {m: torch.from_numpy(rec.catalogue.state.present[m]) for m in raw}
    model.attach_catalogue(feats, present)
    expected = model.item_cache()
    got = rec.catalogue.state.cache
    assert torch.allclose(got.candidates, expected.candidates, atol=1e-6)
    assert torch.equal(got.present, expected.present)
    assert int(rec.catalogue.state.cache.interests[-1].min()) >= 0  # joined a trained interest


def test_recommend_validates_k_unknown_ids_and_truncates(toy_bundle):
    rec = Recommender(toy_bundle)
    for k in (0, -3, 10**9, True, 2.5):
        with pytest.raises(RequestError, match="^k: "):
            rec.recommend([["i1"]], k)
    with pytest.raises(RequestError, match="unknown item id"):
        rec.recommend([["i1", "ghost"]], 5)
    r = rec.recommend([["i1", "ghost"]], 5, unknown="skip")[0]
    assert r.skipped == ["ghost"] and len(r.items) == 5
    with pytest.raises(RequestError, match="empty history"):
        rec.recommend([[]], 5)
    long = ["i1", "i2"] * 40
    r = rec.recommend([long], 5)[0]
    assert r.truncated == 80 - rec.max_len
    assert r.items == rec.recommend([long[-rec.max_len:]], 5)[0].items
    seen = rec.recommend([["i1", "i2"]], 48, exclude_seen=True)[0]
    assert not {"i1", "i2"} & set(seen.items) and len(seen.items) == 48
    vectors, _ = rec.embed([["i1"], ["i2", "i3"]])
    assert vectors.shape == (2, 16) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)


def test_removed_items_are_never_ranked(toy_bundle):
    rec = Recommender(toy_bundle)
    top = rec.recommend([["i1"]], 3, exclude_seen=True)[0].items
    rec.remove_items([top[0]])
    assert top[0] not in rec.recommend([["i1"]], 49)[0].items
    assert rec.n_items == 49
    with pytest.raises(RequestError, match="k: "):
        rec.recommend([["i1"]], 50)


def test_id_only_model_cannot_add_items(toy_store, tmp_path):
    run = train_run(toy_store, tmp_path / "sas", "sasrec")
    export_bundle(run, tmp_path / "b")
    rec = Recommender(tmp_path / "b")
    assert len(rec.recommend([["i1", "i2"]], 5)[0].items) == 5
    with pytest.raises(RequestError, match="cannot rank unseen items"):
        rec.add_items([{"id": "x", "text": "anything"}])


def test_transductive_new_items_are_scored_by_features(toy_store, tmp_path):
    run = train_run(toy_store, tmp_path / "tr", "missrec", "mode=transductive")
    export_bundle(run, tmp_path / "b")
    rec = Recommender(tmp_path / "b")
    feats = {m: rec.catalogue.state.raw[m][5].tolist() for m in ("text", "image")}
    rec.add_items([{"id": "twin", "features": feats}])
    state = rec.catalogue.state
    assert torch.count_nonzero(state.cache.ids[-1]) == 0  # no id embedding
    assert "twin" in rec.recommend([["i5"]], 50)[0].items


def test_cli_recommend_prints_the_service_object(toy_bundle):
    res = CliRunner().invoke(main, ["recommend", str(toy_bundle), "--history", "i1,i2", "--k", "4", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert set(out) == {"items", "scores"} and len(out["items"]) == 4
    for k in ("-3", "0", "999999"):
        bad = CliRunner().invoke(main, ["recommend", str(toy_bundle), "--history", "i1", "--k", k])
        assert bad.exit_code == 1 and bad.output.count("\n") == 1 and "k:" in bad.output


def test_concurrent_calls_are_batched_and_answer_as_alone(toy_bundle):
    from concurrent.futures import ThreadPoolExecutor

    rec = Recommender(toy_bundle)
    calls = [([[f"i{j}", f"i{j + 3}"]], 1 + j % 7, j % 2 == 0) for j in range(1, 40)]
    alone = [rec.recommend(h, k, seen)[0] for h, k, seen in calls]
    with ThreadPoolExecutor(16) as pool:
        together = list(pool.map(lambda c: rec.recommend(*c)[0], calls))
    for a, t in zip(alone, together):
        assert t.items == a.items and t.scores == pytest.approx(a.scores, abs=1e-5)
    with pytest.raises(RequestError):
        rec.recommend([["ghost"]], 3)  # one bad call does not poison the queue
    assert rec.recommend([["i1"]], 3)[0].items == rec.recommend([["i1"]], 3)[0].items


def test_text_is_embedded_only_by_the_bundles_own_encoder(toy_bundle):
    rec = Recommender(toy_bundle)  # its text features come from 'synthetic': no encoder
    with pytest.raises(RequestError, match="has no modality"):
        rec.add_items([{"id": "t", "text": "a microscope"}])
    image = rec.catalogue.state.raw["image"][2].tolist()
    report = rec.add_items([{"id": "t", "text": "a microscope", "features": {"image": image}}])
    assert report["added"] == 1 and "text not embedded" in report["warnings"][0]
    assert rec.get_item("t")["modalities"] == ["image"]
    rec.close()
