"""One training epoch: the model's per-epoch hook, then one optimiser step per batch."""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch
from tqdm.auto import tqdm

from ..config import TrainConfig
from ..data.batching import Examples, iterate_batches
from ..errors import MissrecError
from ..model.base import SequentialRecommender
from .distributed import DistContext, epoch_start


class NonFiniteLoss(MissrecError):
    """A training step's loss was NaN or infinite; the step was not taken."""


def run_epoch(model: SequentialRecommender, loss_fn: Callable, examples: Examples, cfg: TrainConfig,
              optim: torch.optim.Optimizer, rng: np.random.Generator, device: torch.device, epoch: int,
              progress: bool, desc: str = "epoch", ctx: DistContext = DistContext(),
              after_step: Callable[[], None] | None = None) -> tuple[dict[str, float], dict[str, float]]:
    """One pass over ``examples``: the model's per-epoch hook, then a step per batch.

    ``loss_fn`` maps a batch to (loss, components), e.g. :func:`~missrec.train.distributed.loss_function`;
    under data-parallel training each process takes its share of every batch.
    ``after_step`` runs after every optimiser step (weight averaging).
    Returns the hook's figures (prefixed ``epoch_``) and the mean of each loss component.
    A non-finite loss raises :class:`NonFiniteLoss` before its step, so the weights stay
    those of the last finite one.
    """
    model.train()
    stats = {f"epoch_{k}": v for k, v in epoch_start(model, epoch, ctx).items()}
    sums: dict[str, float] = {}
    n_batches = math.ceil(len(examples) / cfg.batch_size)
    batches = iterate_batches(examples, cfg.batch_size, shuffle=True, generator=rng, bucket=cfg.bucket_by_length,
                              shard=ctx.shard())
    for step, batch in enumerate(tqdm(batches, total=n_batches, desc=f"{desc} {epoch}",
                                      disable=not (progress and ctx.main), leave=False), start=1):
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16"):
            loss, parts = loss_fn(batch.to(device))
        if not bool(torch.isfinite(loss)):
            raise NonFiniteLoss(f"non-finite training loss ({float(loss.detach())}) at epoch {epoch}, step {step}")
        optim.zero_grad(set_to_none=True)
        loss.backward()
        optim.step()
        if after_step is not None:
            after_step()
        for k, v in parts.items():
            sums[k] = sums.get(k, 0.0) + v
    return stats, {k: v / max(n_batches, 1) for k, v in sums.items()}
