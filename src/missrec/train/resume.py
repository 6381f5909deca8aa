"""Resuming runs: the training state a run directory keeps after every epoch, and what may
happen to an existing run directory.

``training_state.pt`` holds what the next epoch depends on: the weights (with a model's
extra state, such as MISSRec's current clustering), the optimiser's moments, the averaged
weights, every random number generator (python, numpy, torch on every data-parallel
process, CUDA, and the generator that draws the data order), the epoch, the history and
whatever the trainer adds (early stopping). The interest clustering needs no generator of
its own: it seeds a fresh one from the epoch number every time. Restored before the next
epoch, the run goes on exactly as if it had never stopped (with the same thread count:
float sums may group differently over another number of threads). It is written atomically after every epoch and
removed once the run has written its results.

A finished run (``results.json``) is never overwritten unless asked to; an interrupted one
(a history or a training state but no results) is continued with ``resume`` or restarted
with ``overwrite``, and otherwise left alone with an error that says which to pass.
"""

from __future__ import annotations

import random
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config import SPEED_ONLY_TRAIN_KEYS, STOPPING_TRAIN_KEYS
from ..errors import MissrecError
from ..model.registry import recorded_config
from .checkpoint import plain, read_payload, write_payload
from .distributed import DistContext, gather_objects

STATE_FILE = "training_state.pt"
FORMAT = "missrec-training-state"
VERSION = 1


def rng_states(ctx: DistContext, data_order: np.random.Generator, device: torch.device) -> dict[str, Any]:
    """Every generator's state; torch's and CUDA's from every process (a collective call)."""
    own = {"torch": torch.get_rng_state(),
           "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None}
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {"python": random.getstate(),
            "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)],
            "data_order": data_order.bit_generator.state,
            "processes": gather_objects(ctx, own)}


def restore_rng_states(states: dict[str, Any], ctx: DistContext, data_order: np.random.Generator,
                       device: torch.device) -> None:
    random.setstate(_tuples(states["python"]))
    kind, keys, pos, has_gauss, cached = states["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    data_order.bit_generator.state = states["data_order"]
    own = states["processes"][ctx.rank]
    torch.set_rng_state(own["torch"])
    if own["cuda"] is not None and device.type == "cuda":
        torch.cuda.set_rng_state(own["cuda"], device)


def _tuples(obj: Any) -> Any:
    """random.setstate wants tuples where the file may hold lists."""
    return tuple(_tuples(v) for v in obj) if isinstance(obj, (list, tuple)) else obj


def save_state(path: Path, model_name: str, train_cfg: Any, model_cfg: Any, **fields: Any) -> None:
    """Write the state atomically (a kill mid-write leaves the previous epoch's state)."""
    payload = {"format": FORMAT, "version": VERSION, "model": model_name,
               "train_config": plain(asdict(train_cfg)), "model_config": plain(asdict(model_cfg)), **fields}
    write_payload(path, payload)


def read_state(path: Path, model_name: str, train_cfg: Any, processes: int) -> dict[str, Any]:
    """The state at ``path``, checked against the run about to resume from it (the model
    configuration is checked by :func:`check_model_config` once the model is built)."""
    state = read_payload(path, FORMAT, "training state")
    if state["model"] != model_name:
        raise MissrecError(f"{path}: the interrupted run trained {state['model']!r}, not {model_name!r}")
    # speed and stopping settings may change: a run started on two threads resumes on four,
    # one capped at 10 epochs goes on to 50
    _same_settings(path, model_name, "train", state["train_config"], train_cfg,
                   ignore=SPEED_ONLY_TRAIN_KEYS + STOPPING_TRAIN_KEYS)
    saved = len(state["rng"]["processes"])
    if saved != processes:
        raise MissrecError(f"{path}: the interrupted run had {saved} process(es), this one has {processes}; "
                           "resume with as many")
    return state


def check_model_config(path: Path, state: dict[str, Any], model_cfg: Any) -> None:
    _same_settings(path, state["model"], "model", state["model_config"], model_cfg)


def _same_settings(path: Path, model: str, section: str, saved: dict[str, Any], cfg: Any,
                   ignore: tuple[str, ...] = ()) -> None:
    now = plain(asdict(cfg))
    # in today's layout: a field added to the code since the run started was, for that run,
    # at its default
    saved = recorded_config(model, {section: saved})[section]
    differ = [f"{section}.{k}: {saved.get(k)!r} then, {now.get(k)!r} now"
              for k in sorted(set(saved) | set(now)) if saved.get(k) != now.get(k) and k not in ignore]
    if differ:
        raise MissrecError(f"{path}: the interrupted run used other settings ({'; '.join(differ[:4])}); "
                           "resume with the same settings, or pass --overwrite to start again")


OUTPUTS = ("results.json", STATE_FILE, "model.pt", "test_ranks.npy", "test_targets.npy", "history.jsonl")
"""The files a run writes; a fresh start removes those an earlier run left."""


def state_to_resume(run_dir: Path | None, resume: bool, overwrite: bool) -> Path | None:
    """The training state to continue from, or None to start afresh; an error where
    starting would destroy a run nobody asked to replace."""
    if resume and overwrite:
        raise MissrecError("--resume and --overwrite exclude each other")
    if run_dir is None:
        return None
    state = run_dir / STATE_FILE
    if (run_dir / "results.json").exists():
        if overwrite:
            return None
        if resume:
            raise MissrecError(f"{run_dir}: holds a finished run (results.json), there is nothing to resume; "
                               "pass --overwrite to train it again")
        raise MissrecError(f"{run_dir}: holds a finished run (results.json); pass --overwrite to replace it, "
                           "or choose another --out")
    if resume:
        return state if state.exists() else None
    if (state.exists() or (run_dir / "history.jsonl").exists()) and not overwrite:
        raise MissrecError(f"{run_dir}: holds an interrupted run; pass --resume to continue it, "
                           "or --overwrite to start it again")
    return None


def clear_outputs(run_dir: Path) -> None:
    """Remove what an earlier run left, so that a half-finished new run never looks finished."""
    for name in OUTPUTS:
        (run_dir / name).unlink(missing_ok=True)
