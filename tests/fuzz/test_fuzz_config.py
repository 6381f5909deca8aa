"""``missrec train --config FILE --set KEY=VALUE`` with malformed configurations.

Training itself is replaced by a stub that records the resolved configuration: the property
is about resolution. Every run either reaches training with a configuration whose numbers
are finite and in range, or exits 1 with one ``error:`` line naming the file, the ``--set``
key or the field, before any data is read or any output written.
"""

from __future__ import annotations

import dataclasses
import math
import random
import tempfile
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

import pytest
import yaml
from click.testing import CliRunner

pytest.importorskip("hypothesis")
from hypothesis import event, given, strategies as st  # noqa: E402

from _fuzzkit import TEXT_MUTATIONS, assert_clean_failure, mutate, run, unisrec_source  # noqa: E402
from missrec.cli import main, train as cli_train  # noqa: E402
from missrec.config import TrainConfig  # noqa: E402
from missrec.model.registry import MODELS, get_model_spec  # noqa: E402
from missrec.train import loop  # noqa: E402

TRICKY = ["nan", "NaN", ".nan", "inf", "-inf", ".inf", "1e400", "-1", "0", "-0.0", "1e-400", "99999999999999999999999",
          "2147483648", "1.5", "abc", "", "[1,2", "[]", "[0]", "{a: 1}", "null", "true", "'x'", "- a", "ndcg@0",
          "recall@-1", "mrr", "\t", "1,2,3", "0x10", "1_000"]
MODEL_NAMES = sorted(MODELS)


class _Reached(Exception):
    """Raised by the stub in place of training: resolution succeeded."""

    def __init__(self, train_cfg, model_cfg):
        super().__init__("reached training")
        self.train_cfg, self.model_cfg = train_cfg, model_cfg


def _stub(model, store, out_dir, train_cfg, model_cfg, *args, **kwargs):
    raise _Reached(train_cfg, model_cfg)


@contextmanager
def _training_stubbed():
    with mock.patch.object(loop, "train", _stub):
        if hasattr(cli_train, "train"):  # imported at module level
            with mock.patch.object(cli_train, "train", _stub):
                yield
        else:
            yield


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("cfg")
    code, _, err = run(["data", "import", "--format", "unisrec", str(unisrec_source(base / "src")), str(base / "s")])
    assert code == 0, err
    return base / "s"


def _check_resolved(reached: _Reached) -> None:
    """Resolved configurations hold finite numbers and pass their own validation."""
    for cfg in (reached.train_cfg, reached.model_cfg):
        for f in dataclasses.fields(cfg):
            v = getattr(cfg, f.name)
            for x in v if isinstance(v, list) else [v]:
                if isinstance(x, float):
                    assert math.isfinite(x), f"{f.name}={x!r} reached training"
        if callable(getattr(cfg, "validate", None)):
            cfg.validate()
    assert isinstance(reached.train_cfg, TrainConfig)


def _outcome(store: Path, model: str, *extra: str) -> tuple[int, str, _Reached | None]:
    with tempfile.TemporaryDirectory() as tmp, _training_stubbed():
        out = Path(tmp) / "run"
        res = CliRunner().invoke(main, ["train", "--model", model, "--data", str(store), "--out", str(out), *extra])
        if isinstance(res.exception, _Reached):
            return 0, "", res.exception
        if res.exception is not None and not isinstance(res.exception, SystemExit):
            raise AssertionError(f"traceback for {extra}") from res.exception
        assert not out.exists(), "a configuration error left an output folder"
        return res.exit_code, res.stderr, None


def _fields(model: str) -> list[str]:
    spec = get_model_spec(model)
    return ([f"train.{f.name}" for f in dataclasses.fields(TrainConfig)]
            + [f"model.{f.name}" for f in dataclasses.fields(spec.config_cls)])


@st.composite
def overrides(draw):
    model = draw(st.sampled_from(MODEL_NAMES))
    keys = _fields(model)
    pairs = []
    for _ in range(draw(st.integers(1, 2))):
        key = draw(st.sampled_from(keys + ["train.nope", "nope", "model.", ".x", "a.b.c"]))
        if draw(st.booleans()) and "." in key:
            key = key.split(".", 1)[1]  # the bare form
        value = draw(st.one_of(st.sampled_from(TRICKY), st.text(max_size=12),
                               st.integers(-2**70, 2**70).map(str), st.floats().map(repr),
                               st.integers(1, 8).map(str), st.floats(0.01, 0.9).map(repr)))
        pairs.append(draw(st.sampled_from([f"{key}={value}", f"{key}{value}", f"{key} = {value}"])))
    return model, pairs


@given(case=overrides())
def test_set_values_resolve_or_fail_in_one_line(store, case) -> None:
    model, pairs = case
    args = [a for p in pairs for a in ("--set", p)]
    code, err, reached = _outcome(store, model, *args)
    event("resolved" if reached is not None else "error")
    if reached is not None:
        _check_resolved(reached)
    else:
        line = assert_clean_failure(code, err, ["--set", "train", "model", *[p.split("=")[0].strip() for p in pairs]])
        assert "Traceback" not in line


# ----------------------------------------------------------------------------- YAML files

SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(), st.text(max_size=8),
                    st.sampled_from(TRICKY))


@st.composite
def yaml_documents(draw):
    """Structured documents (sections with known and unknown keys) and raw garbage."""
    model = draw(st.sampled_from(MODEL_NAMES))
    keys = _fields(model)
    kind = draw(st.sampled_from(["structured", "mutated", "random"]))
    doc: dict = {}
    for key in draw(st.lists(st.sampled_from(keys + ["train.zzz", "other.x"]), max_size=4)):
        sec, name = key.split(".", 1)
        value = draw(st.one_of(SCALARS, st.lists(SCALARS, max_size=3), st.dictionaries(st.text(max_size=3), SCALARS,
                                                                                       max_size=2)))
        doc.setdefault(sec, {})[name] = value
    text = yaml.safe_dump(doc).encode()
    if kind == "mutated":
        text = mutate(text, draw(st.sampled_from(TEXT_MUTATIONS)), random.Random(draw(st.integers(0, 2**16))))
    elif kind == "random":
        text = yaml.safe_dump(draw(st.recursive(SCALARS, lambda c: st.one_of(st.lists(c, max_size=3),
                                                                              st.dictionaries(st.text(max_size=5), c,
                                                                                              max_size=3)),
                                                max_leaves=6))).encode()
    return model, text


@given(case=yaml_documents())
def test_yaml_config_resolves_or_fails_in_one_line(store, case) -> None:
    model, text = case
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "run.yaml"
        cfg.write_bytes(text)
        code, err, reached = _outcome(store, model, "--config", str(cfg))
        event("resolved" if reached is not None else "error")
        if reached is not None:
            _check_resolved(reached)
        else:
            assert_clean_failure(code, err, ["run.yaml", "train.", "model."])


@pytest.mark.parametrize("text,words", [
    (b"train:\n  lr: .nan\n", ["train.lr", "finite"]),
    (b"train:\n  epochs: 0\n", ["train.epochs=0", ">= 1"]),
    (b"train:\n  seed: -1\n", ["train.seed=-1"]),
    (b"train:\n  valid_metric: ndcg@x\n", ["train.valid_metric"]),
    (b"train:\n  ks: []\n", ["train.ks"]),
    (b"train: [1, 2]\n", ["run.yaml", "section 'train'"]),
    (b"train:\n  lr: \xff\n", ["run.yaml", "UTF-8"]),
    (b"train:\n\tlr: 1\n", ["run.yaml:2", "invalid YAML"]),
    (b"- 1\n- 2\n", ["run.yaml", "expected a mapping"]),
])
def test_yaml_errors_name_the_field(store, tmp_path, text, words) -> None:
    (tmp_path / "run.yaml").write_bytes(text)
    code, err, reached = _outcome(store, "sasrec", "--config", str(tmp_path / "run.yaml"))
    assert reached is None
    line = assert_clean_failure(code, err, [words[0]])
    assert all(w in line for w in words), line
