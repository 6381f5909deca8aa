"""Pre-training data at scale: compact examples give the batches copied histories give."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from support import make_dataset

from missrec.cli import main
from missrec.data.batching import build_examples, iterate_batches
from missrec.data.compact import UserSequences, compact_examples, concat_compact
from missrec.data.corpus import CorpusShape, paper_corpus


@pytest.mark.parametrize("split,max_len", [("train", 50), ("train", 3), ("valid", 5), ("test", 50)])
def test_compact_examples_are_the_copied_examples(split, max_len):
    ds = make_dataset(n_users=25, min_len=3, max_len=14)
    full = build_examples(ds, split, max_len)
    compact = compact_examples(UserSequences.of(ds), split, max_len)
    assert len(compact) == len(full)
    np.testing.assert_array_equal(compact.lengths, full.lengths)
    np.testing.assert_array_equal(compact.targets, full.targets)
    np.testing.assert_array_equal(compact.users, full.users)
    for i in (0, len(full) // 2, len(full) - 1):
        np.testing.assert_array_equal(compact.history(i), full.history(i))


def test_compact_batches_equal_copied_batches_shuffled_and_sharded():
    ds = make_dataset(n_users=40, max_len=20)
    full = build_examples(ds, "train", 8)
    compact = compact_examples(UserSequences.of(ds), "train", 8)
    for shard in (None, (1, 2)):
        a = list(iterate_batches(full, 16, shuffle=True, generator=np.random.default_rng(4), bucket=True, shard=shard))
        b = list(iterate_batches(compact, 16, shuffle=True, generator=np.random.default_rng(4), bucket=True,
                                 shard=shard))
        assert len(a) == len(b) > 3
        for x, y in zip(a, b):
            for field in ("items", "lengths", "targets", "users"):
                assert torch.equal(getattr(x, field), getattr(y, field))


def test_concatenated_domains_keep_each_domains_histories():
    one, two = make_dataset(n_users=10, seed=1), make_dataset(n_users=12, seed=2)
    a = compact_examples(UserSequences.of(one), "train", 50)
    b = compact_examples(UserSequences.of(two), "train", 50).shifted(one.n_items)
    both = concat_compact([a.subset(np.arange(0, len(a), 2)), b])
    ref_a, ref_b = build_examples(one, "train", 50), build_examples(two, "train", 50)
    assert len(both) == len(range(0, len(a), 2)) + len(b)
    np.testing.assert_array_equal(both.history(1), ref_a.history(2))
    np.testing.assert_array_equal(both.history(len(both) - 1), ref_b.history(len(ref_b) - 1) + one.n_items)
    np.testing.assert_array_equal(both.targets[-len(b):], ref_b.targets + one.n_items)
    assert both.items.dtype == np.int32 and both.items.nbytes == 4 * (len(one.interactions) + len(two.interactions))


def test_generated_corpus_has_the_asked_shape_and_leave_one_out_splits():
    shape = CorpusShape(users=300, items=120, dim=8, groups=6)
    ds = paper_corpus(shape, seed=3)
    seqs = UserSequences.of(ds)
    lengths = np.diff(seqs.user_start)[1:]
    assert ds.n_users == 300 and ds.n_items == 120 and lengths.min() >= shape.min_len
    assert 7 < lengths.mean() < 14  # near the paper corpus's 10.3
    for u in (1, 150, 300):
        split = seqs.splits[seqs.user_start[u]:seqs.user_start[u + 1]]
        assert list(split[-2:]) == [1, 2] and not split[:-2].any()
    assert ds.features["text"].matrix.shape == (121, 8) and ds.features["text"].present[1:].all()
    assert 0.7 < ds.features["image"].coverage < 1.0 and not ds.features["image"].present[0]
    # items of one group sit closer to each other than to the rest: structure to find
    text = ds.features["text"].matrix
    assert np.linalg.norm(text[1] - text[2]) < np.linalg.norm(text[1] - text[-1])


def test_cli_writes_a_corpus_that_bench_pretrain_reports_on(tmp_path):
    runner = CliRunner()
    res = runner.invoke(main, ["data", "synthetic", str(tmp_path / "c"), "--users", "200", "--items", "80",
                               "--dim", "8", "--groups", "4"], catch_exceptions=False)
    assert res.exit_code == 0 and "200" in res.output
    res = runner.invoke(main, ["bench", "pretrain", "--data", str(tmp_path / "c"), "--json", "--max-per-domain", "64",
                               "--set", "d=16", "--set", "ffn_dim=32", "--set", "batch_size=32",
                               "--set", "threads=1"], catch_exceptions=False)
    out = json.loads(res.output)
    assert out["train_sequences"] == 64 and out["sequences_per_second"] > 0
    assert out["cluster_seconds_per_epoch"] > 0 and out["peak_memory_mb"] > 0 and out["threads"] == 1
