"""In-batch negatives from every data-parallel process (``train.gather_negatives``).

Pre-training's contrastive terms (eqs. 5-6) score each sequence against the other
sequences and targets of its batch. Under data-parallel training each process holds only
its share of the global batch; :class:`RowGather` hands a loss every process's rows, so
the negatives are those of the whole global batch, as in a one-process run.

The gather is differentiable: its backward pass sums, over processes, the gradient that
every process's loss sends into each row and returns each process the part for its own
rows. With DDP averaging the parameter gradients, a step is then the step one process
takes on the combined batch (shares of equal size; :func:`~missrec.data.batching.iterate_batches`
splits a global batch as evenly as it can).
"""

from __future__ import annotations

import torch
import torch.distributed as dist

from .distributed import DistContext


class _Gather(torch.autograd.Function):
    """All processes' ``x`` [n_r, ...] concatenated in rank order; shares may differ by size."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, sizes: list[int], rank: int, group) -> torch.Tensor:  # type: ignore[override]
        width = max(sizes)
        padded = x.new_zeros((width, *x.shape[1:]))
        padded[:len(x)] = x
        parts = [torch.empty_like(padded) for _ in sizes]
        dist.all_gather(parts, padded.contiguous(), group=group)
        ctx.sizes, ctx.rank, ctx.group = sizes, rank, group
        return torch.cat([p[:n] for p, n in zip(parts, sizes)])

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        sizes = ctx.sizes
        width = max(sizes)
        padded = grad.new_zeros((len(sizes) * width, *grad.shape[1:]))
        start = 0
        for r, n in enumerate(sizes):
            padded[r * width:r * width + n] = grad[start:start + n]
            start += n
        dist.all_reduce(padded, group=ctx.group)
        own = padded[ctx.rank * width:ctx.rank * width + sizes[ctx.rank]]
        return own, None, None, None


class RowGather:
    """``gather(x)`` -> (every process's rows of ``x`` in rank order, where this process's
    rows start). Runs on a process group of its own, so its collectives never interleave
    with DDP's gradient all-reduce. Every process must call it with the same sequence of
    tensors (same trailing shapes and dtypes)."""

    def __init__(self, ctx: DistContext):
        self.ctx = ctx
        self.group = dist.new_group()

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, int]:
        sizes = self._sizes(len(x))
        start = sum(sizes[:self.ctx.rank])
        if x.dtype == torch.bool:  # gathered as bytes: not every backend reduces bools
            return _Gather.apply(x.to(torch.uint8), sizes, self.ctx.rank, self.group).bool(), start
        if not x.is_floating_point():
            return _Gather.apply(x, sizes, self.ctx.rank, self.group).detach(), start
        return _Gather.apply(x, sizes, self.ctx.rank, self.group), start

    def _sizes(self, n: int) -> list[int]:
        mine = torch.tensor([n], dtype=torch.int64)
        if dist.get_backend(self.group) == "nccl":
            mine = mine.cuda()
        out = [torch.zeros_like(mine) for _ in range(self.ctx.world)]
        dist.all_gather(out, mine, group=self.group)
        return [int(t) for t in out]
