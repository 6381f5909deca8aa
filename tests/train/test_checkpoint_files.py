"""Checkpoints load without running code from the file; a damaged, altered or foreign file
is a one-line error naming it; an older pickled checkpoint converts once."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from support import make_dataset

from missrec.cli import main
from missrec.config import TrainConfig
from missrec.data.batching import build_examples, collate
from missrec.data.store import read_store, write_store
from missrec.errors import MissrecError
from missrec.model.sasrec import SASRecConfig
from missrec.train.checkpoint import convert_trusted, load_model, read_checkpoint
from missrec.train.loop import train


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("ckpt")
    store = write_store(make_dataset(n_users=30, n_items=25), root / "store")
    cfg = TrainConfig(epochs=1, batch_size=32, seed=1, threads=1)
    train("sasrec", store, root / "run", cfg, SASRecConfig(hidden=16, inner=32, n_layers=1), log=lambda _: None)
    return store, root / "run" / "model.pt"


def _scores(payload, store):
    model, _ = load_model(payload)
    ex = build_examples(read_store(store, modalities=[]), "test", 50)
    return model.score_all(collate(ex, np.arange(len(ex))))


def _one_line_error(path) -> str:
    with pytest.raises(MissrecError) as err:
        read_checkpoint(path)
    text = str(err.value)
    assert str(path) in text and "\n" not in text
    return text


def test_a_checkpoint_holds_only_tensors_and_plain_data(run):
    _, path = run
    payload = torch.load(path, weights_only=True)  # no pickled objects anywhere
    assert payload["version"] == 2 and len(payload["digest"]) == 64
    assert "digest" not in read_checkpoint(path)


@pytest.mark.parametrize("fraction", [0.0, 0.01, 0.5, 0.99])
def test_a_truncated_file_is_a_one_line_error(run, tmp_path, fraction):
    data = run[1].read_bytes()
    bad = tmp_path / "model.pt"
    bad.write_bytes(data[:int(len(data) * fraction)])
    assert "truncated or corrupted" in _one_line_error(bad)


def test_an_altered_tensor_is_caught_by_the_digest(run, tmp_path):
    store, path = run
    payload = torch.load(path, weights_only=True)
    name = next(k for k, v in payload["state_dict"].items() if torch.is_tensor(v) and v.is_floating_point())
    payload["state_dict"][name][0] += 1.0
    bad = tmp_path / "model.pt"
    torch.save(payload, bad)
    assert "do not match the digest" in _one_line_error(bad)
    # and a flipped byte anywhere in the file is an error too, never other weights
    data = bytearray(path.read_bytes())
    for at in range(len(data) // 5, len(data) - 100, len(data) // 7):
        flipped = bytearray(data)
        flipped[at] ^= 0x55
        bad.write_bytes(bytes(flipped))
        try:
            payload = read_checkpoint(bad)
        except MissrecError as e:
            assert str(bad) in str(e) and "\n" not in str(e)
        else:  # a byte the loader never reads (zip padding, a name field): the contents are intact
            torch.testing.assert_close(_scores(payload, store), _scores(read_checkpoint(path), store))


class _Payload:
    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickled_code_is_never_run(tmp_path):
    marker = tmp_path / "ran"
    evil = _Payload()
    evil.marker = marker
    path = tmp_path / "model.pt"
    torch.save({"format": "missrec-checkpoint", "state_dict": evil}, path)
    assert "pickled Python objects" in _one_line_error(path)
    pickle.dump({"format": "missrec-checkpoint", "x": evil}, path.open("wb"))
    _one_line_error(path)
    assert not marker.exists()


@pytest.mark.parametrize("content", [b"", b"hello\n", os.urandom(300)])
def test_a_foreign_file_is_a_one_line_error(tmp_path, content):
    path = tmp_path / "model.pt"
    path.write_bytes(content)
    _one_line_error(path)


def test_another_torch_file_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save({"weight": torch.zeros(3)}, path)
    assert "not a missrec checkpoint" in _one_line_error(path)
    torch.save({"format": "missrec-checkpoint", "model": "sasrec"}, path)
    assert "lacks" in _one_line_error(path)


def test_an_older_pickled_checkpoint_converts_once(run, tmp_path):
    store, path = run
    payload = read_checkpoint(path)
    legacy = dict(payload, version=1, best={"ndcg@10": np.float64(0.5)},
                  catalogue={m: {k: v.numpy() if torch.is_tensor(v) else v for k, v in d.items()}
                             for m, d in payload["catalogue"].items()})
    old = tmp_path / "old.pt"
    torch.save(legacy, old)
    assert "convert_trusted" in _one_line_error(old)
    convert_trusted(old)
    converted = read_checkpoint(old)
    assert converted["best"] == {"ndcg@10": 0.5}
    torch.testing.assert_close(_scores(converted, store), _scores(payload, store), rtol=0, atol=0)


def test_a_checkpoint_without_a_digest_still_loads(run, tmp_path):
    store, path = run
    payload = torch.load(path, weights_only=True)
    del payload["digest"]
    old = tmp_path / "v1.pt"
    torch.save(dict(payload, version=1), old)
    torch.testing.assert_close(_scores(read_checkpoint(old), store), _scores(read_checkpoint(path), store))


def test_the_cli_prints_one_line_for_a_broken_checkpoint(run, tmp_path):
    store, path = run
    bad = tmp_path / "model.pt"
    bad.write_bytes(path.read_bytes()[:1000])
    res = CliRunner().invoke(main, ["evaluate", str(bad), "--data", str(store)])
    assert res.exit_code == 1
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {bad}")
