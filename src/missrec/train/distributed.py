"""Data-parallel training over several processes (``torchrun``), gradients synchronised by DDP.

Launch any training command under ``torchrun``::

    torchrun --nproc-per-node 4 -m missrec train --model missrec --data STORE --out RUN --set device=cuda
    torchrun --nproc-per-node 2 -m missrec pretrain --data A --data B --out PRE   # CPU: gloo

Every process draws the same shuffled batch order (one seed) and takes its share of each
global batch (rows ``rank::world``), so ``batch_size`` stays the global batch and a run
optimises what a one-process run with that batch optimises. The loss goes through a
:class:`~torch.nn.parallel.DistributedDataParallel` wrapper, so every backward pass
all-reduces the gradients (the released MISSRec code unwraps its DDP model before training,
so its replicas drift apart silently). Per-epoch work such as interest clustering runs on
every process from identical weights; evaluation, early-stopping decisions, logging and
writing happen on rank 0, which broadcasts its decisions so that all processes stop together.

One difference from a one-process run remains by design: losses that contrast a batch's
sequences with each other (pre-training's sequence-sequence term, eq. 7) see each process's
share of the batch as the set of negatives, as in-batch contrast under DDP usually does,
unless ``train.gather_negatives`` draws them from every process (:mod:`missrec.train.gather`).
The fine-tuning loss (eq. 8) contrasts every sequence with the whole catalogue, so it is
unaffected; a test checks that two processes reach the weights one process reaches.
"""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class DistContext:
    """Where this process stands in a data-parallel run (rank 0 of 1 when not distributed)."""

    rank: int = 0
    world: int = 1
    joined: bool = False
    """Whether :func:`init_from_env` started the process group (and :func:`leave` ends it)."""

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def shard(self) -> tuple[int, int] | None:
        """(rank, world) for :func:`~missrec.data.batching.iterate_batches`, or None."""
        return (self.rank, self.world) if self.enabled else None


def init_from_env(device: torch.device) -> tuple[DistContext, torch.device]:
    """Join the process group that ``torchrun`` describes in the environment, if any.

    CUDA processes use NCCL and one GPU each (``LOCAL_RANK``); CPU processes use gloo.
    Without ``WORLD_SIZE`` > 1 this does nothing and returns rank 0 of 1.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext(), device
    rank = int(os.environ.get("RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", rank)))
        torch.cuda.set_device(device)
    joined = not dist.is_initialized()
    if joined:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return DistContext(rank, world, joined), device


def leave(ctx: DistContext) -> None:
    """End a data-parallel run: wait until every process is done, then close the process
    group if :func:`init_from_env` opened it (a caller's own group stays open).

    Closing while a peer still works (rank 0 evaluates and writes after the last epoch), or
    leaving it to interpreter shutdown, can abort a process from inside gloo's worker
    threads; the caller drops its DDP wrapper first, since the wrapper holds the group too.
    """
    if not ctx.enabled or not dist.is_initialized():
        return
    dist.barrier()
    if ctx.joined:
        gc.collect()  # DDP's reducer sits in reference cycles: free it while the group lives
        dist.destroy_process_group()


class LossModule(nn.Module):
    """Routes a model's loss method (``training_loss``, ``pretrain_loss``) through ``forward``,
    so that a DDP wrapper sees the call and synchronises the backward pass."""

    def __init__(self, model: nn.Module, method: str, gather: Callable | None = None):
        super().__init__()
        self.model = model
        self.method = method
        self.gather = gather

    def forward(self, batch: Any) -> Any:
        if self.gather is not None:
            return getattr(self.model, self.method)(batch, gather=self.gather)
        return getattr(self.model, self.method)(batch)


def loss_function(model: nn.Module, method: str, ctx: DistContext, device: torch.device,
                  gather: Callable | None = None) -> nn.Module:
    """The callable a training epoch calls per batch: the model's ``method``, DDP-wrapped if distributed.

    ``find_unused_parameters``: a batch may leave some parameters out of the loss (e.g. the
    adapter of a modality no item in the batch has), which DDP must be told about.
    ``gather`` (:class:`~missrec.train.gather.RowGather`) is passed to ``method``: in-batch
    negatives from every process.
    """
    module = LossModule(model, method, gather)
    if not ctx.enabled:
        return module
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(module, device_ids=ids, find_unused_parameters=True)


def start_data_parallel(ctx: DistContext, seed: int, batch_size: int, log: Callable[[str], None]) -> None:
    """Called once the model is built: say so, and give each process its own dropout stream
    (the initial weights, drawn before, are the same everywhere)."""
    if ctx.enabled:
        log(f"data-parallel: {ctx.world} processes, {batch_size} sequences per global batch")
        torch.manual_seed(seed + 7919 * ctx.rank)


def epoch_start(model: nn.Module, epoch: int, ctx: DistContext) -> dict[str, float]:
    """The model's per-epoch hook (MISSRec: interest clustering, §3.3.1) and its figures.

    Distributed, a model whose hook leaves extra state (the clustering) runs it on rank 0
    only and every other process takes rank 0's state: the clustering is computed once and
    all processes hold the same one, even where the clustering backend is not bit-wise
    deterministic across processes (approximate neighbour search, thread counts).
    """
    if not ctx.enabled or type(model).get_extra_state is nn.Module.get_extra_state:
        return model.on_epoch_start(epoch)
    payload: list[Any] = [model.on_epoch_start(epoch), model.get_extra_state()] if ctx.main else [None, None]
    dist.broadcast_object_list(payload, src=0)
    if not ctx.main:
        model.set_extra_state(payload[1])
    return payload[0]


def broadcast_flags(ctx: DistContext, *flags: bool) -> tuple[bool, ...]:
    """Rank 0's ``flags`` on every process (each process passes its own; only rank 0's count)."""
    if not ctx.enabled:
        return flags
    t = torch.tensor([1 if f else 0 for f in flags], dtype=torch.int64)
    if dist.get_backend() == "nccl":
        t = t.cuda()
    dist.broadcast(t, src=0)
    return tuple(bool(v) for v in t.tolist())


def gather_objects(ctx: DistContext, obj: Any) -> list[Any]:
    """Every process's ``obj``, in rank order, on every process (a collective call)."""
    if not ctx.enabled:
        return [obj]
    out: list[Any] = [None] * ctx.world
    dist.all_gather_object(out, obj)
    return out


__all__ = ["DistContext", "LossModule", "broadcast_flags", "epoch_start", "gather_objects", "init_from_env",
           "leave", "loss_function", "start_data_parallel"]
