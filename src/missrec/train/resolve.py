"""Resolve a run's (train, model) configuration from its sources."""

from __future__ import annotations

from pathlib import Path

from ..config import TrainConfig, load_sections, to_dict
from ..errors import ConfigError
from ..model.registry import get_model_spec
from ..presets import preset_path
from .checkpoint import read_checkpoint


def resolve_configs(model: str, config_file: Path | None, sets: tuple[str, ...], preset: str | None = None,
                    init_from: Path | None = None):
    """(train config, model config) from, lowest first: the dataclass defaults, the model's
    training defaults (``presets/defaults/<model>.yaml``), the checkpoint's architecture
    (``init_from``) or a preset (``presets/<model>/<preset>.yaml``), the YAML ``config_file``,
    and ``--set`` overrides.

    With ``init_from`` the model's architecture comes from the pre-trained checkpoint, so
    only what the user overrides (mode, modalities, ...) differs.
    """
    spec = get_model_spec(model)
    sections = {"train": TrainConfig, "model": spec.config_cls}
    base: dict = {"train": spec.train_defaults}
    if init_from is not None:
        payload = read_checkpoint(init_from)
        if payload["model"] != model:
            raise ConfigError(f"{init_from} holds a {payload['model']!r} model, not {model!r}")
        base["model"] = dict(payload["model_config"])
    if preset:
        # a preset file is a config file, read as --config reads one, over the model's
        # training defaults; it replaces a checkpoint's architecture
        resolved = load_sections(sections, preset_path(model, preset), [], {"train": base["train"]})
        base = {name: to_dict(cfg) for name, cfg in resolved.items()}
    resolved = load_sections(sections, config_file, list(sets), base)
    return resolved["train"], resolved["model"]
