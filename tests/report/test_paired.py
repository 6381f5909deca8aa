"""``missrec compare``: the paired bootstrap over test users, against closed-form oracles."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from missrec.cli import main
from missrec.errors import MissrecError
from missrec.eval.metrics import metrics_from_ranks, per_user_metric
from missrec.report import find_runs, group_cells
from missrec.report.paired import paired_comparison


def run_dir(path: Path, model: str, seed: int, ranks: np.ndarray, targets: np.ndarray) -> Path:
    """The parts of a `missrec train` run folder a comparison reads."""
    path.mkdir(parents=True)
    results = {"model": model, "seed": seed, "dataset": {"name": "toy", "fingerprint": "fp"},
               "config": {"model": {}, "train": {"seed": seed}},
               "test": metrics_from_ranks(ranks, [10])}
    (path / "results.json").write_text(json.dumps(results))
    np.save(path / "test_ranks.npy", ranks)
    np.save(path / "test_targets.npy", targets)
    return path


def cell(path: Path):
    (c,) = group_cells(find_runs([path]))
    return c


@pytest.fixture
def pair(tmp_path):
    """Two models on 4,000 shared users: A places the target a little higher, on average (by
    about one of the comparison's standard errors, so p is neither 0 nor 1)."""
    rng = np.random.default_rng(7)
    users = 4000
    targets = rng.integers(1, 500, users)
    for seed in (1, 2):
        run_dir(tmp_path / "a" / f"seed-{seed}", "missrec", seed, rng.geometric(0.062, users) - 1, targets)
        run_dir(tmp_path / "b" / f"seed-{seed}", "sasrec", seed, rng.geometric(0.06, users) - 1, targets)
    return tmp_path / "a", tmp_path / "b"


def test_difference_is_the_difference_of_the_seed_averaged_means(pair):
    a, b = cell(pair[0]), cell(pair[1])
    (r,) = paired_comparison(a, b, ("ndcg@10",), resamples=500)
    means = {side: np.mean([run.test["ndcg@10"] for run in c.runs]) for side, c in (("a", a), ("b", b))}
    assert r.diff == pytest.approx(means["a"] - means["b"], abs=1e-12)
    assert r.a.mean == pytest.approx(means["a"]) and r.a.n == 2 and r.users == 4000
    assert r.low < r.diff < r.high


def test_interval_and_p_agree_with_the_normal_approximation(pair):
    """With thousands of users the bootstrap mean is close to normal: the paired t interval
    and p-value, computed in closed form, are an independent oracle."""
    a, b = cell(pair[0]), cell(pair[1])
    for r in paired_comparison(a, b, ("recall@10", "ndcg@10", "mrr@10"), resamples=20_000, seed=3):
        per = [np.mean([per_user_metric(run.ranks()[0], r.metric) for run in c.runs], axis=0) for c in (a, b)]
        d = per[0] - per[1]
        se = d.std(ddof=1) / math.sqrt(len(d))
        assert r.low == pytest.approx(d.mean() - 1.96 * se, abs=0.15 * se)
        assert r.high == pytest.approx(d.mean() + 1.96 * se, abs=0.15 * se)
        p_normal = math.erfc(abs(d.mean()) / se / math.sqrt(2))
        assert 0.05 < p_normal < 0.5 and r.p == pytest.approx(p_normal, abs=0.02 + 0.2 * p_normal)


def test_identical_models_are_not_different_and_a_clear_winner_is(tmp_path):
    rng = np.random.default_rng(0)
    targets = rng.integers(1, 100, 2000)
    ranks = rng.integers(0, 60, 2000)
    run_dir(tmp_path / "same1", "sasrec", 1, ranks, targets)
    run_dir(tmp_path / "same2", "missrec", 1, ranks, targets)
    run_dir(tmp_path / "best", "unisrec", 1, ranks // 4, targets)
    (tie,) = paired_comparison(cell(tmp_path / "same1"), cell(tmp_path / "same2"), ("recall@10",), resamples=300)
    assert tie.diff == 0 and tie.p == 1.0
    (win,) = paired_comparison(cell(tmp_path / "best"), cell(tmp_path / "same1"), ("recall@10",), resamples=300)
    assert win.diff > 0.2 and win.low > 0 and win.p == pytest.approx(1 / 301)


def test_other_users_are_refused(tmp_path):
    run_dir(tmp_path / "a", "sasrec", 1, np.arange(10), np.arange(1, 11))
    run_dir(tmp_path / "b", "missrec", 1, np.arange(10), np.arange(2, 12))
    with pytest.raises(MissrecError, match="same test users"):
        paired_comparison(cell(tmp_path / "a"), cell(tmp_path / "b"))


def test_cli_prints_the_table_and_json_and_refuses_bad_input(pair, tmp_path):
    runner = CliRunner()
    out = runner.invoke(main, ["compare", str(pair[0]), str(pair[1]), "--resamples", "200"])
    assert out.exit_code == 0, out.output
    assert "4000 test users" in out.output and "A - B" in out.output
    assert [line.split()[0] for line in out.output.splitlines()[-2:]] == ["recall@10", "ndcg@10"]
    js = runner.invoke(main, ["compare", str(pair[0]), str(pair[1]), "--resamples", "200", "--json",
                              "--metric", "mrr@10"])
    (row,) = json.loads(js.output)
    assert row["metric"] == "mrr@10" and row["a_seeds"] == 2 and row["ci_low"] < row["diff"] < row["ci_high"]
    both = runner.invoke(main, ["compare", str(tmp_path), str(pair[1])])
    assert both.exit_code == 1 and "2 settings" in both.output and "Traceback" not in both.output
    bad = runner.invoke(main, ["compare", str(pair[0]), str(pair[1]), "--metric", "ndcg10"])
    assert bad.exit_code == 1 and "ndcg@10" in bad.output
