"""Non-finite numbers never become results: a NaN training loss stops the run naming the
epoch and step (the last complete epoch's state kept), and NaN or +inf scores stop an
evaluation naming the run."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from support import RowScorer, make_dataset

from missrec.cli import main
from missrec.config import TrainConfig
from missrec.data.batching import build_examples
from missrec.data.store import write_store
from missrec.errors import MissrecError
from missrec.eval.evaluator import EvalProtocol, evaluate
from missrec.model.sasrec import SASRec, SASRecConfig
from missrec.train.checkpoint import read_checkpoint, write_payload
from missrec.train.loop import train
from missrec.train.resume import STATE_FILE

CFG = SASRecConfig(hidden=16, inner=32, n_layers=1)
FAST = TrainConfig(epochs=3, batch_size=16, seed=2, threads=1)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return write_store(make_dataset(n_users=30, n_items=25), tmp_path_factory.mktemp("nf") / "store")


def test_a_nan_loss_stops_the_run_naming_epoch_and_step(store, tmp_path, monkeypatch):
    steps_per_epoch = math.ceil(len(build_examples(make_dataset(n_users=30, n_items=25), "train")) / 16)
    calls = {"n": 0}
    loss = SASRec.training_loss

    def nan_in_epoch_two(self, batch):
        calls["n"] += 1
        value, parts = loss(self, batch)
        return (value * float("nan") if calls["n"] == steps_per_epoch + 2 else value), parts
    monkeypatch.setattr(SASRec, "training_loss", nan_in_epoch_two)
    run = tmp_path / "run"
    with pytest.raises(MissrecError, match=r"epoch 2, step 2") as err:
        train("sasrec", store, run, FAST, CFG, log=lambda _: None)
    assert str(run) in str(err.value) and "keeps epoch 1" in str(err.value)
    state = torch.load(run / STATE_FILE, weights_only=True)
    assert state["epoch"] == 1 and all(torch.isfinite(v).all() for v in state["weights"].values()
                                       if torch.is_tensor(v) and v.is_floating_point())
    assert not (run / "results.json").exists()
    assert len((run / "history.jsonl").read_text().splitlines()) == 1


class Scores(RowScorer):
    """A stand-in model whose every score is ``value`` at item 3 and finite elsewhere."""

    def __init__(self, value: float, n_items: int):
        super().__init__(n_items)
        self.value = value

    def score_all(self, batch, cache=None):
        scores = torch.arange(self.n_items + 1, dtype=torch.float32).repeat(len(batch), 1)
        scores[:, 3] = self.value
        return scores


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_nan_or_inf_scores_are_an_error_naming_the_run(value):
    ds = make_dataset(n_users=10, n_items=8)
    ex = build_examples(ds, "test")
    with pytest.raises(MissrecError, match=r"^runs/x: the model scored item 3 .* on the test split"):
        evaluate(Scores(value, 8), ex, EvalProtocol(), desc="test", name="runs/x")


def test_minus_inf_marks_an_unrankable_item_and_is_allowed():
    ds = make_dataset(n_users=10, n_items=8)
    ex = build_examples(ds, "test")
    res = evaluate(Scores(float("-inf"), 8), ex, EvalProtocol())
    assert np.isfinite(list(res.metrics.values())).all()


def test_evaluating_a_checkpoint_with_nan_weights_is_a_one_line_error(store, tmp_path):
    train("sasrec", store, tmp_path / "run", TrainConfig(epochs=1, batch_size=16, seed=2, threads=1), CFG,
          log=lambda _: None)
    payload = read_checkpoint(tmp_path / "run")
    payload["state_dict"] = {k: v * float("nan") if torch.is_tensor(v) and v.is_floating_point() else v
                             for k, v in payload["state_dict"].items()}
    write_payload(tmp_path / "bad.pt", payload)
    res = CliRunner().invoke(main, ["evaluate", str(tmp_path / "bad.pt"), "--data", str(store)])
    assert res.exit_code == 1
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {tmp_path / 'bad.pt'}: the model scored")
    assert json.loads((tmp_path / "run" / "results.json").read_text())["test"]  # the good run is untouched


def test_the_cli_prints_one_line_for_a_nan_loss(store, tmp_path, monkeypatch):
    loss = SASRec.training_loss
    monkeypatch.setattr(SASRec, "training_loss", lambda self, batch: (loss(self, batch)[0] * float("nan"), {}))
    run = tmp_path / "run"
    res = CliRunner().invoke(main, ["train", "--model", "sasrec", "--data", str(store), "--out", str(run), "-q",
                                    "--set", "epochs=2", "--set", "batch_size=16", "--set", "model.hidden=16"])
    assert res.exit_code == 1
    assert res.output.strip().splitlines() == [
        f"error: {run}: non-finite training loss (nan) at epoch 1, step 1; no epoch was complete"]
