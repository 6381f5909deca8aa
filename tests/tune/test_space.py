"""Search spaces: every model's declared one is valid for it, and a bad one is one line
naming the file and the key."""

from __future__ import annotations

import pytest

from missrec.errors import ConfigError
from missrec.model.registry import MODELS
from missrec.tune.space import Param, check_space, load_space, section_of, set_value


@pytest.mark.parametrize("model", sorted(MODELS))
def test_each_model_declares_a_modest_space_its_configs_take(model):
    space = load_space(model)
    check_space(space, model)
    assert 3 <= len(space.params) <= 6
    lr = next(p for p in space.params if section_of(p.key, model) == ("train", "lr"))
    assert lr.type == "float" and lr.log and lr.low == pytest.approx(1e-4) and lr.high == pytest.approx(1e-2)
    has_tau = model in ("missrec", "unisrec")
    assert any(section_of(p.key, model) == ("model", "tau") for p in space.params) == has_tau


def test_a_value_round_trips_through_set():
    p = Param("model.dropout", "float", 0.1, 0.6, also=("model.attn_dropout",))
    assert p.overrides(0.30000000000000004) == ["model.dropout=0.30000000000000004",
                                                "model.attn_dropout=0.30000000000000004"]
    assert set_value(True) == "true" and set_value(1e-5) == "1e-05" and set_value(256) == "256"


def write(tmp_path, text):
    path = tmp_path / "space.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("text, message", [
    ("lr: {type: float, low: 0.1, high: 0.01}", "lr: 'low' (0.1) must be below 'high' (0.01)"),
    ("lr: {type: float, low: 0, high: 0.01, log: true}", "lr: a log scale needs 'low' > 0"),
    ("lr: {type: uniform, low: 0, high: 1}", "lr: expected a mapping with 'type' one of float, int, categorical"),
    ("lr: {type: float, low: 0.1, high: 1, step: 0.1}", "lr: unknown field(s) ['step'] for type float"),
    ("batch_size: {type: int, low: 1.5, high: 8}", "batch_size: 'low' must be an integer"),
    ("batch_size: {type: categorical, choices: [8, 8]}", "batch_size: 'choices' must be a list of distinct"),
    ("[1, 2]", "expected a mapping of config keys"),
])
def test_a_malformed_space_is_one_line_naming_the_key(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as e:
        load_space("sasrec", path)
    assert message in str(e.value) and str(path) in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("text, sets, message", [
    ("model.tau: {type: float, low: 0.05, high: 0.2}", (), "model 'sasrec' has no config key 'model.tau'"),
    ("lr: {type: float, low: 1.0e-4, high: 1.0e-2}\ndropout: {type: float, low: 0.1, high: 0.6, also: [nope]}", (),
     "model 'sasrec' has no config key 'nope'"),
    ("dropout: {type: float, low: 0.1, high: 1.2}", (), "dropout=1.2: model.dropout=1.2; expected in [0, 1)"),
    ("lr: {type: float, low: 1.0e-4, high: 1.0e-2}", ("train.lr=0.1",), "--set train.lr: the search space"),
    ("lr: {type: float, low: 1.0e-4, high: 1.0e-2}\ntrain.lr: {type: float, low: 0.1, high: 0.2}", (),
     "train.lr sets train.lr, which lr sets too"),
])
def test_a_space_the_model_cannot_take_is_one_line(tmp_path, text, sets, message):
    space = load_space("sasrec", write(tmp_path, text))
    with pytest.raises(ConfigError) as e:
        check_space(space, "sasrec", sets=sets)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_a_model_without_a_space_says_which_have_one(monkeypatch):
    with pytest.raises(ConfigError, match="has no search space; models with one: missrec, sasrec"):
        load_space("nomodel")
