"""Named settings as data: YAML files with the sections of a run's config file.

* ``<model>/<name>.yaml``: the presets of a model (``--preset NAME``). A preset file is a
  config file like any other (``train:`` and ``model:`` sections): ``--preset released``
  reads it as ``--config`` would, as the base that ``--config`` and ``--set`` override.
* ``defaults/<model>.yaml``: training settings that suit a model better than
  :class:`missrec.config.TrainConfig`'s defaults (the base every model starts from).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError

ROOT = Path(__file__).parent
SECTIONS = ("train", "model")


def preset_names(model: str) -> list[str]:
    """The presets of ``model`` (none for a model without a presets folder)."""
    folder = ROOT / model
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def preset_path(model: str, name: str) -> Path:
    """The file of preset ``name`` of ``model``; a ConfigError names the known ones."""
    names = preset_names(model)
    if not names:
        raise ConfigError(f"model {model!r} has no presets")
    if name not in names:
        raise ConfigError(f"unknown preset {name!r} for model {model!r}; expected one of {names}")
    return ROOT / model / f"{name}.yaml"


def read_sections(path: Path) -> dict[str, dict[str, Any]]:
    """A preset or defaults file's sections (each a mapping, possibly empty)."""
    data = yaml.safe_load(path.read_text()) or {}
    unknown = set(data) - set(SECTIONS)
    if unknown:
        raise ConfigError(f"{path}: unknown section(s) {sorted(unknown)}; expected {list(SECTIONS)}")
    return {s: dict(data.get(s) or {}) for s in SECTIONS}


def read_preset(model: str, name: str) -> dict[str, dict[str, Any]]:
    """Preset ``name`` of ``model`` as ``{"train": {...}, "model": {...}}``."""
    return read_sections(preset_path(model, name))


def train_defaults(model: str) -> dict[str, Any]:
    """``model``'s own training defaults (``defaults/<model>.yaml``; empty when it has none)."""
    path = ROOT / "defaults" / f"{model}.yaml"
    return read_sections(path)["train"] if path.exists() else {}
