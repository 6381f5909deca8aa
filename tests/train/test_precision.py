"""bf16 autocast: training steps run in bfloat16 and still learn; float32 stays the default."""

from __future__ import annotations

import json
import math

import pytest
from click.testing import CliRunner

from missrec.cli import main
from missrec.data.store import write_store

from support import make_dataset

FAST = ["--set", "epochs=3", "--set", "batch_size=32", "--set", "d=32", "--set", "ffn_dim=32",
        "--set", "patience=5", "--set", "threads=1", "--quiet"]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return write_store(make_dataset(n_users=60, n_items=40), tmp_path_factory.mktemp("p") / "toy")


def losses(store, out, *extra):
    res = CliRunner().invoke(main, ["train", "--model", "missrec", "--data", str(store), "--out", str(out),
                                    *FAST, *extra])
    assert res.exit_code == 0, res.output
    return [json.loads(line)["loss_si"] for line in (out / "history.jsonl").read_text().splitlines()]


def test_bf16_steps_learn_like_fp32_but_are_not_fp32(tmp_path, store):
    full = losses(store, tmp_path / "fp32")
    half = losses(store, tmp_path / "bf16", "--set", "precision=bf16")
    assert all(math.isfinite(x) for x in half)
    assert half != full  # the forward pass really ran in bfloat16
    assert half[-1] < half[0]  # and it still learns
    assert all(abs(h - f) < 0.05 * f for h, f in zip(half, full))


def test_an_unknown_precision_is_one_line(tmp_path, store):
    res = CliRunner().invoke(main, ["train", "--model", "missrec", "--data", str(store),
                                    "--out", str(tmp_path / "x"), "--set", "precision=fp8"])
    assert res.exit_code == 1
    assert res.output.strip().splitlines()[-1].startswith("error: train.precision='fp8'")
