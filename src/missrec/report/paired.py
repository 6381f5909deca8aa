"""Is one model better than another on the same test users? A paired bootstrap over users.

Seed standard deviations (the report's ``± std``) say how much a model moves when it is
retrained; they do not say whether a difference of means would hold on other users. With
one held-out item per user, every metric is a per-user number, so two cells evaluated on the
same test users can be compared user by user: each user's metric is averaged over the cell's
seeds, the differences ``d_u = A_u - B_u`` are resampled with replacement (users are the
sampling unit), and

* the 95% interval is the 2.5th and 97.5th percentile of the resampled mean differences;
* ``p`` is the two-sided paired bootstrap test (Sakai, SIGIR 2006): the share of resampled
  means of the centred differences ``d_u - mean(d)`` at least as far from 0 as ``mean(d)``.

Both answers are about users, not retraining; the seed spread is reported beside them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import MissrecError
from ..eval.metrics import per_user_metric
from .runs import Cell, Stat

DEFAULT_METRICS = ("recall@10", "ndcg@10")
RESAMPLES = 10_000
"""Enough that p and the interval's ends move by well under their last printed digit."""


@dataclass
class PairedResult:
    """A − B on one metric over the test users both cells share."""

    metric: str
    a: Stat
    """The metric over A's seeds (mean ± std of the per-seed means)."""
    b: Stat
    diff: float
    """Mean over users of A_u − B_u (each side averaged over its seeds)."""
    low: float
    high: float
    p: float
    users: int

    def as_dict(self) -> dict[str, float | int | str]:
        return {"metric": self.metric, "a_mean": self.a.mean, "a_std": self.a.std, "a_seeds": self.a.n,
                "b_mean": self.b.mean, "b_std": self.b.std, "b_seeds": self.b.n, "diff": self.diff,
                "ci_low": self.low, "ci_high": self.high, "p": self.p, "users": self.users}


def seed_matrix(cell: Cell) -> tuple[np.ndarray, np.ndarray]:
    """(ranks [seeds, users], targets [users]) of a cell whose seeds share their test users."""
    ranks, targets = [], None
    for run in cell.runs:
        got = run.ranks()
        if got is None:
            raise MissrecError(f"{run.path}: no test_ranks.npy / test_targets.npy to compare users with")
        r, t = got
        if targets is not None and not np.array_equal(t, targets):
            raise MissrecError(f"{run.path}: its test users differ from {cell.runs[0].path}'s (another split?)")
        ranks.append(r)
        targets = t
    return np.vstack(ranks), targets


def paired_comparison(a: Cell, b: Cell, metrics: tuple[str, ...] = DEFAULT_METRICS, resamples: int = RESAMPLES,
                      seed: int = 0) -> list[PairedResult]:
    """Compare cells ``a`` and ``b`` user by user on each of ``metrics`` (see the module doc)."""
    ranks_a, targets_a = seed_matrix(a)
    ranks_b, targets_b = seed_matrix(b)
    if not np.array_equal(targets_a, targets_b):
        raise MissrecError(f"{a.runs[0].path} and {b.runs[0].path} were not evaluated on the same test users "
                           "(different data or split): a paired comparison needs the same users in the same order")
    seeds_a, seeds_b, diffs = [], [], []
    for name in metrics:
        per_a = np.stack([per_user_metric(r, name) for r in ranks_a])
        per_b = np.stack([per_user_metric(r, name) for r in ranks_b])
        seeds_a.append(Stat.of(per_a.mean(1).tolist()))
        seeds_b.append(Stat.of(per_b.mean(1).tolist()))
        diffs.append(per_a.mean(0) - per_b.mean(0))
    d = np.stack(diffs)
    means = _resampled_means(d, resamples, np.random.default_rng(seed))
    out = []
    for i, name in enumerate(metrics):
        diff = float(d[i].mean())
        low, high = np.percentile(means[i], [2.5, 97.5])
        p = (np.count_nonzero(np.abs(means[i] - diff) >= abs(diff)) + 1) / (resamples + 1)
        out.append(PairedResult(name, seeds_a[i], seeds_b[i], diff, float(low), float(high), float(p), d.shape[1]))
    return out


def _resampled_means(d: np.ndarray, resamples: int, rng: np.random.Generator, chunk: int = 200) -> np.ndarray:
    """[metrics, resamples]: the mean of each row of ``d`` [metrics, users] over users drawn
    with replacement, the same draw for every metric (drawn in chunks: one gathered block for
    a large test set would take gigabytes)."""
    users = d.shape[1]
    out = []
    for start in range(0, resamples, chunk):
        picks = rng.integers(0, users, size=(min(chunk, resamples - start), users))
        out.append(d[:, picks].mean(-1))
    return np.concatenate(out, axis=1)
