"""Early stopping of pre-training on held-out users (paper §3.5 has no validation split).

Pre-training holds out a seeded share of each domain's users (``train.heldout_share``; see
:meth:`missrec.train.pretrain.PretrainData.load`). After every epoch the pre-training loss
(eq. 7) of their sequences is computed the same way every time: the kept model in eval mode
(no dropout, no feature augmentation), without gradients, in a fixed batch order, with
torch's generators forked and seeded with a constant so the augmentation draws that remain
(item dropping) repeat from one epoch to the next, and the training run's own random streams
are left exactly as they were. The epoch with the lowest loss is kept; ``patience`` epochs
without a lower one end the run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from ..config import TrainConfig
from ..data.batching import iterate_batches
from ..data.compact import CompactExamples
from ..model.base import SequentialRecommender

SEED = 20230713
"""Seeds the held-out loss's batch order and augmentation draws (the same every epoch)."""


@torch.no_grad()
def heldout_loss(model: SequentialRecommender, examples: CompactExamples, cfg: TrainConfig,
                 device: torch.device) -> float:
    """The mean eq. 7 loss (``model.pretrain_loss``) over the held-out examples, weighted by
    batch size; batches are as training draws them (``batch_size``, ``bucket_by_length``) from
    a fixed generator, so in-batch negatives are the same every epoch."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    devices = [device] if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(SEED)
            batches = iterate_batches(examples, cfg.batch_size, shuffle=True, generator=np.random.default_rng(SEED),
                                      bucket=cfg.bucket_by_length)
            for batch in batches:
                loss, _ = model.pretrain_loss(batch.to(device))
                total += float(loss) * len(batch)
                count += len(batch)
    finally:
        model.train(was_training)
    return total / count if count else math.nan


@dataclass
class HeldOutStopping:
    """The lowest held-out loss so far, its epoch, the epochs since, and every epoch's loss."""

    best: float = math.inf
    epoch: int = 0
    bad_epochs: int = 0
    losses: list[float] = field(default_factory=list)

    def record(self, epoch: int, loss: float, improved: bool) -> None:
        """Record ``epoch``'s ``loss`` and whether it is the lowest so far (decided once, on the
        data-parallel process that computes it; the others pass NaN and that decision)."""
        self.losses.append(loss)
        if improved:
            self.best, self.epoch, self.bad_epochs = loss, epoch, 0
        else:
            self.bad_epochs += 1


__all__ = ["HeldOutStopping", "SEED", "heldout_loss"]
