"""``missrec evaluate RUN_OR_BUNDLE --data STORE`` on a store the model never saw (zero-shot):
the model is rebuilt on that store's catalogue; models that need item ids are refused."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from missrec.cli import main
from missrec.data.batching import build_examples
from missrec.data.store import read_store, write_store

from support import make_dataset

SMALL = ["--set", "d=16", "--set", "n_heads=2", "--set", "ffn_dim=32", "--set", "n_clusters=0.3"]
FAST = ["--set", "epochs=1", "--set", "batch_size=32", "--set", "threads=1", "-q"]


def run(*args) -> tuple[int, str]:
    res = CliRunner().invoke(main, [str(a) for a in args])
    return res.exit_code, res.output


def ok(*args) -> str:
    code, out = run(*args)
    assert code == 0, out
    return out


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("zeroshot")
    own = write_store(make_dataset(n_users=40, n_items=30, seed=1), root / "own")
    other = write_store(make_dataset(n_users=35, n_items=45, seed=2), root / "other")
    narrow = write_store(make_dataset(n_users=20, n_items=20, seed=3, dim=8), root / "narrow")
    ok("train", "--model", "missrec", "--data", own, "--out", root / "mr", "--preset", "inductive", *SMALL, *FAST)
    ok("export", root / "mr", root / "bundle")
    return root, own, other, narrow


def evaluate(source, store, *extra) -> dict:
    res = json.loads(ok("evaluate", source, "--data", store, "--json", *extra))
    res.pop("users_per_second")  # a timing
    return res


def test_a_model_ranks_a_store_it_never_saw(setup):
    root, own, other, _ = setup
    res = evaluate(root / "mr", other)
    assert res["users"] == len(build_examples(read_store(other, modalities=[]), "test"))
    assert res["zero_shot"]["items"] == 45 and res["zero_shot"]["modalities"] == ["text", "image"]
    assert 0 <= res["ndcg@10"] <= 1 and "recall@50" in res
    assert evaluate(root / "bundle", other) == evaluate(root / "mr" / "model.pt", other)  # run, file, bundle alike
    valid = evaluate(root / "mr", other, "--split", "valid")
    assert valid["split"] == "valid" and valid["users"] == res["users"]


def test_zero_shot_evaluation_drops_modalities_as_evaluation_on_the_own_store_does(setup):
    root, _, other, _ = setup
    res = evaluate(root / "mr", other, "--drop", "image:targets", "--twins", "image")
    assert res["zero_shot"]["items"] == 45 and res["dropped"]["image:targets"] > 0
    assert "image" in res["twins"] and res["ndcg@10"] != evaluate(root / "mr", other)["ndcg@10"]


def test_the_store_it_was_trained_on_scores_as_trained(setup):
    root, own, _, _ = setup
    trained = json.loads((root / "mr" / "results.json").read_text())["test"]
    same = evaluate(root / "mr", own)
    assert "zero_shot" not in same and {k: same[k] for k in trained} == trained
    # a bundle is rebuilt on the store's catalogue: the same catalogue keeps its clustering, so the same scores
    rebuilt = evaluate(root / "bundle", own)
    assert rebuilt["zero_shot"]["items"] == 30
    assert {k: rebuilt[k] for k in trained} == pytest.approx(trained, abs=1e-6)


@pytest.mark.parametrize("model, sets", [("sasrec", ["--set", "hidden=16"]),
                                         ("missrec", SMALL + ["--set", "mode=transductive"])])
def test_a_model_that_needs_item_ids_is_refused_in_one_line(setup, model, sets):
    root, own, other, _ = setup
    out_dir = root / f"ids-{model}"
    if not (out_dir / "results.json").exists():
        ok("train", "--model", model, "--data", own, "--out", out_dir, *sets, *FAST)
    code, out = run("evaluate", out_dir, "--data", other)
    assert code == 1 and len(out.strip().splitlines()) == 1
    assert "needs an inductive model" in out and model in out


def test_features_of_another_width_are_refused_in_one_line(setup):
    root, _, _, narrow = setup
    code, out = run("evaluate", root / "mr", "--data", narrow)
    assert code == 1 and len(out.strip().splitlines()) == 1 and "do not fit" in out
