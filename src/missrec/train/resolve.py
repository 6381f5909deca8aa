"""Resolve a run's (train, model) configuration from its sources."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ..config import TrainConfig, load_sections
from ..errors import ConfigError
from ..model.registry import get_model_spec


def resolve_configs(model: str, config_file: Path | None, sets: tuple[str, ...], preset: str | None = None,
                    init_from: Path | None = None):
    """(train config, model config) from defaults < preset or checkpoint < YAML < --set.

    With ``init_from`` the model's architecture comes from the pre-trained checkpoint, so
    only what the user overrides (mode, modalities, ...) differs.
    """
    spec = get_model_spec(model)
    base: dict = {"train": dict(spec.train_defaults)}
    if init_from is not None:
        from .checkpoint import read_checkpoint

        payload = read_checkpoint(init_from)
        if payload["model"] != model:
            raise ConfigError(f"{init_from} holds a {payload['model']!r} model, not {model!r}")
        base["model"] = dict(payload["model_config"])
    if preset:
        maker = getattr(spec.config_cls, "preset", None)
        if maker is None:
            raise ConfigError(f"model {model!r} has no presets")
        cfg = maker(preset)
        base["model"] = dataclasses.asdict(cfg) if dataclasses.is_dataclass(cfg) else dict(cfg)
        train_maker = getattr(spec.config_cls, "preset_train", None)
        if train_maker is not None:
            base["train"].update(train_maker(preset))
    sections = load_sections({"train": TrainConfig, "model": spec.config_cls}, config_file, list(sets), base)
    return sections["train"], sections["model"]
