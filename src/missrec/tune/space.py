"""A declared search space: which config fields a study varies, and over what.

A space is a YAML mapping (``presets/search/<model>.yaml``, or a file of the user's) of
config keys, written as ``--set`` takes them, to what a trial may set them to::

    train.lr:        {type: float, low: 1.0e-4, high: 1.0e-2, log: true}
    model.dropout:   {type: float, low: 0.1, high: 0.6, also: [model.attn_dropout]}
    train.batch_size: {type: categorical, choices: [128, 256, 512]}

``also`` names fields that take the same value (one dimension, several fields). A trial's
values become ``--set`` overrides on top of the model's defaults, its preset and the
study's fixed overrides, so a space can name only fields those resolve.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import yaml

from ..config import has_field, override_target, set_value, TrainConfig
from ..errors import ConfigError
from ..model.registry import get_model_spec
from ..presets import search_space_path
from ..train.resolve import resolve_configs

ParamType = Literal["float", "int", "categorical"]
Scalar = bool | int | float | str
_FIELDS = {"float": {"type", "low", "high", "log", "also"}, "int": {"type", "low", "high", "log", "also"},
           "categorical": {"type", "choices", "also"}}


@dataclass(frozen=True)
class Param:
    """One dimension of a search space."""

    key: str
    """The config field, as ``--set`` takes it (``train.lr``, ``model.tau``, ``lr``)."""
    type: ParamType
    low: float | int | None = None
    """Lower bound (float and int), inclusive."""
    high: float | int | None = None
    """Upper bound (float and int), inclusive."""
    log: bool = False
    """Sample on a log scale (float and int; bounds > 0)."""
    choices: tuple[Scalar, ...] = ()
    """The values a categorical dimension takes."""
    also: tuple[str, ...] = ()
    """Other config fields set to the same value."""

    def suggest(self, trial: Any) -> Scalar:
        """This dimension's value for an Optuna ``trial`` (named by :attr:`key`)."""
        if self.type == "categorical":
            return trial.suggest_categorical(self.key, list(self.choices))
        if self.type == "int":
            return trial.suggest_int(self.key, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(self.key, float(self.low), float(self.high), log=self.log)

    def extremes(self) -> list[Scalar]:
        """The values that bound what a trial may set: both bounds, or every choice."""
        return list(self.choices) if self.type == "categorical" else [self.low, self.high]

    def contains(self, value: Any) -> bool:
        """Whether ``value`` is a point of this dimension."""
        if self.type == "categorical":
            return value in self.choices
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        return self.low <= value <= self.high and (self.type == "float" or float(value).is_integer())

    def overrides(self, value: Scalar) -> list[str]:
        """``--set`` items that give this dimension ``value``."""
        text = set_value(value)
        return [f"{key}={text}" for key in (self.key, *self.also)]


@dataclass(frozen=True)
class SearchSpace:
    """The dimensions a study varies, and where they were declared."""

    params: tuple[Param, ...]
    source: str
    """The file it was read from (error messages name it)."""

    @property
    def keys(self) -> list[str]:
        return [p.key for p in self.params]

    def suggest(self, trial: Any) -> dict[str, Scalar]:
        """Every dimension's value for an Optuna ``trial``, by key."""
        return {p.key: p.suggest(trial) for p in self.params}

    def overrides(self, values: dict[str, Scalar]) -> list[str]:
        """``--set`` items for a trial's ``values`` (a key missing from them is left alone)."""
        return [item for p in self.params if p.key in values for item in p.overrides(values[p.key])]

    def identity(self) -> str:
        """The dimensions as canonical JSON: two spaces search the same way when these agree."""
        return json.dumps([dataclasses.asdict(p) for p in self.params], sort_keys=True)

    @classmethod
    def from_identity(cls, identity: str, source: str) -> "SearchSpace":
        """The space :meth:`identity` wrote (lists back to tuples)."""
        return cls(tuple(Param(**{k: tuple(v) if isinstance(v, list) else v for k, v in p.items()})
                         for p in json.loads(identity)), source)


def default_values(space: SearchSpace, model: str, preset: str | None = None,
                   sets: tuple[str, ...] = ()) -> dict[str, Scalar] | None:
    """Each dimension's value in ``model``'s default (with ``preset`` and ``sets``), or None
    when the default is not a point of the space (a value outside a range or the choices,
    or ``also`` fields that differ from their dimension's)."""
    train_cfg, model_cfg = resolve_configs(model, None, sets, preset)
    configs = {"train": train_cfg, "model": model_cfg}
    values: dict[str, Scalar] = {}
    for p in space.params:
        found = []
        for key in (p.key, *p.also):
            sec, name = section_of(key, model)
            value: Any = configs[sec]
            for part in name.split("."):
                value = getattr(value, part)
            found.append(value)
        if not p.contains(found[0]) or any(v != found[0] for v in found[1:]):
            return None
        values[p.key] = found[0]
    return values


def load_space(model: str, path: str | Path | None = None) -> SearchSpace:
    """``model``'s declared space, or the one in the file ``path``; errors name the file and key."""
    path = Path(path) if path is not None else search_space_path(model)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"--space {path}: cannot be read ({getattr(e, 'strerror', None) or e})") from None
    except yaml.YAMLError:
        raise ConfigError(f"{path}: invalid YAML") from None
    if not isinstance(data, dict) or not data:
        raise ConfigError(f"{path}: expected a mapping of config keys to ranges, e.g. "
                          "'train.lr: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}'")
    return SearchSpace(tuple(parse_param(str(k), v, path) for k, v in data.items()), str(path))


def parse_param(key: str, spec: Any, path: Path) -> Param:
    """One entry of a space file, its form checked (not yet against a model)."""
    where = f"{path}: {key}"
    if not isinstance(spec, dict) or spec.get("type") not in get_args(ParamType):
        raise ConfigError(f"{where}: expected a mapping with 'type' one of {', '.join(get_args(ParamType))}")
    kind = spec["type"]
    unknown = sorted(set(map(str, spec)) - _FIELDS[kind])
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {unknown} for type {kind}; expected some of "
                          f"{sorted(_FIELDS[kind])}")
    also = spec.get("also") or []
    if not isinstance(also, list) or not all(isinstance(a, str) for a in also):
        raise ConfigError(f"{where}: 'also' must be a list of config keys")
    if kind == "categorical":
        choices = spec.get("choices")
        if (not isinstance(choices, list) or not choices or len(set(map(repr, choices))) != len(choices)
                or not all(isinstance(c, Scalar) for c in choices)):
            raise ConfigError(f"{where}: 'choices' must be a list of distinct numbers, strings or booleans")
        return Param(key, kind, choices=tuple(choices), also=tuple(also))
    return Param(key, kind, *_bounds(spec, kind, where), log=_flag(spec.get("log", False), f"{where}: 'log'"),
                 also=tuple(also))


def _bounds(spec: dict, kind: str, where: str) -> tuple[float | int, float | int]:
    number = int if kind == "int" else (int, float)
    low, high = spec.get("low"), spec.get("high")
    for name, v in (("low", low), ("high", high)):
        if isinstance(v, bool) or not isinstance(v, number):
            raise ConfigError(f"{where}: '{name}' must be {'an integer' if kind == 'int' else 'a number'}, got {v!r}")
    if not low < high:
        raise ConfigError(f"{where}: 'low' ({low}) must be below 'high' ({high})")
    if spec.get("log") and low <= 0:
        raise ConfigError(f"{where}: a log scale needs 'low' > 0, got {low}")
    return (low, high) if kind == "int" else (float(low), float(high))


def _flag(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{where} must be true or false, got {value!r}")
    return value


def check_space(space: SearchSpace, model: str, preset: str | None = None, sets: tuple[str, ...] = ()) -> None:
    """Raise a ConfigError naming the space file and key when ``model`` has no such field,
    a key repeats or is also fixed by ``sets``, or a bound or choice is a value the field
    does not take (each is resolved with the model's defaults, ``preset`` and ``sets``)."""
    sections = {"train": TrainConfig, "model": get_model_spec(model).config_cls}
    fixed = {override_target(k, sections) for k in (s.split("=", 1)[0].strip() for s in sets)}
    seen: dict[tuple[str, str], str] = {}
    for p in space.params:
        for key in (p.key, *p.also):
            target = _field_of(key, sections, model, f"{space.source}: {p.key}")
            if target in seen:
                raise ConfigError(f"{space.source}: {key} sets {'.'.join(target)}, which {seen[target]} sets too")
            if target in fixed:
                raise ConfigError(f"--set {'.'.join(target)}: the search space {space.source} varies it; "
                                  "drop it from --set or from the space")
            seen[target] = p.key
        for value in p.extremes():
            try:
                resolve_configs(model, None, (*sets, *p.overrides(value)), preset)
            except ConfigError as e:
                raise ConfigError(f"{space.source}: {p.key}={set_value(value)}: {e}") from None


def _field_of(key: str, sections: dict[str, type], model: str, where: str) -> tuple[str, str]:
    """(section, field) of a space key that ``model``'s configs have; a ConfigError otherwise."""
    try:
        sec, name = override_target(key, sections)
    except ConfigError:
        sec, name = "", key
    if not sec or not has_field(sections[sec], name):
        raise ConfigError(f"{where}: model {model!r} has no config key {key!r}")
    return sec, name


def section_of(key: str, model: str) -> tuple[str, str]:
    """The (section, field) a checked space key sets (``lr`` -> ``("train", "lr")``)."""
    return override_target(key, {"train": TrainConfig, "model": get_model_spec(model).config_cls})
