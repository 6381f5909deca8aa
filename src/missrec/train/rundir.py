"""What may happen to an existing run directory: resume it, replace it, or refuse.

A finished run (``results.json``) is never overwritten unless asked to; an interrupted one
(a history or a training state but no results) is continued with ``resume`` or restarted
with ``overwrite``, and otherwise left alone with an error that says which to pass.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import MissrecError
from .state import STATE_FILE

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
