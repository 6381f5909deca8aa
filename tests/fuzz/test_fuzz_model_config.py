"""Every field of every model configuration, set to random values with ``--set``.

Two properties (issue 16): through the CLI (training stubbed, as in
``test_fuzz_config``) a value either resolves to a configuration that passes its own
validation or ends in one ``error:`` line naming ``model.<field>``; and a small value that
resolves gives a model that builds and computes a finite training loss, so a range check
missing from a config's ``validate()`` shows up here instead of as a traceback mid-run.
"""

from __future__ import annotations

import dataclasses
import math
import typing

import numpy as np
import pytest
import torch

pytest.importorskip("hypothesis")
from hypothesis import event, given, strategies as st  # noqa: E402

from _fuzzkit import assert_clean_failure  # noqa: E402
from missrec.data.batching import build_examples, collate  # noqa: E402
from missrec.errors import ConfigError, MissrecError  # noqa: E402
from missrec.model.registry import ItemFeatures, get_model_spec  # noqa: E402
from missrec.seed import seed_everything  # noqa: E402
from missrec.train.resolve import resolve_configs  # noqa: E402
from support import make_dataset  # noqa: E402
from test_fuzz_config import MODEL_NAMES, TRICKY, _check_resolved, _outcome, store  # noqa: E402,F401

SMALL = {"sasrec": ("hidden=8", "inner=16", "n_layers=1", "max_len=8"),
         "sasrec-text": ("hidden=8", "inner=16", "n_layers=1", "max_len=8"),
         "unisrec": ("hidden=8", "inner=16", "n_layers=1", "max_len=8", "n_experts=2"),
         "missrec": ("d=8", "ffn_dim=16", "max_len=8")}
"""Small architectures the build property starts from (one field is then drawn over them)."""


def _model_fields() -> list[tuple[str, str]]:
    return [(m, f.name) for m in MODEL_NAMES for f in dataclasses.fields(get_model_spec(m).config_cls)]


def _choices(model: str, name: str) -> list[str]:
    """The allowed values of a ``Literal`` field (empty for other fields)."""
    tp = typing.get_type_hints(get_model_spec(model).config_cls)[name]
    return [str(v) for v in typing.get_args(tp)] if typing.get_origin(tp) is typing.Literal else []


SMALL_VALUES = st.one_of(st.integers(-2, 6).map(str), st.floats(-1, 3, allow_nan=False).map(repr),
                         st.sampled_from(["0", "1", "0.5", "1e-9", "true", "false", "[text]", "[image]",
                                          "[text, image]", "[]", "[text, text]"]))


@st.composite
def model_settings(draw, values):
    model, name = draw(st.sampled_from(_model_fields()))
    choices = _choices(model, name)
    value = draw(st.one_of(values, st.sampled_from(choices)) if choices else values)
    return model, name, value


ANY_VALUES = st.one_of(SMALL_VALUES, st.sampled_from(TRICKY), st.integers(-2**70, 2**70).map(str),
                       st.floats().map(repr), st.text(max_size=8))


@given(case=model_settings(ANY_VALUES))
def test_every_model_field_resolves_or_names_itself(store, case) -> None:  # noqa: F811
    model, name, value = case
    code, err, reached = _outcome(store, model, "--set", f"model.{name}={value}")
    event("resolved" if reached is not None else "error")
    if reached is not None:
        _check_resolved(reached)
    else:
        assert_clean_failure(code, err, [f"model.{name}"])


@pytest.fixture(scope="module")
def toy():
    # every item has both modalities: a target with none of the used ones cannot be scored
    # (its score is -inf, so the loss is too), whatever the configuration
    ds = make_dataset(n_users=12, n_items=15, min_len=3, max_len=8, seed=3, dim=8, image_coverage=1.0)
    return ds, ItemFeatures(ds.n_items, ds.features)


@given(case=model_settings(SMALL_VALUES))
def test_a_resolved_model_setting_builds_and_trains(toy, case) -> None:
    model, name, value = case
    ds, catalogue = toy
    try:
        _, cfg = resolve_configs(model, None, (*SMALL[model], f"model.{name}={value}"))
    except ConfigError as e:
        event("error")
        assert f"model.{name}" in str(e) and "\n" not in str(e), str(e)
        return
    event("resolved")
    examples = build_examples(ds, "train", max_len=cfg.max_len)  # histories cut as a run cuts them
    batch = collate(examples, np.arange(16))
    seed_everything(0)
    try:
        net = get_model_spec(model).build(cfg, catalogue)
    except MissrecError as e:  # a modality the store lacks is only known once the store is read
        assert name == "modalities" and "features" in str(e), str(e)
        return
    net.train()
    net.on_epoch_start(0)
    loss, _ = net.training_loss(batch)
    assert math.isfinite(loss.item()), f"model.{name}={value}: loss {loss.item()}"
    loss.backward()
    net.eval()
    with torch.no_grad():
        assert net.score_all(batch, net.item_cache()).shape[0] == len(batch)
