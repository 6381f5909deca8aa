"""Under data-parallel training every process resumes from the same training state (each
with its own dropout stream) and the run ends where the uninterrupted one ends."""

from __future__ import annotations

import json
import shutil

import numpy as np
import torch
from support import make_dataset, spawn_ranks

from missrec.config import TrainConfig
from missrec.data.store import write_store
from missrec.model.sasrec import SASRecConfig
from missrec.train.loop import RunData, train
from missrec.train.resume import STATE_FILE
from missrec.train.trainer import Trainer

CFG = SASRecConfig(hidden=16, inner=32, n_layers=1)  # dropout on: each process draws its own masks


def _worker(rank, world, store, out, resume, keep):
    save = Trainer.save_state

    def save_and_keep_the_first(self):  # what a kill during epoch 2 would leave behind
        save(self)
        if keep is not None and self.out is not None and self.epoch == 1:
            shutil.copytree(self.out, keep)
    Trainer.save_state = save_and_keep_the_first
    data = RunData.load(store, [], 50)
    data.train = data.train.subset(np.arange(96))
    cfg = TrainConfig(epochs=3, batch_size=32, seed=5, patience=100, threads=1, lr=0.01)
    train("sasrec", store, out, cfg, CFG, data=data, log=lambda _: None, resume=resume)


def _spawn_two(store, out, resume, keep):
    """Two processes; a retry starts again from what was on disk before."""
    backup = out.with_name(out.name + ".before")
    if out.exists():
        shutil.copytree(out, backup)

    def put_back():
        for d in (out, keep):
            if d is not None and d.exists():
                shutil.rmtree(d)
        if backup.exists():
            shutil.copytree(backup, out)
    spawn_ranks(_worker, store, out, resume, keep, before_retry=put_back)


def test_two_processes_resume_from_one_state(tmp_path):
    store = write_store(make_dataset(n_users=60, min_len=5), tmp_path / "store")
    _spawn_two(store, tmp_path / "whole", False, tmp_path / "cut")
    state = torch.load(tmp_path / "cut" / STATE_FILE, weights_only=True)
    assert state["epoch"] == 1 and len(state["rng"]["processes"]) == 2
    assert not torch.equal(*(p["torch"] for p in state["rng"]["processes"]))  # one stream per process
    _spawn_two(store, tmp_path / "cut", True, None)
    whole, cut = (json.loads((tmp_path / d / "results.json").read_text()) for d in ("whole", "cut"))
    assert cut["test"] == whole["test"] and cut["valid"] == whole["valid"] and cut["epochs"] == 3
    a = torch.load(tmp_path / "whole" / "model.pt", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "cut" / "model.pt", weights_only=True)["state_dict"]
    for k in a:
        assert torch.equal(a[k], b[k]), k
