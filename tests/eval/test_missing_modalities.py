"""Missing modalities at test time: which items lose a modality, that the re-encoded cache is
what the model gives a catalogue without it, and twin ranks against a brute-force count."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from missrec.cli import main
from missrec.data.batching import build_examples, iterate_batches
from missrec.errors import MissrecError
from missrec.eval.modalities import Drop, drop_modalities, drop_rows, twin_ranks
from missrec.model.registry import ItemFeatures, get_model_spec
from missrec.seed import seed_everything
from missrec.train.resolve import resolve_configs

from support import make_dataset

MODELS = {
    "missrec": ("missrec", ("model.d=16", "model.ffn_dim=32", "model.max_len=12", "model.knn_k=3")),
    "missrec-transductive": ("missrec", ("model.d=16", "model.ffn_dim=32", "model.max_len=12",
                                         "model.mode=transductive")),
    "unisrec": ("unisrec", ("model.hidden=16", "model.n_layers=1", "model.modalities=[text, image]")),
}


@pytest.fixture(scope="module")
def toy():
    return make_dataset(n_users=40, n_items=30, seed=3, image_coverage=0.7)


def _model(name: str, ds):
    model_name, sets = MODELS[name]
    seed_everything(0)
    _, cfg = resolve_configs(model_name, None, sets)
    return get_model_spec(model_name).build(cfg, ItemFeatures(ds.n_items, ds.features)).eval()


def test_drop_parses_and_refuses_in_one_line():
    assert Drop.parse("image:targets") == Drop("image", "targets")
    assert Drop.parse("text:0.25") == Drop("text", 0.25)
    for bad in ("image", ":all", "image:some", "image:0", "image:1.5"):
        with pytest.raises(MissrecError, match=r"^--drop "):
            Drop.parse(bad)


def test_only_items_with_another_modality_lose_one(toy):
    present = {m: f.present for m, f in toy.features.items()}
    targets = np.arange(1, toy.n_items + 1)
    rows = drop_rows(Drop("image", "targets"), present, targets, 0)
    assert set(rows) == {i for i in range(1, toy.n_items + 1) if present["image"][i] and present["text"][i]}
    half = drop_rows(Drop("image", 0.5), present, targets, 7)
    assert len(half) == round(0.5 * len(rows)) and set(half) <= set(rows)
    assert np.array_equal(half, drop_rows(Drop("image", 0.5), present, targets, 7))
    with pytest.raises(MissrecError, match="reads no 'audio'"):
        drop_rows(Drop("audio", "all"), present, targets, 0)


@pytest.mark.parametrize("name", MODELS)
def test_dropped_items_score_as_in_a_catalogue_without_the_modality(toy, name):
    model = _model(name, toy)
    cache, counts = drop_modalities(model, model.item_cache(), toy.features, [Drop("image", "all")],
                                    np.zeros(0, dtype=np.int64))
    assert counts == {"image:all": int((toy.features["image"].present & toy.features["text"].present)[1:].sum())}
    # the oracle: the same model attached to a catalogue where no item has an image
    other = _model(name, toy)
    other.load_state_dict(model.state_dict())
    feats = {m: torch.from_numpy(f.matrix) for m, f in toy.features.items()}
    present = {m: torch.from_numpy(f.present) for m, f in toy.features.items()}
    present["image"] = torch.zeros_like(present["image"])
    other.attach_catalogue(feats, present)
    expected = other.item_cache()
    batch = next(iter(iterate_batches(build_examples(toy, "test"), 64)))
    users = model.user_vectors(batch, model.item_cache())  # the histories as trained
    got = model.score_block(users, cache, slice(1, None))
    want = other.score_block(users, expected, slice(1, None))
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_twin_ranks_match_a_brute_force_count(toy):
    model = _model("missrec", toy)
    examples = build_examples(toy, "test")
    cache = model.item_cache()
    result = twin_ranks(model, cache, examples, toy.features, "image", batch_size=7)
    both = toy.features["image"].present & toy.features["text"].present
    kept = examples.subset(np.nonzero(both[examples.targets])[0])
    assert len(result.original) == len(kept) > 0
    n = cache.n_rows
    for i in range(len(kept)):
        batch = next(iter(iterate_batches(kept.subset(np.array([i])), 1)))
        t = int(batch.targets[0])
        twin = model.encode_items({m: torch.from_numpy(f.matrix[[t]]) for m, f in toy.features.items()},
                                  {"text": torch.tensor([True]), "image": torch.tensor([False])},
                                  torch.zeros(1, dtype=torch.long))
        extended = cache.put(torch.tensor([n]), twin)
        scores = model.score_all(batch, extended)[0, :]
        scores[0] = -torch.inf
        others = torch.cat([scores[1:t], scores[t + 1:n]])
        assert result.original[i] == int((others > scores[t]).sum())
        assert result.twin[i] == int((others > scores[n]).sum())
    summary = result.summary()
    assert summary["users"] == len(kept) and summary["median_ratio"] > 0


def test_evaluate_cli_reports_drops_and_twins(toy_store, tmp_path):
    run = tmp_path / "run"
    res = CliRunner().invoke(main, ["train", "--model", "missrec", "--data", str(toy_store), "--out", str(run), "-q",
                                    "--set", "epochs=1", "--set", "d=16", "--set", "ffn_dim=32"])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(main, ["evaluate", str(run), "--data", str(toy_store), "--drop", "image:targets",
                                    "--twins", "text", "--json", "-q"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["dropped"]["image:targets"] > 0 and out["twins"]["text"]["users"] > 0
    plain = json.loads(CliRunner().invoke(main, ["evaluate", str(run), "--data", str(toy_store), "--json",
                                                 "-q"]).output)
    assert "dropped" not in plain and out["ndcg@10"] != plain["ndcg@10"]
    res = CliRunner().invoke(main, ["evaluate", str(run), "--data", str(toy_store), "--drop", "image:most"])
    assert res.exit_code != 0 and "--drop 'image:most'" in res.output and "Traceback" not in res.output
