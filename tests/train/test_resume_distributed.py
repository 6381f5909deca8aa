"""Under data-parallel training every process resumes from the same training state (each
with its own dropout stream) and the run ends where the uninterrupted one ends."""

from __future__ import annotations

import json
import os
import shutil
import socket

import numpy as np
import torch
import torch.multiprocessing as mp
from support import make_dataset

from missrec.config import TrainConfig
from missrec.data.store import write_store
from missrec.model.sasrec import SASRecConfig
from missrec.train.loop import RunData, train
from missrec.train.state import STATE_FILE
from missrec.train.trainer import Trainer

CFG = SASRecConfig(hidden=16, inner=32, n_layers=1)  # dropout on: each process draws its own masks


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank, world, port, store, out, resume, keep):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world), RANK=str(rank))
    save = Trainer.save_state

    def save_and_keep_the_first(self):  # what a kill during epoch 2 would leave behind
        save(self)
        if keep is not None and self.out is not None and self.epoch == 1:
            shutil.copytree(self.out, keep)
    Trainer.save_state = save_and_keep_the_first
    data = RunData.load(store, [], 50)
    data.train = data.train.subset(np.arange(96))
    cfg = TrainConfig(epochs=3, batch_size=32, seed=5, patience=100, threads=1, lr=0.01)
    try:
        train("sasrec", store, out, cfg, CFG, data=data, log=lambda _: None, resume=resume)
    finally:
        torch.distributed.destroy_process_group()


def _spawn_two(store, out, resume, keep):
    """Run two processes; once more if one died by a signal (gloo can abort a process while it
    tears down), starting again from what was on disk before."""
    backup = out.with_name(out.name + ".before")
    if out.exists():
        shutil.copytree(out, backup)
    for attempt in range(2):
        try:
            mp.spawn(_worker, args=(2, _free_port(), store, out, resume, keep), nprocs=2)
            return
        except mp.ProcessExitedException:
            if attempt:
                raise
            for d in (out, keep):
                if d is not None and d.exists():
                    shutil.rmtree(d)
            if backup.exists():
                shutil.copytree(backup, out)


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
