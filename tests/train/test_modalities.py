"""MISSRec trains on the modalities a store has, and on targets it cannot represent."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
from click.testing import CliRunner

from missrec.cli import main
from missrec.data.store import write_store

from support import make_dataset

FAST = ["--set", "epochs=1", "--set", "batch_size=64", "--set", "d=16", "--set", "ffn_dim=16", "--quiet"]


@pytest.fixture(scope="module")
def text_only_store(tmp_path_factory):
    ds = make_dataset(n_users=40, n_items=30)
    ds = dataclasses.replace(ds, features={"text": ds.features["text"]})
    return write_store(ds, tmp_path_factory.mktemp("t") / "text-only")


@pytest.fixture(scope="module")
def partial_image_store(tmp_path_factory):
    return write_store(make_dataset(n_users=40, n_items=30, image_coverage=0.5), tmp_path_factory.mktemp("p") / "mm")


def train(store, out, *extra):
    return CliRunner().invoke(main, ["train", "--model", "missrec", "--data", str(store), "--out", str(out),
                                     *FAST, *extra])


def test_a_text_only_store_trains_without_flags_and_says_so(tmp_path, text_only_store):
    res = CliRunner().invoke(main, ["train", "--model", "missrec", "--data", str(text_only_store),
                                    "--out", str(tmp_path / "run"), *FAST[:-1]])
    assert res.exit_code == 0, res.output
    assert "modalities text" in res.output
    config = json.loads((tmp_path / "run" / "results.json").read_text())["config"]["model"]
    assert config["modalities"] == ["text"]


def test_modalities_the_user_names_are_not_narrowed(tmp_path, text_only_store):
    res = train(text_only_store, tmp_path / "run", "--set", "modalities=text,image")
    assert res.exit_code == 1
    assert "image" in res.output and "Traceback" not in res.output


def test_targets_without_the_models_modality_leave_the_loss_finite(tmp_path, partial_image_store):
    res = train(partial_image_store, tmp_path / "run", "--set", "modalities=image")
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in (tmp_path / "run" / "history.jsonl").read_text().splitlines()]
    assert rows and all(math.isfinite(r["loss_si"]) for r in rows)
