"""The CLI end to end on a small generated store: import/describe, train, evaluate, bench."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from missrec.cli import main
from missrec.data.store import write_store

from support import make_dataset, shared_dataset


@pytest.fixture(scope="module")
def toy_store(tmp_path_factory):
    return write_store(make_dataset(n_users=60, n_items=50), tmp_path_factory.mktemp("d") / "toy")


def run(*args):
    res = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    return res


def test_import_and_describe_json(tmp_path):
    src = shared_dataset("amazon-scientific-mm")
    res = run("data", "import", "--format", "unisrec", src, tmp_path / "mm")
    assert res.exit_code == 0, res.output
    res = run("data", "describe", tmp_path / "mm", "--json")
    info = json.loads(res.output)
    assert {k: info[k] for k in ("users", "items", "interactions", "avg_seq_len")} == \
        {"users": 2928, "items": 1585, "interactions": 19712, "avg_seq_len": 6.73}
    assert info["coverage"] == {"text": 1.0, "image": 1.0}


def test_bad_input_is_one_line_error(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "X.train.inter").write_text("user_id:token,item_id_list:token_seq,item_id:token\n")
    (tmp_path / "src" / "X.item2index").write_text("a\t0\n")
    (tmp_path / "src" / "X.user2index").write_text("u\t0\n")
    res = CliRunner().invoke(main, ["data", "import", "--format", "unisrec", str(tmp_path / "src"),
                                    str(tmp_path / "out")])
    assert res.exit_code == 1
    assert res.output.count("\n") == 1 and "X.train.inter:1" in res.output
    assert not (tmp_path / "out").exists()


def test_train_is_reproducible_and_evaluate_agrees(tmp_path, toy_store):
    outs = []
    for name in ("a", "b"):
        res = run("train", "--model", "sasrec", "--data", toy_store, "--out", tmp_path / name, "-q",
                  "--set", "epochs=3", "--set", "batch_size=32", "--set", "seed=7", "--set", "model.hidden=16")
        assert res.exit_code == 0, res.output
        outs.append(json.loads((tmp_path / name / "results.json").read_text()))
    a, b = outs
    assert a["test"] == b["test"] and a["valid"] == b["valid"]
    for key in ("model", "valid", "test", "best_epoch", "epochs", "train_seconds"):
        assert key in a
    assert set(a["test"]) >= {"recall@10", "ndcg@10", "recall@50", "ndcg@50"}
    assert (tmp_path / "a" / "config.yaml").exists() and (tmp_path / "a" / "model.pt").exists()
    res = run("evaluate", tmp_path / "a", "--data", toy_store, "--json")
    again = json.loads(res.output)
    for k, v in a["test"].items():
        assert again[k] == pytest.approx(v)
    # other cutoffs come from the same ranks: recall@K grows with K, and @1 is mrr@1
    res = run("evaluate", tmp_path / "a", "--data", toy_store, "--json", "--k", "11", "--k", "1")
    cut = json.loads(res.output)
    assert "recall@10" not in cut and cut["recall@1"] == cut["mrr@1"] == cut["ndcg@1"]
    assert cut["recall@1"] <= a["test"]["recall@10"] <= cut["recall@11"] <= a["test"]["recall@50"]


def test_bench_prints_json(toy_store):
    res = run("bench", "train", "--model", "sasrec", "--data", toy_store, "--epochs", "1", "--json",
              "--set", "model.hidden=16", "--set", "batch_size=64")
    info = json.loads(res.output)
    for key in ("train_sequences_per_second", "seconds_per_epoch", "eval_users_per_second", "peak_memory_mb"):
        assert info[key] > 0


def test_recommend_from_a_run(tmp_path, toy_store):
    res = run("train", "--model", "missrec", "--data", toy_store, "--out", tmp_path / "r", "-q",
              "--set", "epochs=1", "--set", "d=16", "--set", "ffn_dim=32", "--set", "batch_size=64")
    assert res.exit_code == 0, res.output
    res = run("recommend", tmp_path / "r", "--data", toy_store, "--users", "2", "--k", "4", "--json")
    out = json.loads(res.output)
    assert len(out) == 2 and all(len(u["items"]) == 4 for u in out)
    res = run("recommend", tmp_path / "r", "--history", "i1,i2,i3", "--k", "5", "--exclude-seen", "--json")
    # issue 17: with --history, --json prints the object POST /recommend answers
    items = json.loads(res.output)["items"]
    assert len(items) == 5 and not {"i1", "i2", "i3"} & set(items)
    scores = json.loads(res.output)["scores"]
    assert scores == sorted(scores, reverse=True)
    bad = CliRunner().invoke(main, ["recommend", str(tmp_path / "r"), "--history", "nope"])
    assert bad.exit_code == 1 and "unknown item id" in bad.output


def test_bench_pretrain_prints_json(toy_store):
    res = run("bench", "pretrain", "--data", toy_store, "--json", "--set", "d=16", "--set", "ffn_dim=32",
              "--set", "batch_size=64")
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["sequences_per_second"] > 0
