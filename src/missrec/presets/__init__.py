"""Named settings as data: YAML files with the sections of a run's config file.

* ``<model>/<name>.yaml``: the presets of a model (``--preset NAME``). A preset file is a
  config file like any other (``train:`` and ``model:`` sections): ``--preset released``
  reads it as ``--config`` would, as the base that ``--config`` and ``--set`` override.
  ``base: OTHER`` starts a preset from another preset of the model, so a variant states
  only what it changes. ``default.yaml``, where a model has one, is what ``missrec train``
  uses when no preset is named.
* ``defaults/<model>.yaml``: training settings that suit a model better than
  :class:`missrec.config.TrainConfig`'s defaults (the base every model starts from).
* ``search/<model>.yaml``: the hyper-parameters ``missrec tune`` searches for a model, and
  their ranges (read by :mod:`missrec.tune.space`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError

ROOT = Path(__file__).parent
SECTIONS = ("train", "model")
DEFAULT = "default"
"""The preset a model trains with when none is named (if the model has it)."""


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


def _load(path: Path, allowed: tuple[str, ...]) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text()) or {}
    unknown = set(data) - set(allowed)
    if unknown:
        raise ConfigError(f"{path}: unknown section(s) {sorted(unknown)}; expected {list(allowed)}")
    return data


def read_sections(path: Path) -> dict[str, dict[str, Any]]:
    """A preset or defaults file's sections (each a mapping, possibly empty)."""
    data = _load(path, SECTIONS)
    return {s: dict(data.get(s) or {}) for s in SECTIONS}


def read_preset(model: str, name: str, _seen: tuple[str, ...] = ()) -> dict[str, dict[str, Any]]:
    """Preset ``name`` of ``model`` as ``{"train": {...}, "model": {...}}``, on top of its
    ``base`` preset when it names one."""
    if name in _seen:
        raise ConfigError(f"presets of {model!r}: 'base' loops through {' -> '.join([*_seen, name])}")
    path = preset_path(model, name)
    data = _load(path, ("base", *SECTIONS))
    own = {s: dict(data.get(s) or {}) for s in SECTIONS}
    if data.get("base") is None:
        return own
    base = read_preset(model, str(data["base"]), (*_seen, name))
    return {s: {**base[s], **own[s]} for s in SECTIONS}


def default_preset(model: str) -> str | None:
    """The preset ``model`` trains with when none is named, or None (its config's defaults)."""
    return DEFAULT if DEFAULT in preset_names(model) else None


def train_defaults(model: str) -> dict[str, Any]:
    """``model``'s own training defaults (``defaults/<model>.yaml``; empty when it has none)."""
    path = ROOT / "defaults" / f"{model}.yaml"
    return read_sections(path)["train"] if path.exists() else {}


def search_space_path(model: str) -> Path:
    """``model``'s declared search space (``search/<model>.yaml``); a ConfigError when it has none."""
    path = ROOT / "search" / f"{model}.yaml"
    if not path.exists():
        known = sorted(p.stem for p in (ROOT / "search").glob("*.yaml"))
        raise ConfigError(f"model {model!r} has no search space; models with one: {', '.join(known)}")
    return path
