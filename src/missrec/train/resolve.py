"""Resolve a run's (train, model) configuration from its sources."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import yaml

from ..config import TrainConfig, load_sections, to_dict
from ..data.store import read_schema
from ..errors import ConfigError
from ..model.registry import get_model_spec
from ..presets import default_preset, read_preset
from .pretrained import read_pretrained

PRETRAIN_DEFAULTS = {"heldout_share": 0.05}
"""Training settings pre-training starts from (over the model's): a held-out share of each
domain's users early-stops it (:class:`missrec.train.pretrain.PretrainTrainer`)."""


def resolve_configs(model: str, config_file: Path | None, sets: tuple[str, ...], preset: str | None = None,
                    init_from: Path | None = None, store: Path | None = None, pretraining: bool = False):
    """(train config, model config) from, lowest first: the dataclass defaults, the model's
    training defaults (``presets/defaults/<model>.yaml``), the checkpoint's architecture
    (``init_from``) or a preset (``presets/<model>/<preset>.yaml``), the YAML ``config_file``,
    and ``--set`` overrides.

    Training from scratch with no preset named uses the model's ``default`` preset, where it
    has one (MISSRec: the configuration validation picks). Pre-training (``pretraining``)
    does not: a fine-tuning preset's clustering ratio is not one for a pre-training corpus.

    With ``init_from`` (a checkpoint, run directory or bundle) the model's architecture comes
    from the pre-trained model, so only what the user overrides (mode, modalities, ...)
    differs. With ``store``, a model whose modalities nobody chose reads those of its
    (or the pre-trained model's) modalities the store has (:func:`fit_modalities`): a
    text-only store fine-tunes a text + image model on text.
    """
    spec = get_model_spec(model)
    if preset is None and init_from is None and not pretraining:
        preset = default_preset(model)
    sections = {"train": TrainConfig, "model": spec.config_cls}
    base: dict = {"train": {**(PRETRAIN_DEFAULTS if pretraining else {}), **spec.train_defaults}}
    if init_from is not None:
        pre = read_pretrained(init_from)
        if pre.model != model:
            raise ConfigError(f"{init_from} holds a {pre.model!r} model, not {model!r}")
        base["model"] = dict(pre.model_config)
    preset_chose = False
    if preset:
        # a preset is a config file, read as --config reads one, over the model's training
        # defaults; it replaces a checkpoint's architecture
        own = read_preset(model, preset)
        resolved = load_sections(sections, None, [], {"train": {**base["train"], **own["train"]},
                                                      "model": own["model"]})
        base = {name: to_dict(cfg) for name, cfg in resolved.items()}
        preset_chose = "modalities" in own["model"]
    resolved = load_sections(sections, config_file, list(sets), base)
    model_cfg = resolved["model"]
    chosen = preset_chose or _names_modalities(config_file, sets)
    if store is not None and not chosen:
        model_cfg = fit_modalities(model_cfg, store)
    return resolved["train"], model_cfg


def _names_modalities(config_file: Path | None, sets: tuple[str, ...]) -> bool:
    """Whether the user chose the modalities (in ``--config`` or ``--set``)."""
    if any(s.split("=", 1)[0].strip() in ("modalities", "model.modalities") for s in sets):
        return True
    if config_file is None:
        return False
    loaded = yaml.safe_load(Path(config_file).read_text()) or {}  # load_sections has checked it
    return "modalities" in (loaded.get("model") or {})


def fit_modalities(model_cfg, store: Path):
    """The model's default modalities narrowed to those the store has feature matrices for,
    so a text-only catalogue trains without flags. Nothing changes when the store has them
    all, or none of them (the build then names what is missing)."""
    wanted = list(getattr(model_cfg, "modalities", None) or [])
    have = [m for m in wanted if m in read_schema(store)["modalities"]]
    if not have or have == wanted:
        return model_cfg
    return dataclasses.replace(model_cfg, modalities=have)
