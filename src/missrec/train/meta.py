"""What a run records about itself: the evaluation protocol, the code version, peak memory."""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import torch

from .. import __version__
from ..config import TrainConfig
from ..errors import MissrecError
from ..eval.evaluator import EvalProtocol

Log = Callable[[str], None]


def quiet(_: str) -> None:
    """A log that drops everything (data-parallel processes other than rank 0)."""


def protocol_of(cfg: TrainConfig) -> EvalProtocol:
    return EvalProtocol(ks=list(cfg.ks), mask_history=cfg.mask_history, ties=cfg.ties,
                        batch_size=cfg.eval_batch_size, block_size=cfg.eval_block_size)


def validation_protocol_of(cfg: TrainConfig) -> EvalProtocol:
    """The protocol of a run's validation epochs: ``ks`` plus the K of ``valid_metric``, so
    model selection by e.g. ``ndcg@5`` works when 5 is not among the reported cut-offs. Tests
    and ``missrec evaluate`` keep :func:`protocol_of` (the cut-offs the user asked for)."""
    protocol = protocol_of(cfg)
    k = int(cfg.valid_metric.partition("@")[2])
    if k not in protocol.ks:
        protocol.ks.append(k)
    return protocol


def usable_device(name: str) -> torch.device:
    """``train.device`` as a torch device, or a one-line error when this machine has no such
    device (torch would fail deep inside the first step, with a traceback)."""
    device = torch.device(name)
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if (device.index or 0) >= count:
            raise MissrecError(f"train.device={name!r}: this machine has {count} CUDA device(s) usable by torch "
                               f"{torch.__version__}; use --set device=cpu")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise MissrecError(f"train.device={name!r}: MPS is not available here; use --set device=cpu")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise MissrecError(f"train.device={name!r}; expected cpu, cuda, cuda:N or mps")
    return device


def eval_device(name: str) -> torch.device:
    """``train.device`` to evaluate on, or the CPU on a machine without it (a run trained on
    a GPU evaluates anywhere)."""
    try:
        return usable_device(name)
    except MissrecError:
        return torch.device("cpu")


def code_version() -> str:
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             cwd=Path(__file__).parent, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        rev = ""
    return f"{__version__}+{rev}" if rev else __version__


def max_len_of(model_cfg: Any) -> int:
    """Histories are cut to the model's ``max_len`` (the most recent items)."""
    return int(getattr(model_cfg, "max_len", 50))


def peak_memory_mb() -> float:
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024 if sys.platform != "darwin" else kb / 2**20
