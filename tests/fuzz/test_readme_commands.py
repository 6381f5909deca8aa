"""The README's commands with their documented inputs malformed (issue 16: "no command in
the README can be made to print a Python traceback"): a missing path, a file where a folder
is expected, a folder that is not a store or holds no checkpoint, a store without features
or with another item vocabulary, a wrong ``--model``/``--preset``/``--from``, bad numbers.
Each ends in exit 1 and one ``error:`` line naming what is wrong, and leaves no output.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from _fuzzkit import assert_clean_failure, recbole_source, run, unisrec_source
from missrec.cli import train as cli_train
from missrec.train.checkpoint import read_checkpoint, write_payload


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """``s``: a store with text and image features; ``bare``: a store with none and another
    vocabulary; ``run``: a trained SASRec run on ``s``; ``empty``: a plain folder; ``file``:
    a text file; ``norun``: a run folder without its ``model.pt``."""
    b = tmp_path_factory.mktemp("readme")
    assert run(["data", "import", "--format", "unisrec", str(unisrec_source(b / "src")), str(b / "s")])[0] == 0
    assert run(["data", "import", "--format", "recbole", "--kcore", "0", str(recbole_source(b / "rb")),
                str(b / "bare")])[0] == 0
    code, _, err = run(["train", "--model", "sasrec", "--data", str(b / "s"), "--out", str(b / "run"), "-q",
                        "--set", "epochs=1", "--set", "hidden=8", "--set", "inner=8"])
    assert code == 0, err
    (b / "empty").mkdir()
    (b / "file").write_text("not a checkpoint\n")
    (b / "norun").mkdir()
    shutil.copy(b / "run" / "config.yaml", b / "norun")
    return b


CASES = {
    "import-missing-source": ("data import --format unisrec {b}/nothere {b}/x", ["nothere"]),
    "import-file-as-source": ("data import --format unisrec {b}/file {b}/x", ["file"]),
    "import-unisrec-empty-folder": ("data import --format unisrec {b}/empty {b}/x", ["empty"]),
    "import-recbole-empty-folder": ("data import --format recbole {b}/empty {b}/x", ["empty"]),
    "import-rechorus-empty-folder": ("data import --format rechorus {b}/empty {b}/x", ["empty"]),
    "import-amazon-one-file": ("data import --format amazon {b}/file {b}/x", ["amazon"]),
    "import-onto-a-file": ("data import --format unisrec {b}/src {b}/file", ["file"]),
    "describe-not-a-store": ("data describe {b}/empty", ["empty", "store"]),
    "describe-a-file": ("data describe {b}/file", ["file"]),
    "features-not-a-store": ("features {b}/empty --text minilm", ["empty"]),
    "features-unknown-encoder": ("features {b}/s --text nope", ["nope"]),
    "features-missing-clip-weights": ("features {b}/bare --text clip:{b}/nothere", ["nothere"]),
    "train-unknown-model": ("train --model nope --data {b}/s --out {b}/x", ["--model"]),
    "train-unknown-preset": ("train --model missrec --preset nope --data {b}/s --out {b}/x", ["nope"]),
    "train-preset-of-no-model": ("train --model sasrec --preset paper --data {b}/s --out {b}/x", ["sasrec"]),
    "train-data-not-a-store": ("train --model sasrec --data {b}/empty --out {b}/x", ["empty"]),
    "train-data-a-file": ("train --model sasrec --data {b}/file --out {b}/x", ["--data"]),
    "train-out-a-file": ("train --model sasrec --data {b}/s --out {b}/file", ["--out"]),
    "train-store-without-features": ("train --model missrec --data {b}/bare --out {b}/x", ["bare", "features"]),
    "train-from-not-a-checkpoint": ("train --model missrec --data {b}/s --from {b}/file --out {b}/x", ["file"]),
    "train-from-no-model-pt": ("train --model missrec --data {b}/s --from {b}/norun --out {b}/x", ["norun"]),
    "train-from-another-model": ("train --model missrec --data {b}/s --from {b}/run --out {b}/x", ["sasrec"]),
    "train-threads-beyond-reason": ("train --model sasrec --data {b}/s --out {b}/x --set threads=100000",
                                    ["train.threads"]),
    "train-config-a-folder": ("train --model sasrec --data {b}/s --config {b}/empty --out {b}/x", ["--config"]),
    "evaluate-no-model-pt": ("evaluate {b}/norun --data {b}/s", ["norun"]),
    "evaluate-not-a-checkpoint": ("evaluate {b}/file --data {b}/s", ["file"]),
    # another vocabulary is zero-shot evaluation, which an id model (SASRec) cannot do
    "evaluate-other-vocabulary": ("evaluate {b}/run --data {b}/bare", ["bare", "inductive"]),
    "evaluate-data-not-a-store": ("evaluate {b}/run --data {b}/empty", ["empty"]),
    "evaluate-k-0": ("evaluate {b}/run --data {b}/s --k 0", ["--k"]),
    "recommend-no-model-pt": ("recommend {b}/norun --data {b}/s --users 2 --k 3", ["norun"]),
    "recommend-unknown-item": ("recommend {b}/run --history nope --k 3", ["nope"]),
    "recommend-unknown-user": ("recommend {b}/run --data {b}/s --user U9 --k 3", ["U9"]),
    "pretrain-not-a-store": ("pretrain --data {b}/empty --out {b}/x", ["empty"]),
    "pretrain-store-without-features": ("pretrain --data {b}/bare --out {b}/x", ["features"]),
    "pretrain-negative-max-per-domain": ("pretrain --data {b}/s --out {b}/x --max-per-domain -3",
                                         ["--max-per-domain"]),
    "pretrain-id-only-model": ("pretrain --data {b}/s --out {b}/x --model sasrec", ["sasrec"]),
    "pretrain-unknown-model": ("pretrain --data {b}/s --out {b}/x --model nope", ["nope"]),
    "report-no-runs": ("report {b}/empty --out {b}/x", ["empty"]),
    "experiment-unknown": ("experiment nope --out {b}/x", ["nope"]),
    "experiment-unknown-cell": ("experiment table3 --only nope --out {b}/x", ["nope"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_malformed_input_is_one_line(base, case):
    command, names = CASES[case]
    code, _, err = run(command.format(b=base).split())
    assert_clean_failure(code, err, names)
    assert not (base / "x").exists(), "a failed command left an output behind"


@pytest.mark.parametrize("k", ["0", "-3", "1000", str(2**70)])
def test_recommend_k_out_of_range(base, k):
    """Non-positive or huge ``--k``: the top of the catalogue, or one line naming k."""
    code, out, err = run(["recommend", str(base / "run"), "--history", "B01,B02", "--k", k])
    if code != 0:
        assert_clean_failure(code, err, ["k"])
    else:
        assert int(k) > 0 and out.strip()


def test_running_out_of_memory_is_one_line(base, monkeypatch):
    """A size the machine cannot hold (``--set max_len=1e11``) ends in one line naming the settings."""
    def allocate(*args, **kwargs):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:127] DefaultCPUAllocator: can't allocate memory: "
                           "you tried to allocate 25600000000000 bytes.")
    monkeypatch.setattr(cli_train, "train", allocate)
    code, _, err = run(["train", "--model", "sasrec", "--data", str(base / "s"), "--out", str(base / "x"),
                        "--set", "max_len=100000000000"])
    assert "out of memory" in assert_clean_failure(code, err, ["max_len"])


def test_other_runtime_errors_are_not_hidden(base, monkeypatch):
    """Only memory exhaustion is reported as a user's error: a bug still shows its traceback."""
    def broken(*args, **kwargs):
        raise RuntimeError("shape mismatch")
    monkeypatch.setattr(cli_train, "train", broken)
    with pytest.raises(AssertionError, match="shape mismatch"):
        run(["train", "--model", "sasrec", "--data", str(base / "s"), "--out", str(base / "x")])


def test_a_cuda_out_of_memory_error_is_one_line(base, monkeypatch):
    def allocate(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
    monkeypatch.setattr(cli_train, "train", allocate)
    code, _, err = run(["train", "--model", "sasrec", "--data", str(base / "s"), "--out", str(base / "x")])
    assert "out of memory" in assert_clean_failure(code, err, ["CUDA"])


@pytest.mark.parametrize("device", ["meta", "cuda:7", "mps"])
def test_a_device_this_machine_lacks_is_one_line(base, device):
    if device == "mps" and torch.backends.mps.is_available() or device == "cuda:7" and torch.cuda.device_count() > 7:
        pytest.skip(f"this machine has {device}")
    code, _, err = run(["train", "--model", "sasrec", "--data", str(base / "s"), "--out", str(base / "x"),
                        "--set", f"device={device}", "--set", "epochs=1"])
    assert_clean_failure(code, err, [f"train.device='{device}'"])
    assert not (base / "x").exists()


def test_a_run_trained_on_a_gpu_evaluates_where_there_is_none(base, tmp_path):
    payload = read_checkpoint(base / "run")
    payload["train_config"] = {**payload["train_config"], "device": "cuda:7"}
    write_payload(tmp_path / "model.pt", payload)
    code, out, err = run(["evaluate", str(tmp_path / "model.pt"), "--data", str(base / "s"), "--json"])
    assert code == 0, err
    assert json.loads(out)["ndcg@10"] == json.loads((base / "run" / "results.json").read_text())["test"]["ndcg@10"]
