"""Model selection by a ``valid_metric`` whose K is not among the reported cut-offs ``ks``."""

from __future__ import annotations

import json

from click.testing import CliRunner
from support import make_dataset

from missrec.cli import main
from missrec.config import TrainConfig
from missrec.data.store import write_store
from missrec.train.meta import protocol_of, validation_protocol_of


def test_the_validation_protocol_adds_the_valid_metrics_k_only():
    cfg = TrainConfig(ks=[10], valid_metric="ndcg@5")
    assert validation_protocol_of(cfg).ks == [10, 5]
    assert protocol_of(cfg).ks == [10]  # tests and `missrec evaluate` report what was asked
    assert validation_protocol_of(TrainConfig()).ks == TrainConfig().ks


def test_training_selects_by_a_k_outside_ks(tmp_path):
    store = write_store(make_dataset(n_users=30, n_items=25), tmp_path / "store")
    run = tmp_path / "run"
    res = CliRunner().invoke(main, ["train", "--model", "sasrec", "--data", str(store), "--out", str(run), "-q",
                                    "--set", "epochs=3", "--set", "batch_size=16", "--set", "model.hidden=16",
                                    "--set", "ks=[10]", "--set", "valid_metric=ndcg@5"])
    assert res.exit_code == 0, res.output
    results = json.loads((run / "results.json").read_text())
    assert set(results["test"]) == {"recall@10", "ndcg@10", "mrr@10"}
    history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    scores = [h["valid_ndcg@5"] for h in history]
    assert results["best_epoch"] == 1 + scores.index(max(scores))
