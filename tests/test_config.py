"""Typed configuration: YAML, --set overrides and clear errors."""

from __future__ import annotations

import dataclasses
import typing

import pytest
import yaml

from missrec.config import TrainConfig, from_dict, load_sections
from missrec.errors import ConfigError
from missrec.model.interests import CLUSTERING_METHODS, KMEANS_INITS
from missrec.model.missrec import MISSRecConfig
from missrec.model.registry import MODELS
from missrec.model.sasrec import SASRecConfig
from missrec.presets import preset_path, read_preset, read_sections
from missrec.train.resolve import resolve_configs

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


# ----------------------------------------------------------------------------- presets

# The official code's settings (the released preset), written out literally: the
# preset file must resolve to exactly these values.
RELEASED = dict(
    tau=0.07, gamma=1e-4, lambda_ss=1e-3, n_heads=4, dropout=0.5, attn_dropout=0.5,
    n_enc_layers=1, n_dec_layers=1, clustering="kmeans", n_clusters="50%",
    kmeans_init="random", kmeans_iters=1, alpha_init=0.0,
    official=dict(arrangement="released", tokens="added", positions="start", item_attention="full",
                  id_scoring="late", attn_init="xavier", ffn_dropout=0.5, stack_norm=True,
                  adapter_init="torch", reg_form="released", alpha_param="free"),
)
# The same settings as configs saved them before the official code's choices were one
# component (flat fields; counts as ratios): such a config still loads to the same model.
RELEASED_FLAT = {**{k: v for k, v in RELEASED.items() if k != "official"}, **RELEASED["official"],
                 "n_clusters": 0.5, "knn_k": 5.0}


def test_every_preset_file_loads_as_a_config_file(tmp_path):
    found = 0
    for name, spec in MODELS.items():
        sections = {"train": TrainConfig, "model": spec.config_cls}
        for preset in spec.presets:
            found += 1
            by_name = resolve_configs(name, None, (), preset)
            # a preset with a base is its base's sections, then its own (the file minus `base:`)
            merged = read_preset(name, preset)
            as_file = tmp_path / f"{name}-{preset}.yaml"
            as_file.write_text(yaml.safe_dump(merged))
            loaded = load_sections(sections, as_file, [], {"train": spec.train_defaults})
            assert by_name == (loaded["train"], loaded["model"])
            if "base" not in yaml.safe_load(preset_path(name, preset).read_text()):
                assert merged == read_sections(preset_path(name, preset))
    assert found == 6
    assert MODELS["missrec"].presets == ["default", "inductive", "new-items", "paper", "released", "released-pretrain"]


def test_no_preset_is_the_default_preset_and_paper_is_section_4_2_4():
    assert resolve_configs("missrec", None, ()) == resolve_configs("missrec", None, (), "default")
    train, model = resolve_configs("missrec", None, (), "default")
    _, released = resolve_configs("missrec", None, (), "released")
    base = dataclasses.asdict(released)
    assert dataclasses.asdict(model) == {**base, "official": {**base["official"], "reg_form": "paper"},
                                         "adapter_dropout": 0.2, "modality_dropout": 0.3,
                                         "mode": "transductive", "id_item_dropout": 0.3}
    assert (train.batch_size, train.bucket_by_length, train.ema_decay) == (512, True, 0.99)
    # §4.2.4: batch 2048, K_e = K_d = 1 with 2 heads, lambda = 1, gamma = 0.1, tau = 0.075, 300-d,
    # a learnable concentration alpha; the rest is MISSRecConfig's defaults
    train, paper = resolve_configs("missrec", None, (), "paper")
    assert paper == MISSRecConfig() and train.batch_size == 2048
    assert (paper.n_enc_layers, paper.n_dec_layers, paper.n_heads, paper.lambda_ss, paper.gamma, paper.tau,
            paper.d, paper.variant.alpha_param, paper.variant.arrangement) == (1, 1, 2, 1.0, 0.1, 0.075, 300,
                                                                             "softplus", "paper")
    assert paper.official is None
    # pre-training with no preset keeps the paper's model (a fine-tuning cluster ratio is not for a corpus)
    assert resolve_configs("missrec", None, (), pretraining=True)[1] == MISSRecConfig()
    # models without a default preset keep their config's defaults
    assert resolve_configs("sasrec", None, ())[1] == SASRecConfig()


def test_a_preset_base_loop_is_one_line(tmp_path, monkeypatch):
    import missrec.presets as presets
    (tmp_path / "missrec").mkdir()
    (tmp_path / "missrec" / "a.yaml").write_text("base: b\n")
    (tmp_path / "missrec" / "b.yaml").write_text("base: a\n")
    monkeypatch.setattr(presets, "ROOT", tmp_path)
    with pytest.raises(ConfigError, match="'base' loops through a -> b -> a"):
        presets.read_preset("missrec", "a")


def test_released_preset_resolves_to_the_official_settings():
    train, model = resolve_configs("missrec", None, (), "released")
    assert dataclasses.asdict(model) == {**dataclasses.asdict(MISSRecConfig()), **RELEASED}
    assert dataclasses.asdict(train) == {**dataclasses.asdict(TrainConfig()), "batch_size": 512,
                                         "bucket_by_length": False}
    _, pre = resolve_configs("missrec", None, (), "released-pretrain")
    assert dataclasses.asdict(pre) == {**dataclasses.asdict(model), "n_clusters": "2%", "item_drop": 0.2}
    # --config and --set still override a preset, in today's names and in the flat ones of before
    for sets in (("tau=0.1", "official.reg_form=paper"), ("tau=0.1", "model.official.reg_form=paper"),
                 ("tau=0.1", "reg_form=paper")):
        _, tuned = resolve_configs("missrec", None, sets, "released")
        assert (tuned.tau, tuned.variant.reg_form, tuned.variant.tokens) == (0.1, "paper", "added")


def test_configs_saved_in_the_flat_layout_load_to_the_same_model():
    _, released = resolve_configs("missrec", None, (), "released")
    assert from_dict(MISSRecConfig, {**dataclasses.asdict(MISSRecConfig()), **RELEASED_FLAT}, "model") == released
    flat_paper = {**{k: v for k, v in dataclasses.asdict(MISSRecConfig()).items() if k != "official"},
                  "arrangement": "paper", "tokens": "separate", "reg_form": "paper", "n_clusters": 0.5}
    assert from_dict(MISSRecConfig, flat_paper, "model") == MISSRecConfig()
    # one departure on top of the paper's model, flat or named as a field of official
    for sets in (("tokens=added",), ("official.tokens=added",)):
        _, one = resolve_configs("missrec", None, sets, "paper")
        assert one.variant.tokens == "added" and one.variant.arrangement == "paper"
    # counts: a ratio below 1 is a share, a whole number a count; anything else is one line
    assert MISSRecConfig(n_clusters=0.3, knn_k=4).n_clusters == "30%"
    assert (MISSRecConfig(n_clusters=300).cluster_spec, MISSRecConfig(knn_k="10%").knn_spec) == (300, 0.1)
    for bad in ("150%", "0%", "2.5", "many"):
        with pytest.raises(ConfigError, match=r"model.n_clusters=.*expected a share of the tokens"):
            resolve_configs("missrec", None, (f"n_clusters={bad}",))


def test_each_training_default_has_one_home():
    assert TrainConfig().batch_size == 2048
    assert resolve_configs("missrec", None, ())[0].batch_size == 512
    assert resolve_configs("sasrec", None, ())[0].batch_size == 256
    assert resolve_configs("unisrec", None, ())[0].batch_size == 2048
    assert resolve_configs("missrec", None, ("batch_size=64",))[0].batch_size == 64


def test_preset_errors_are_one_line():
    with pytest.raises(ConfigError, match="unknown preset 'nope'.*'released'"):
        resolve_configs("missrec", None, (), "nope")
    with pytest.raises(ConfigError, match="model 'sasrec' has no presets"):
        resolve_configs("sasrec", None, (), "released")


def test_model_choices_are_checked_where_the_config_is_built():
    with pytest.raises(ConfigError, match=r"model.official.tokens='mixed'; expected one of \['added', 'separate'\]"):
        resolve_configs("missrec", None, ("tokens=mixed",))
    hints = typing.get_type_hints(MISSRecConfig)
    assert typing.get_args(hints["clustering"]) == CLUSTERING_METHODS
    assert typing.get_args(hints["kmeans_init"]) == KMEANS_INITS


def test_removed_options_load_at_their_former_value_only(tmp_path):
    assert len(dataclasses.fields(MISSRecConfig)) == 38
    saved = {"dpc_scale_by_dim": False, "alpha_learnable": True, "cluster_seed": 0, "tau": 0.1}
    assert from_dict(MISSRecConfig, saved, "model") == MISSRecConfig(tau=0.1)
    f = tmp_path / "c.yaml"
    f.write_text("model:\n  cluster_seed: 0\n  alpha_learnable: 'true'\n")
    sections = {"train": TrainConfig, "model": MISSRecConfig}
    assert load_sections(sections, f, base={"model": saved})["model"] == MISSRecConfig(tau=0.1)
    f.write_text("model:\n  cluster_seed: 3\n")
    with pytest.raises(ConfigError, match=r"model.cluster_seed=3: this option was removed"):
        load_sections(sections, f)
    with pytest.raises(ConfigError, match="dpc_scale_by_dim"):
        from_dict(MISSRecConfig, {"dpc_scale_by_dim": True}, "model")


def test_the_inductive_preset_is_the_default_without_ids_and_new_items_adds_moe_adapters():
    default_train, default_model = resolve_configs("missrec", None, ())
    train, inductive = resolve_configs("missrec", None, (), "inductive")
    assert default_model.mode == "transductive" and inductive.mode == "inductive"
    assert train == default_train
    assert dataclasses.replace(inductive, mode="transductive", id_item_dropout=0.3) == default_model
    train, model = resolve_configs("missrec", None, (), "new-items")
    assert model.adapter == "moe" and inductive.adapter == "linear"
    assert train == default_train and dataclasses.replace(model, adapter="linear") == inductive
