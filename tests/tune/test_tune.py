"""``missrec tune`` end to end on a small generated store: the files it writes, best.yaml
through ``missrec train --config``, resuming, pruning, parallel trials, the test split left
alone, and one-line errors."""

from __future__ import annotations

import csv
import json
import sys
import threading
import time
from types import SimpleNamespace

import pytest
import yaml
from click.testing import CliRunner
from support import make_dataset

from missrec.cli import main
from missrec.data.store import write_store
from missrec.train import loop
from missrec.train.resolve import resolve_configs
from missrec.train.resume import STATE_FILE
from missrec.tune import load_space, tune
from missrec.tune.study import STUDY_FILE, StudyRef, open_study
from missrec.tune.trial import PruneWatch, _capped, next_trial

optuna = pytest.importorskip("optuna")

SMALL = ["epochs=2", "model.hidden=16"]
"""Trials of a few seconds: two epochs of a narrow SASRec."""


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return write_store(make_dataset(n_users=40, n_items=30), tmp_path_factory.mktemp("tune") / "store")


def cli(*args):
    res = CliRunner().invoke(main, [str(a) for a in args])
    return res.exit_code, res.output


def rows(out):
    with open(out / "trials.csv") as f:
        return list(csv.DictReader(f))


def quiet(line):
    pass


def test_a_study_writes_its_files_and_best_yaml_trains_as_its_trial_did(store, tmp_path):
    out = tmp_path / "study"
    code, output = cli("tune", "--model", "sasrec", "--data", store, "--trials", 3, "--out", out, "-q",
                       *(w for s in SMALL for w in ("--set", s)))
    assert code == 0, output
    assert (out / STUDY_FILE).exists() and "3 trials: 3 complete" in output
    table = rows(out)
    keys = load_space("sasrec").keys
    assert [r["number"] for r in table] == ["0", "1", "2"] and {r["state"] for r in table} == {"COMPLETE"}
    assert list(table[0]) == ["number", "state", *keys, "valid_ndcg@10", "best_epoch", "epochs", "seconds", "note"]
    best = max(table, key=lambda r: float(r["valid_ndcg@10"]))
    assert f"best: trial {best['number']}" in output
    config = yaml.safe_load((out / "best.yaml").read_text())
    # only the tuned fields (dropout carries its `also`, attention dropout)
    assert config == {"train": {"lr": float(best["train.lr"]), "batch_size": int(best["train.batch_size"])},
                      "model": {"dropout": float(best["model.dropout"]), "attn_dropout": float(best["model.dropout"])}}
    run = tmp_path / "run"
    code, output = cli("train", "--model", "sasrec", "--config", out / "best.yaml", "--data", store, "--out", run,
                       "-q", "--set", "threads=1", *(w for s in SMALL for w in ("--set", s)))
    assert code == 0, output
    results = json.loads((run / "results.json").read_text())
    assert results["valid"]["ndcg@10"] == float(best["valid_ndcg@10"])  # the same seed, the same run


def test_rerunning_continues_the_study_and_reruns_an_interrupted_trial(store, tmp_path):
    out = tmp_path / "study"
    first = tune("sasrec", store, 2, out, sets=SMALL, log=quiet)
    finished = {r.number: (out / "trials" / f"{r.number:04d}" / "results.json").stat().st_mtime_ns
                for r in first.trials}
    # a trial a killed process left RUNNING: asked, given values, never told
    study = StudyRef(out / STUDY_FILE, 5, 3, 3).load(0)
    killed = study.ask()
    values = load_space("sasrec").suggest(killed)
    lines = []
    again = tune("sasrec", store, 3, out, sets=SMALL, log=lines.append)
    states = {r.number: r.state for r in again.trials}
    assert states == {0: "COMPLETE", 1: "COMPLETE", 2: "FAIL", 3: "COMPLETE"} and again.ran == 1
    assert again.trials[2].note.startswith("interrupted") and again.trials[3].params == values
    assert lines[0] == "trial 2 was interrupted; its values run again"
    assert {n: (out / "trials" / f"{n:04d}" / "results.json").stat().st_mtime_ns for n in finished} == finished
    assert len(rows(out)) == 4
    done = tune("sasrec", store, 3, out, sets=SMALL, log=quiet)
    assert done.ran == 0 and len(done.trials) == 4


class Killed(BaseException):
    """Stands for the signal that kills a study's process: nothing catches it."""


def test_an_interrupted_trial_goes_on_from_its_last_epoch(store, tmp_path, monkeypatch):
    sets = ["epochs=4", "model.hidden=16"]
    whole = tune("sasrec", store, 2, tmp_path / "whole", sets=sets, log=quiet)  # the oracle: never killed
    out = tmp_path / "study"
    report = PruneWatch.__call__

    def killed_in_epoch_3(self, epoch, metrics):
        if self.trial.number == 1 and epoch == 3:
            raise Killed
        report(self, epoch, metrics)

    monkeypatch.setattr(PruneWatch, "__call__", killed_in_epoch_3)
    with pytest.raises(Killed):
        tune("sasrec", store, 2, out, sets=sets, log=quiet)
    monkeypatch.setattr(PruneWatch, "__call__", report)
    assert (out / "trials" / "0001" / STATE_FILE).exists()  # epoch 2's
    trained = []
    run_epoch = loop.StoreTrainer.run_epoch
    monkeypatch.setattr(loop.StoreTrainer, "run_epoch", lambda self: trained.append(self.epoch) or run_epoch(self))
    lines = []
    again = tune("sasrec", store, 2, out, sets=sets, log=lines.append)
    assert lines[0] == "trial 1 was interrupted; its values run again, from its last complete epoch"
    assert [r.state for r in again.trials] == ["COMPLETE", "FAIL", "COMPLETE"] and trained == [3, 4]
    rerun, oracle = again.trials[2], whole.trials[1]
    assert rerun.params == oracle.params and rerun.epochs == 4
    assert rerun.valid == oracle.valid and rerun.best_epoch == oracle.best_epoch
    # the pruner saw every epoch, the two trained before the kill included
    reported = StudyRef(out / STUDY_FILE, 5, 3, 3).trials()[2].intermediate_values
    assert reported == StudyRef(tmp_path / "whole" / STUDY_FILE, 5, 3, 3).trials()[1].intermediate_values
    assert sorted(reported) == [1, 2, 3, 4]
    assert not (out / "trials" / "0001").exists() and (out / "trials" / "0002" / "results.json").exists()
    history = [json.loads(line) for line in (out / "trials" / "0002" / "history.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in history] == [1, 2, 3, 4]
    assert [h["valid_ndcg@10"] for h in history] == [
        json.loads(line)["valid_ndcg@10"]
        for line in (tmp_path / "whole" / "trials" / "0001" / "history.jsonl").read_text().splitlines()]


def test_an_interrupted_trial_whose_state_cannot_be_read_starts_afresh(store, tmp_path):
    out = tmp_path / "study"
    tune("sasrec", store, 1, out, sets=SMALL, log=quiet)
    study = StudyRef(out / STUDY_FILE, 5, 3, 3).load(0)
    killed = study.ask()
    load_space("sasrec").suggest(killed)
    folder = out / "trials" / f"{killed.number:04d}"
    folder.mkdir(parents=True)
    (folder / STATE_FILE).write_bytes(b"not a training state")
    again = tune("sasrec", store, 2, out, sets=SMALL, log=quiet)
    assert [r.state for r in again.trials] == ["COMPLETE", "FAIL", "COMPLETE"] and again.trials[2].epochs == 2


def test_a_study_refuses_another_model_store_or_space(store, tmp_path):
    out = tmp_path / "study"
    tune("sasrec", store, 1, out, sets=["epochs=1", "model.hidden=16"], log=quiet)
    other = write_store(make_dataset(n_users=40, n_items=30, seed=5), tmp_path / "other")
    space = tmp_path / "space.yaml"
    space.write_text("train.lr: {type: float, low: 1.0e-3, high: 1.0e-2, log: true}\n")
    for args, what in (([], "another model"), (["--data", other], "another store"),
                       (["--space", space], "another search space"), (["--set", "epochs=2"], "another fixed --set")):
        model = "sasrec-text" if what == "another model" else "sasrec"
        data = [] if "--data" in args else ["--data", store]
        code, output = cli("tune", "--model", model, *data, "--trials", 2, "--out", out, "--set", "model.hidden=16",
                           *(["--set", "epochs=1"] if "epochs=2" not in args else []), *args)
        assert code == 1 and output.count("\n") == 1 and what in output, output


def test_a_pruned_trial_stops_before_results(store, tmp_path, monkeypatch):
    real = optuna.trial.Trial.should_prune
    monkeypatch.setattr(optuna.trial.Trial, "should_prune", lambda self: self.number == 1 or real(self))
    result = tune("sasrec", store, 3, tmp_path / "study", sets=SMALL, log=quiet)
    assert [r.state for r in result.trials] == ["COMPLETE", "PRUNED", "COMPLETE"]
    pruned = tmp_path / "study" / "trials" / "0001"
    assert not (pruned / "results.json").exists() and not (pruned / "model.pt").exists()
    assert not (pruned / STATE_FILE).exists() and (pruned / "history.jsonl").read_text() == ""
    assert result.trials[1].epochs == 1 and result.trials[1].valid is not None
    assert rows(tmp_path / "study")[1]["state"] == "PRUNED"


def test_a_new_study_begins_with_the_default(store, tmp_path):
    result = tune("sasrec", store, 2, tmp_path / "study", sets=SMALL, log=quiet)
    train_cfg, model_cfg = resolve_configs("sasrec", None, tuple(SMALL))
    first = result.trials[0]
    assert first.default and not result.trials[1].default
    assert first.params == {"train.lr": train_cfg.lr, "model.dropout": model_cfg.dropout,
                            "train.batch_size": train_cfg.batch_size}
    assert rows(tmp_path / "study")[0]["note"].split("; ")[0] == "the model's default"
    lead = result.best.valid - first.valid
    assert f"the default (trial 0): valid ndcg@10 {first.valid:.4f}; the best is {lead:+.4f} from it" in result.summary()
    # it scores what `missrec train` at the defaults scores
    code, output = cli("train", "--model", "sasrec", "--data", store, "--out", tmp_path / "run", "-q",
                       "--set", "threads=1", *(w for s in SMALL for w in ("--set", s)))
    assert code == 0, output
    assert json.loads((tmp_path / "run" / "results.json").read_text())["valid"]["ndcg@10"] == first.valid
    # a space the default lies outside of: every trial is sampled
    space = tmp_path / "space.yaml"
    space.write_text("train.lr: {type: float, low: 1.0e-3, high: 1.0e-2, log: true}\n")
    other = tune("sasrec", store, 1, tmp_path / "other", sets=SMALL, space=space, log=quiet)
    assert not other.trials[0].default and other.trials[0].params["train.lr"] >= 1e-3


def test_a_trial_behind_the_median_is_pruned_only_once_it_stops_improving(tmp_path):
    """Two fast learners complete; a slow learner far behind them at every epoch keeps
    training while each epoch raises its best, and is pruned after ``prune_patience``
    epochs without a new one (the median rule alone prunes it at the first chance); a flat
    one is pruned as soon as its window shows no rise."""
    def pruned_after(ref, curve):
        from missrec.tune.study import open_study
        open_study(ref, {"model": "x"})
        study = ref.load(0)
        for _ in range(2):
            fast = study.ask()
            for epoch in range(1, 16):
                fast.report(0.08, epoch)
            study.tell(fast, 0.08)
        slow = study.ask()
        for epoch, value in enumerate(curve, 1):
            slow.report(value, epoch)
            if slow.should_prune():
                return epoch
        return None

    rising = [0.01 * e for e in range(1, 8)] + [0.07] * 5
    assert pruned_after(StudyRef(tmp_path / "a.db", 2, 0, 0), rising) == 1
    assert pruned_after(StudyRef(tmp_path / "b.db", 2, 0, 3), rising) == 10
    assert pruned_after(StudyRef(tmp_path / "c.db", 2, 0, 3), [0.02] * 6) == 4


def test_tuning_never_scores_the_test_split(store, tmp_path, monkeypatch):
    scored = []
    evaluate = loop.evaluate

    def watched(model, examples, *args, desc="", **kwargs):
        scored.append(desc)
        return evaluate(model, examples, *args, desc=desc, **kwargs)

    monkeypatch.setattr(loop, "evaluate", watched)
    result = tune("sasrec", store, 2, tmp_path / "study", sets=SMALL, log=quiet)
    assert len(scored) == 4 and set(scored) == {"valid"}
    for r in result.trials:
        run = tmp_path / "study" / "trials" / f"{r.number:04d}"
        assert "test" not in json.loads((run / "results.json").read_text())
        assert not (run / "test_ranks.npy").exists()


def test_parallel_trials_share_the_study(store, tmp_path):
    lines = []
    result = tune("sasrec", store, 2, tmp_path / "study", jobs=2, sets=["epochs=1", "model.hidden=16"],
                  log=lines.append)
    assert [r.state for r in result.trials] == ["COMPLETE", "COMPLETE"]
    assert result.trials[0].params != result.trials[1].params  # each trial samples with its own seed
    assert sorted(line.split()[1] for line in lines) == ["0", "1"] and (tmp_path / "study" / "best.yaml").exists()


def test_processes_take_their_trials_in_turn(tmp_path, monkeypatch):
    # Optuna hands a queued trial to whoever marks it running first, and SQLite does not lock
    # the row it reads: two workers asking at once could both take the default trial
    ref = StudyRef(tmp_path / STUDY_FILE, 5, 3, 3)
    open_study(ref, {"model": "sasrec"}, default={"train.lr": 1e-3})
    ask, inside, most = optuna.Study.ask, [], []

    def slow_ask(study, *args, **kwargs):
        inside.append(1)
        most.append(len(inside))
        time.sleep(0.2)
        try:
            return ask(study, *args, **kwargs)
        finally:
            inside.pop()

    monkeypatch.setattr(optuna.Study, "ask", slow_ask)
    numbers = []
    threads = [threading.Thread(target=lambda: numbers.append(next_trial(ref.load(0), tmp_path).number))
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert max(most) == 1 and sorted(numbers) == [0, 1]


def test_trials_the_epoch_cap_ended_are_marked(store, tmp_path):
    # two epochs, early stopping's patience ten: every complete trial ends at the cap
    result = tune("sasrec", store, 2, tmp_path / "study", sets=SMALL, log=quiet)
    assert all(r.capped for r in result.trials)
    assert [r["note"] for r in rows(tmp_path / "study")] == [
        "the model's default; ended at the epoch cap, still improving", "ended at the epoch cap, still improving"]
    assert ("2 of 2 complete trials ended at the epoch cap while still improving (trials 0, 1, the best among "
            "them): a larger --set epochs may raise their scores") in result.summary()
    cfg = SimpleNamespace(epochs=30, patience=10)
    assert _capped({"epochs": 30, "best_epoch": 25}, cfg)
    assert not _capped({"epochs": 30, "best_epoch": 20}, cfg)  # early stopping ends it there too
    assert not _capped({"epochs": 12, "best_epoch": 2}, cfg)


def test_a_timeout_stops_new_trials(store, tmp_path):
    result = tune("sasrec", store, 3, tmp_path / "study", timeout=1e-6, sets=SMALL, log=quiet)
    assert result.timed_out and result.ran == 0 and result.best is None
    assert "stopped starting trials after --timeout" in result.summary()
    code, output = cli("tune", "--model", "sasrec", "--data", store, "--trials", 3, "--out", tmp_path / "cli",
                       "--timeout", 1e-6, "-q")
    assert code == 1 and "error: no trial has completed yet" in output.splitlines()[-1]


@pytest.mark.parametrize("args, message", [
    (["--model", "nope"], "Invalid value for '--model'"),
    (["--trials", "0"], "--trials must be >= 1, got 0"),
    (["--jobs", "0"], "--jobs must be >= 1, got 0"),
    (["--timeout", "-1"], "--timeout must be > 0 seconds"),
    (["--preset", "nope"], "unknown preset 'nope' for model 'missrec'"),
    (["--set", "nokey=1"], "--set nokey: unknown key"),
])
def test_bad_input_is_one_line(store, tmp_path, args, message):
    flags = {"--model": "missrec", "--trials": "1", "--jobs": "1", **dict(zip(args[::2], args[1::2]))}
    code, output = cli("tune", *(w for kv in flags.items() for w in kv), "--data", store, "--out", tmp_path / "s")
    assert code == 1 and output.count("\n") == 1 and message in output, output


def test_an_unreadable_store_a_foreign_space_key_and_a_missing_optuna_are_one_line(tmp_path, store, monkeypatch):
    code, output = cli("tune", "--model", "sasrec", "--data", tmp_path, "--trials", 1, "--out", tmp_path / "s")
    assert code == 1 and output.count("\n") == 1 and "not a missrec dataset store" in output
    space = tmp_path / "space.yaml"
    space.write_text("model.tau: {type: float, low: 0.05, high: 0.2}\n")
    code, output = cli("tune", "--model", "sasrec", "--data", store, "--trials", 1, "--out", tmp_path / "s",
                       "--space", space)
    assert code == 1 and output.count("\n") == 1 and "model 'sasrec' has no config key 'model.tau'" in output
    monkeypatch.setitem(sys.modules, "optuna", None)
    code, output = cli("tune", "--model", "sasrec", "--data", store, "--trials", 1, "--out", tmp_path / "s")
    assert code == 1 and output.count("\n") == 1 and "pip install 'missrec[tune]'" in output
