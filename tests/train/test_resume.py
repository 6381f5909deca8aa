"""A run killed with SIGKILL in the middle of an epoch resumes from its last complete epoch
and finishes exactly as the uninterrupted run does; a run directory is never overwritten
by accident."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from support import make_dataset

from missrec.cli import main
from missrec.config import TrainConfig, from_dict
from missrec.errors import MissrecError
from missrec.data.store import write_store
from missrec.locks import FolderLock
from missrec.train.rundata import RunData
from missrec.train.checkpoint import read_payload, write_payload
from missrec.train.resume import FORMAT, STATE_FILE, read_state

BATCH = 16
TINY = ["--set", "d=16", "--set", "n_heads=2", "--set", "ffn_dim=32", "--set", "n_clusters=0.3"]
FAST = ["--set", f"batch_size={BATCH}", "--set", "eval_batch_size=64", "--set", "threads=1", "--set", "seed=7"]
# timings, and the git revision (another commit may land between two runs of a shared checkout)
TIMING = {"train_seconds", "seconds_per_epoch", "eval_seconds", "eval_users_per_second", "sequences_per_second",
          "epoch_cluster_seconds", "peak_memory_mb", "code_version"}

# Runs the CLI in a child process that SIGKILLs itself in the middle of an optimiser step
# (the KILL_AT_STEP-th), as a machine's out-of-memory killer or a `kill -9` would.
KILLER = """
import os, signal, sys
import torch
steps = 0
step = torch.optim.Adam.step
def step_then_die(self, *args, **kwargs):
    global steps
    steps += 1
    if steps == int(os.environ["KILL_AT_STEP"]):
        os.kill(os.getpid(), signal.SIGKILL)
    return step(self, *args, **kwargs)
torch.optim.Adam.step = step_then_die
from missrec.cli import main
main(sys.argv[1:])
"""


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume")
    a = make_dataset(n_users=30, n_items=25, seed=1)
    a.name = "A"
    b = make_dataset(n_users=30, n_items=20, seed=2)
    b.name = "B"
    return write_store(a, root / "a"), write_store(b, root / "b")


def cli(*args) -> tuple[int, str]:
    res = CliRunner().invoke(main, [str(a) for a in args])
    return res.exit_code, res.output


def killed(args: list, at_step: int) -> None:
    proc = subprocess.run([sys.executable, "-c", KILLER, *map(str, args), "--quiet"],
                          env={**os.environ, "KILL_AT_STEP": str(at_step)}, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr


def without_timing(obj):
    if isinstance(obj, dict):
        return {k: without_timing(v) for k, v in obj.items() if not is_timing(k)}
    if isinstance(obj, list):
        return [without_timing(v) for v in obj]
    return obj


def is_timing(key: str) -> bool:
    """Wall-clock figures differ between any two runs; everything else must not."""
    return key in TIMING or "seconds" in key


def outputs(run: Path) -> dict:
    history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    results = json.loads((run / "results.json").read_text())
    return {"results": without_timing(results), "history": without_timing(history),
            "files": sorted(p.name for p in run.iterdir())}


def same_weights(a: Path, b: Path) -> None:
    wa = torch.load(a / "model.pt", weights_only=True)["state_dict"]
    wb = torch.load(b / "model.pt", weights_only=True)["state_dict"]
    assert wa.keys() == wb.keys()
    for k in wa:
        if torch.is_tensor(wa[k]):
            assert torch.equal(wa[k], wb[k]), k


def steps_per_epoch(store: Path) -> int:
    return math.ceil(len(RunData.load(store, [], 50).train) / BATCH)


def test_a_killed_training_run_resumes_exactly(stores, tmp_path):
    store, _ = stores
    args = ["train", "--model", "missrec", "--data", store, *TINY, *FAST,
            "--set", "epochs=5", "--set", "patience=3", "--set", "ema_decay=0.9"]
    code, out = cli(*args, "--out", tmp_path / "whole", "--quiet")
    assert code == 0, out
    run = tmp_path / "killed"
    killed([*args, "--out", run], at_step=2 * steps_per_epoch(store) + 2)  # in the third epoch
    assert (run / STATE_FILE).exists() and not (run / "results.json").exists()
    assert len((run / "history.jsonl").read_text().splitlines()) == 2

    code, out = cli(*args, "--out", run)
    assert code == 1 and "--resume" in out and len(out.strip().splitlines()) == 1
    code, out = cli(*args, "--set", "lr=0.01", "--out", run, "--resume")
    assert code == 1 and "train.lr" in out and len(out.strip().splitlines()) == 1
    code, out = cli(*args, "--out", run, "--resume", "--overwrite")
    assert code == 1 and "exclude" in out
    # a state saved before a train field existed resumes (the field was at its default)
    state = read_payload(run / STATE_FILE, FORMAT, "training state")
    del state["train_config"]["transfer_scope"]
    write_payload(run / STATE_FILE, state)
    code, out = cli(*args, "--set", "transfer_scope=all", "--out", run, "--resume")
    assert code == 1 and "train.transfer_scope: 'adapters' then, 'all' now" in out
    # speed settings (threads, device, evaluation batches) may differ from the killed run's
    saved = from_dict(TrainConfig, read_payload(run / STATE_FILE, FORMAT, "training state")["train_config"], "train")
    read_state(run / STATE_FILE, "missrec", dataclasses.replace(saved, threads=3, eval_batch_size=7), 1)
    with pytest.raises(MissrecError, match="train.lr"):
        read_state(run / STATE_FILE, "missrec", dataclasses.replace(saved, lr=saved.lr * 2), 1)
    code, out = cli(*args, "--out", run, "--resume")
    assert code == 0, out
    assert "resuming after epoch 2" in out
    assert outputs(run) == outputs(tmp_path / "whole")
    assert np.array_equal(np.load(run / "test_ranks.npy"), np.load(tmp_path / "whole" / "test_ranks.npy"))
    same_weights(run, tmp_path / "whole")
    assert not (run / STATE_FILE).exists()


def test_a_killed_pretraining_run_resumes_exactly(stores, tmp_path):
    a, b = stores
    args = ["pretrain", "--data", a, "--data", b, *TINY, *FAST, "--set", "epochs=3"]
    code, out = cli(*args, "--out", tmp_path / "whole", "--quiet")
    assert code == 0, out
    run = tmp_path / "killed"
    per_epoch = steps_per_epoch(a) + steps_per_epoch(b)  # an upper bound: the domains' examples are pooled
    # started with a cap of 2 epochs: a cap only says when to stop, so the run resumes under
    # the whole run's cap of 3 and finishes as the whole run does
    killed([*args, "--set", "epochs=2", "--out", run], at_step=per_epoch + 1)  # in the second epoch
    assert (run / STATE_FILE).exists() and not (run / "results.json").exists()
    code, out = cli(*args, "--out", run, "--resume", "--quiet")
    assert code == 0, out
    assert outputs(run) == outputs(tmp_path / "whole")
    same_weights(run, tmp_path / "whole")


def test_a_pretraining_run_that_lost_its_checkpoint_does_not_finish(stores, tmp_path):
    a, b = stores
    args = ["pretrain", "--data", a, "--data", b, *TINY, *FAST]
    run = tmp_path / "killed"
    killed([*args, "--set", "epochs=2", "--out", run], at_step=steps_per_epoch(a) + steps_per_epoch(b) + 1)
    (run / "model.pt").unlink()  # the kept epoch's weights are nowhere else
    code, out = cli(*args, "--set", "epochs=1", "--out", run, "--resume", "--quiet")  # nothing left to train
    assert code == 1 and len(out.strip().splitlines()) == 1 and "model.pt is missing" in out, out
    assert not (run / "results.json").exists()


def test_a_finished_run_is_not_overwritten_by_accident(stores, tmp_path):
    store, _ = stores
    args = ["train", "--model", "sasrec", "--data", store, *FAST, "--set", "epochs=1", "--out", tmp_path / "run"]
    assert cli(*args)[0] == 0
    before = (tmp_path / "run" / "results.json").read_text()
    code, out = cli(*args)
    assert code == 1 and "--overwrite" in out and len(out.strip().splitlines()) == 1
    code, out = cli(*args, "--resume")
    assert code == 1 and "nothing to resume" in out
    assert (tmp_path / "run" / "results.json").read_text() == before
    code, out = cli(*args, "--overwrite")
    assert code == 0, out


class Crash(Exception):
    pass


def test_resuming_a_run_that_died_in_its_first_epoch_starts_it(stores, tmp_path, monkeypatch):
    store, _ = stores
    args = ["train", "--model", "sasrec", "--data", store, *FAST, "--set", "epochs=2", "--quiet"]

    def crash(self, *a, **k):
        raise Crash
    with monkeypatch.context() as m:
        m.setattr(torch.optim.Adam, "step", crash)
        with pytest.raises(Crash):
            CliRunner().invoke(main, [str(a) for a in [*args, "--out", tmp_path / "run"]], catch_exceptions=False)
    assert (tmp_path / "run" / "history.jsonl").exists() and not (tmp_path / "run" / STATE_FILE).exists()
    assert cli(*args, "--out", tmp_path / "run")[0] == 1
    assert cli(*args, "--out", tmp_path / "run", "--resume")[0] == 0
    assert cli(*args, "--out", tmp_path / "whole")[0] == 0
    assert outputs(tmp_path / "run") == outputs(tmp_path / "whole")


def test_one_command_at_a_time_trains_into_a_run_directory(stores, tmp_path):
    store, _ = stores
    run = tmp_path / "run"
    args = ["train", "--model", "sasrec", "--data", store, *FAST, "--set", "epochs=1", "--out", run, "--quiet"]
    with FolderLock(run, "missrec train"):  # as a second `missrec train --resume` on the run would find it
        code, out = cli(*args, "--resume")
        assert code == 1 and f"another missrec train is working here (process {os.getpid()})" in out
        assert len(out.strip().splitlines()) == 1 and [p.name for p in run.iterdir()] == [".lock"]
    assert not run.exists()  # made for the lock and left empty: removed with it
    assert cli(*args)[0] == 0
    assert (run / "results.json").exists()
    with FolderLock(run, "missrec train"):  # released when the run ended
        pass
