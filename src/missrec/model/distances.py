"""Blocked squared Euclidean distances, shared by the exact and approximate clustering paths."""

from __future__ import annotations

from collections.abc import Iterator

import torch


def sq_dist(a: torch.Tensor, b: torch.Tensor, a_sq: torch.Tensor, b_sq: torch.Tensor) -> torch.Tensor:
    """Squared Euclidean distances of a block, via ``|a|² + |b|² - 2ab`` (one matmul)."""
    d = torch.addmm(a_sq[:, None] + b_sq[None, :], a, b.t(), alpha=-2.0)
    return d.clamp_min_(0.0)


def row_blocks(n: int, size: int) -> Iterator[tuple[int, int]]:
    """``(start, stop)`` of consecutive blocks of at most ``size`` rows."""
    for start in range(0, n, size):
        yield start, min(start + size, n)


def knn_rows(x: torch.Tensor, rows: torch.Tensor, k: int, chunk_size: int = 1024,
             col_chunk_size: int = 16384) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact k nearest neighbours of ``x[rows]`` among all other rows of ``x``.

    Returns (squared distances [R, k] ascending, indexes [R, k]); ``k`` at most N - 1. A
    token is never its own neighbour (an exact duplicate of it is). Memory: one
    ``chunk_size x col_chunk_size`` block plus the running top-k.
    """
    n = x.shape[0]
    sq = (x * x).sum(1)
    out_d = x.new_empty(len(rows), k)
    out_i = torch.empty(len(rows), k, dtype=torch.long, device=x.device)
    if k <= 0:
        return out_d, out_i
    for r0, r1 in row_blocks(len(rows), chunk_size):
        block = rows[r0:r1]
        best_d = x.new_full((r1 - r0, k), float("inf"))
        best_i = torch.zeros(r1 - r0, k, dtype=torch.long, device=x.device)
        for c0, c1 in row_blocks(n, col_chunk_size):
            d = sq_dist(x[block], x[c0:c1], sq[block], sq[c0:c1])
            cols = torch.arange(c0, c1, device=x.device)
            d.masked_fill_(block[:, None] == cols[None, :], float("inf"))
            cand_d = torch.cat([best_d, d], dim=1)
            cand_i = torch.cat([best_i, cols.expand(r1 - r0, -1)], dim=1)
            best_d, pos = torch.topk(cand_d, k, dim=1, largest=False, sorted=True)
            best_i = cand_i.gather(1, pos)
        out_d[r0:r1], out_i[r0:r1] = best_d, best_i
    return out_d, out_i
