"""Typed configuration: YAML, --set overrides and clear errors."""

from __future__ import annotations

import pytest

from missrec.config import TrainConfig, load_sections
from missrec.errors import ConfigError
from missrec.model.sasrec import SASRecConfig

SECTIONS = {"train": TrainConfig, "model": SASRecConfig}


def test_precedence_and_types(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("train:\n  lr: 0.003\n  epochs: 7\nmodel:\n  hidden: 32\n")
    out = load_sections(SECTIONS, f, ["epochs=3", "model.n_layers=1", "ks=5,20", "mask_history=true"],
                        base={"model": {"hidden": 16, "dropout": 0.1}})
    t, m = out["train"], out["model"]
    assert (t.lr, t.epochs, t.ks, t.mask_history) == (0.003, 3, [5, 20], True)
    assert (m.hidden, m.n_layers, m.dropout) == (32, 1, 0.1)
    assert load_sections(SECTIONS, None, ["ks=[10, 11]"])["train"].ks == [10, 11]


@pytest.mark.parametrize("override, message", [
    (["nope=1"], "unknown key"),
    (["epochs=abc"], "train.epochs: expected int"),
    (["epochs=1.5"], "expected int"),
    (["mask_history=maybe"], "expected true/false"),
    (["foo.epochs=1"], "unknown section"),
    (["epochs"], "expected key=value"),
    (["lr=[1"], "train.lr: expected float"),
])
def test_override_errors(override, message):
    with pytest.raises(ConfigError, match=message):
        load_sections(SECTIONS, None, override)


def test_yaml_errors(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("train:\n  lr: [1,\n")
    with pytest.raises(ConfigError, match=r"c.yaml:\d+: invalid YAML"):
        load_sections(SECTIONS, f)
    f.write_text("optim:\n  lr: 1\n")
    with pytest.raises(ConfigError, match="unknown section 'optim'"):
        load_sections(SECTIONS, f)
    f.write_text("train:\n  learning_rate: 1\n")
    with pytest.raises(ConfigError, match="unknown key"):
        load_sections(SECTIONS, f)
