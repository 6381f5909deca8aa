"""What a run records about itself: the evaluation protocol, the code version, peak memory."""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

from .. import __version__
from ..config import TrainConfig
from ..eval.evaluator import EvalProtocol

Log = Callable[[str], None]


def quiet(_: str) -> None:
    """A log that drops everything (data-parallel processes other than rank 0)."""


def protocol_of(cfg: TrainConfig) -> EvalProtocol:
    return EvalProtocol(ks=list(cfg.ks), mask_history=cfg.mask_history, ties=cfg.ties,
                        batch_size=cfg.eval_batch_size)


def validation_protocol_of(cfg: TrainConfig) -> EvalProtocol:
    """The protocol of a run's validation epochs: ``ks`` plus the K of ``valid_metric``, so
    model selection by e.g. ``ndcg@5`` works when 5 is not among the reported cut-offs. Tests
    and ``missrec evaluate`` keep :func:`protocol_of` (the cut-offs the user asked for)."""
    protocol = protocol_of(cfg)
    k = int(cfg.valid_metric.partition("@")[2])
    if k not in protocol.ks:
        protocol.ks.append(k)
    return protocol


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
