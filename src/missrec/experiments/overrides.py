"""A cell's ``--set`` list: experiment defaults, the cell's own, the user's, the seed."""

from __future__ import annotations

import dataclasses

from ..config import SPEED_ONLY_TRAIN_KEYS, TrainConfig, parse_overrides
from ..errors import MissrecError
from ..model.registry import get_model_spec
from .spec import CellSpec, Experiment


def override_field(item: str) -> str:
    """The config field a ``key=value`` override sets (``train.threads=1`` -> ``threads``)."""
    return item.split("=", 1)[0].rsplit(".", 1)[-1]


def effective(sets: list[str]) -> list[str]:
    """Overrides that change what a run computes (speed settings such as threads dropped)."""
    return [s for s in sets if override_field(s) not in SPEED_ONLY_TRAIN_KEYS]


def _sections(cell: CellSpec) -> dict[str, type]:
    return model_sections(cell.model if cell.has_model else None)


def model_sections(model: str | None) -> dict[str, type]:
    """The config sections a run of ``model`` has (``None``: a run without a model config)."""
    if model is None:
        return {"train": TrainConfig}
    return {"train": TrainConfig, "model": get_model_spec(model).config_cls}


def applying(sets: list[str], sections: dict[str, type]) -> list[str]:
    """The ``key=value`` overrides of ``sets`` whose key is a field of one of ``sections``."""
    return [s for s in sets if _applies(s.split("=", 1)[0].strip(), sections)]


def _applies(key: str, sections: dict[str, type]) -> bool:
    if "." in key:
        sec, name = key.split(".", 1)
        return sec in sections and name in {f.name for f in dataclasses.fields(sections[sec])}
    return any(key in {f.name for f in dataclasses.fields(cls)} for cls in sections.values())


def cell_overrides(exp: Experiment, cell: CellSpec, user_sets: list[str], seed: int) -> list[str]:
    """The cell's ``--set`` list: experiment defaults < cell < user (those that apply) < seed.

    A user key ``pretrain.K=V`` applies to pre-training cells only (as ``K=V``); ``finetune.K=V``
    to training cells only; other keys apply to every cell whose configs have that field.
    """
    sections = _sections(cell)
    out = applying(list(exp.defaults), sections)
    out += list(cell.sets)
    for key, value in parse_overrides(user_sets).items():
        scope, _, rest = key.partition(".")
        if scope in ("pretrain", "finetune"):
            if (scope == "pretrain") != (cell.kind == "pretrain"):
                continue
            key = rest
        if _applies(key, sections):
            out.append(f"{key}={value}")
    out.append(f"train.seed={seed}")
    # one entry per key, the last one winning, so the list reads as the effective overrides
    last: dict[str, str] = {}
    for item in out:
        k, _, v = item.partition("=")
        last.pop(k, None)
        last[k] = v
    return [f"{k}={v}" for k, v in last.items()]


def check_user_sets(exp: Experiment, user_sets: list[str]) -> None:
    """Every user override must apply to at least one cell (catches typos)."""
    for key in parse_overrides(user_sets):
        scope, _, rest = key.partition(".")
        k = rest if scope in ("pretrain", "finetune") else key
        if not any(_applies(k, _sections(c)) for c in exp.cells):
            raise MissrecError(f"--set {key}: no cell of experiment {exp.name!r} has a config field {k!r}")
