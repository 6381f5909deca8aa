"""An exponential moving average of a model's trainable weights, evaluated in its place.

With the released settings (dropout 0.5, a fresh clustering every epoch) the validation
score of the raw weights jumps by a few thousandths from one epoch to the next, so early
stopping can latch onto a lucky epoch and stop before the model has converged. Averaging
the weights over the last few hundred steps (Polyak averaging) smooths that out; the
averaged copy is what is validated, kept as the best and tested.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class WeightAverage:
    """``average ← d·average + (1 − d)·weights`` after every optimiser step.

    ``d`` ramps up as ``min(decay, (1 + t) / (10 + t))`` over the first steps ``t`` so the
    average does not linger on the random initialisation. Only trainable parameters are
    averaged; frozen weights are copied at the start. Buffers (an item catalogue's features,
    the interest table) are shared with the model, not copied: the models only ever replace
    a buffer (re-clustering assigns a new table), never write into one.
    """

    def __init__(self, model: nn.Module, decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"train.ema_decay must be in (0, 1) to average weights, got {decay}")
        self.decay = decay
        self.steps = 0
        self.model = copy.deepcopy(model, memo={id(b): b for b in model.buffers()})
        self.model.requires_grad_(False)
        pairs = [(avg, p) for avg, p in zip(self.model.parameters(), model.parameters())
                 if p.requires_grad]
        self._average = [a for a, _ in pairs]
        self._weights = [p for _, p in pairs]

    @torch.no_grad()
    def update(self) -> None:
        self.steps += 1
        d = min(self.decay, (1 + self.steps) / (10 + self.steps))
        for avg, w in zip(self._average, self._weights):
            avg.lerp_(w, 1.0 - d)

    def current(self, epoch: int) -> nn.Module:
        """The averaged model, ready to evaluate or save: its per-epoch hook has run on its
        own weights (MISSRec re-clusters its interests from the averaged adapters)."""
        self.model.on_epoch_start(epoch)
        return self.model


def weight_average(model: nn.Module, decay: float) -> WeightAverage | None:
    """The average of ``model``'s weights with ``decay``; None when ``decay`` is 0 (off)."""
    return WeightAverage(model, decay) if decay else None
