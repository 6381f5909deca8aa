"""Typed configuration: dataclasses, YAML files and ``--set key=value`` overrides.

A run's configuration has sections (``train``, ``model``); a ``--set`` key is either
dotted (``train.lr=3e-3``) or bare (``lr=3e-3``) when only one section has that field.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
import yaml

from .errors import ConfigError


Precision = Literal["fp32", "bf16"]
TransferScope = Literal["adapters", "all"]
TransferAdapters = Literal["load", "fresh"]
MetricName = Literal["recall", "ndcg", "mrr"]
TiePolicy = Literal["pessimistic", "optimistic", "random"]
METRICS: tuple[str, ...] = typing.get_args(MetricName)
"""Top-K metrics of one held-out item per user (:mod:`missrec.eval.metrics`)."""
TIE_POLICIES: tuple[str, ...] = typing.get_args(TiePolicy)
"""Where a target tied with other items ranks (:class:`TrainConfig` ``ties``)."""


@dataclass
class TrainConfig:
    """How a model is trained and evaluated."""

    epochs: int = 200
    """Upper bound on training epochs (early stopping usually ends sooner)."""
    batch_size: int = 2048
    """Training sequences per step (the paper: 2048). A model's own default, where it has
    one, is in ``presets/defaults/<model>.yaml``; a preset's in its ``train:`` section."""
    lr: float = 1e-3
    """Adam learning rate."""
    weight_decay: float = 0.0
    """Adam weight decay."""
    ema_decay: float = 0.0
    """Validate, keep and test an exponential moving average of the weights with this decay
    per step (0: the raw weights, as the paper and the released code do)."""
    bucket_by_length: bool = True
    """Group training sequences of similar length into a batch (less padding). Off: random
    batches, as RecBole draws them. Both give the same expected gradient per epoch but not
    the same steps, so results differ; MISSRec pads by token count inside a batch anyway,
    so for it the speed gain is small."""
    patience: int = 10
    """Epochs without a better validation score before stopping."""
    valid_metric: str = "ndcg@10"
    """Metric used for model selection on the validation split."""
    seed: int = 2023
    """Seeds python, numpy and torch; the same seed repeats a run."""
    eval_batch_size: int = 1024
    """Users scored at once during full-ranking evaluation."""
    eval_block_size: int = 32768
    """Items scored at once during full-ranking evaluation: memory is one eval_batch_size x
    eval_block_size score matrix (128 MiB at 1024 users), whatever the catalogue. Every
    downstream catalogue of the paper (the largest, Office, has 25,986 items) fits one block,
    so it is ranked from whole score rows. Ranks and metrics do not depend on it."""
    ks: list[int] = field(default_factory=lambda: [10, 50])
    """Cut-offs for recall@K, ndcg@K, mrr@K."""
    mask_history: bool = False
    """Exclude items already in the history from the ranking (off in the paper's protocol)."""
    ties: TiePolicy = "pessimistic"
    """How tied scores rank: 'pessimistic' (target after every tie), 'optimistic' (before
    them) or 'random' (a fixed pseudo-random place among them per user, which matches on
    average an evaluator that sorts with an arbitrary tie order, such as RecBole's topk)."""
    device: str = "cpu"
    """torch device, e.g. 'cpu' or 'cuda'."""
    threads: int = 0
    """torch intra-op threads (0: leave torch's default)."""
    eval_every: int = 1
    """Validate every N epochs."""
    gather_negatives: bool = False
    """Data-parallel pre-training: contrast each sequence with every process's sequences and
    targets (the global batch, as one process would) instead of its own process's share."""
    precision: Precision = "fp32"
    """Training steps' arithmetic: 'bf16' runs the forward pass under bfloat16 autocast
    (faster on CPUs with bfloat16 instructions, docs/scale.md#bfloat16-on-the-cpu, and on
    GPUs with bf16 units; weights, optimiser and evaluation stay float32)."""
    train_fraction: float = 1.0
    """Train on this share of the training users, drawn from ``seed`` (every training example
    of a kept user; validation and test users are all kept). The draw depends only on the
    seed and the store, so a pre-trained and a from-scratch run at the same seed see the same
    users, and a smaller fraction keeps a subset of a larger one's users. Training runs only."""
    transfer_scope: TransferScope = "adapters"
    """With ``--from``: what fine-tuning trains. 'adapters': the paper's parameter-efficient
    set (§3.6: modality adapters, α and the input LayerNorms, plus the item-id table in
    transductive mode), the rest frozen; 'all': every weight, starting from the
    pre-trained ones."""
    transfer_adapters: TransferAdapters = "load"
    """With ``--from``: 'load' starts the modality adapters from the pre-trained ones; 'fresh'
    loads every other pre-trained weight and initialises the adapters anew, for a catalogue
    so unlike the pre-training domains that the pre-trained map from features to tokens is a
    worse start than a random one (docs/transfer.md)."""
    freeze_adapters: bool = False
    """The modality adapters keep the weights they start with (pre-training a sequence side
    over a fixed random projection of the features, which keeps the features' own geometry
    for domains unlike the pre-training ones; docs/transfer.md)."""
    heldout_share: float = 0.0
    """Pre-training: hold out this share of each domain's users and early-stop on the eq. 7
    loss of their sequences, keeping the best epoch (``missrec pretrain`` defaults to 0.05;
    0: every user trains and the last epoch is kept, as before this option existed)."""

    def validate(self) -> None:
        """Raise ConfigError naming the first field outside its range."""
        checks = (
            ("epochs", self.epochs >= 1, ">= 1"), ("batch_size", self.batch_size >= 1, ">= 1"),
            ("eval_batch_size", self.eval_batch_size >= 1, ">= 1"),
            ("eval_block_size", self.eval_block_size >= 1, ">= 1"), ("lr", self.lr > 0, "> 0"),
            ("weight_decay", self.weight_decay >= 0, ">= 0"), ("ema_decay", 0 <= self.ema_decay < 1, "in [0, 1)"),
            ("patience", self.patience >= 0, ">= 0"), ("seed", 0 <= self.seed < 2**32, "in [0, 2**32)"),
            ("threads", 0 <= self.threads <= 1024, "in [0, 1024] (0: torch's default)"),
            ("eval_every", self.eval_every >= 1, ">= 1"),
            ("ks", bool(self.ks) and min(self.ks) >= 1, "one or more cut-offs >= 1"),
            ("ties", self.ties in TIE_POLICIES, f"one of {', '.join(TIE_POLICIES)}"),
            ("precision", self.precision in typing.get_args(Precision),
             f"one of {', '.join(typing.get_args(Precision))}"),
            ("train_fraction", 0 < self.train_fraction <= 1, "in (0, 1]"),
            ("transfer_scope", self.transfer_scope in typing.get_args(TransferScope),
             f"one of {', '.join(typing.get_args(TransferScope))}"),
            ("transfer_adapters", self.transfer_adapters in typing.get_args(TransferAdapters),
             f"one of {', '.join(typing.get_args(TransferAdapters))}"),
            ("heldout_share", 0 <= self.heldout_share < 1, "in [0, 1) (0: no held-out users)"),
        )
        check_ranges(self, "train", checks)
        try:
            torch.device(self.device)
        except (RuntimeError, ValueError):
            raise ConfigError(f"train.device={self.device!r}; expected a torch device such as cpu or cuda:0") from None
        name, _, k = self.valid_metric.partition("@")
        if name not in METRICS or not k.isdigit() or int(k) < 1:
            raise ConfigError(f"train.valid_metric={self.valid_metric!r}; expected METRIC@K with METRIC one of "
                              f"{', '.join(METRICS)} and K >= 1, e.g. ndcg@10")


def check_ranges(config: Any, section: str, checks: typing.Iterable[tuple[str, bool, str]],
                 error: type[Exception] = ConfigError) -> None:
    """Raise ``error`` for the first ``(field, ok, expected)`` that is not ok, as one line
    ``SECTION.FIELD=VALUE; expected EXPECTED``."""
    for name, ok, expected in checks:
        if not ok:
            raise error(f"{section}.{name}={getattr(config, name)!r}; expected {expected}")


SPEED_ONLY_TRAIN_KEYS = ("threads", "device", "eval_batch_size", "eval_block_size")
"""TrainConfig fields that change how fast a run goes, not what it computes: two runs that
differ only in these are the same run (experiment reuse, report cells)."""

STOPPING_TRAIN_KEYS = ("epochs", "patience")
"""TrainConfig fields that only say when a run stops (no schedule reads them), so an
interrupted run may resume with others: a longer cap extends it, a shorter one ends it."""


def from_dict(cls: type, data: dict[str, Any] | None, where: str = "config") -> Any:
    """Build dataclass ``cls`` from a mapping, checking names and types. A class with an
    ``upgrade`` classmethod first rewrites a mapping of an earlier layout into its own."""
    data = dict(data or {})
    if callable(getattr(cls, "upgrade", None)):
        data = cls.upgrade(data)
    data = _drop_removed(cls, data, where)
    names = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(data) - set(names)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)}; expected some of {sorted(names)}")
    hints = typing.get_type_hints(cls)
    kwargs = {k: coerce(v, hints[k], f"{where}.{k}") for k, v in data.items()}
    try:  # a bad value fails here, before any data is loaded, not inside a model
        obj = cls(**kwargs)
        if callable(getattr(obj, "validate", None)):
            obj.validate()
    except ConfigError:
        raise
    except (ValueError, ArithmeticError) as e:
        raise ConfigError(f"{where}: {e}") from None
    return obj


def _drop_removed(cls: type, data: dict[str, Any], where: str) -> dict[str, Any]:
    """Drop the keys of options ``cls`` no longer has (its ``REMOVED``: name -> the value every
    run had), so saved configs still load; any other value describes a run that can no longer
    be repeated, which is an error."""
    for key, old in getattr(cls, "REMOVED", {}).items():
        if key in data:
            if coerce(data[key], type(old), f"{where}.{key}") != old:
                raise ConfigError(f"{where}.{key}={data[key]!r}: this option was removed "
                                  f"(only its former value {old!r} is accepted)")
            del data[key]
    return data


def to_dict(obj: Any) -> dict[str, Any]:
    return dataclasses.asdict(obj)


def coerce(value: Any, tp: Any, where: str) -> Any:
    """Convert a YAML/CLI value to the annotated type, or raise a ConfigError naming the key."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null", "")):
            return None
        return coerce(value, args[0], where)
    if origin in (list, tuple):
        (inner, *_) = typing.get_args(tp) or (Any,)
        if isinstance(value, str):  # "a,b" or "[a, b]"
            value = [v.strip() for v in value.strip().removeprefix("[").removesuffix("]").split(",")
                     if v.strip()]
        if not isinstance(value, (list, tuple)):
            value = [value]
        return [coerce(v, inner, where) for v in value]
    if tp is Any:
        return value
    if dataclasses.is_dataclass(tp) and isinstance(value, dict):  # a section within a section
        return from_dict(tp, value, where)
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "yes", "1", "on", "false", "no", "0", "off"):
            return value.lower() in ("true", "yes", "1", "on")
        raise ConfigError(f"{where}: expected true/false, got {value!r}")
    if tp in (int, float):
        try:
            if isinstance(value, str):
                value = yaml.safe_load(value)
            if tp is int and isinstance(value, float) and not value.is_integer():
                raise ValueError
            out = tp(value)
        except (TypeError, ValueError, OverflowError, yaml.YAMLError):
            raise ConfigError(f"{where}: expected {tp.__name__}, got {value!r}") from None
        if isinstance(value, bool) or (tp is float and not math.isfinite(out)) or abs(out) >= 2**63:
            raise ConfigError(f"{where}: expected a finite {tp.__name__} below 2**63 in size, got {value!r}")
        return out
    if tp is str:
        return str(value)
    return value


def set_value(value: bool | int | float | str) -> str:
    """``value`` as ``--set`` reads it back exactly."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


def parse_overrides(pairs: list[str]) -> dict[str, str]:
    out = {}
    for p in pairs:
        if "=" not in p:
            raise ConfigError(f"--set {p!r}: expected key=value")
        k, v = p.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def read_yaml_sections(yaml_path: str | Path, sections: dict[str, type]) -> dict[str, dict[str, Any]]:
    """A YAML file of ``section: {field: value}`` mappings, names checked (values are checked
    with the other sources by :func:`from_dict`); errors name the file."""
    try:
        loaded = yaml.safe_load(Path(yaml_path).read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        raise ConfigError(f"{yaml_path}{line}: invalid YAML") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{yaml_path}: is not valid UTF-8 (byte {e.object[e.start]:#04x} at offset {e.start})") from None
    except OSError as e:
        raise ConfigError(f"{yaml_path}: cannot be read ({e.strerror or e})") from None
    if not isinstance(loaded, dict):
        raise ConfigError(f"{yaml_path}: expected a mapping of sections {sorted(sections)}")
    out = {}
    for k, v in loaded.items():
        if k not in sections:
            raise ConfigError(f"{yaml_path}: unknown section {k!r}; expected {sorted(sections)}")
        if not isinstance(v, dict | None):
            raise ConfigError(f"{yaml_path}: section {k!r} must be a mapping of field: value, got {v!r}")
        names = {f.name for f in dataclasses.fields(sections[k])} | set(getattr(sections[k], "LEGACY_KEYS", ()))
        unknown = sorted(map(str, set(v or {}) - names - set(getattr(sections[k], "REMOVED", {}))))
        if unknown:
            raise ConfigError(f"{yaml_path}: section {k!r} has unknown key(s) {unknown}; expected some of {sorted(names)}")
        out[k] = dict(v or {})
    return out


def load_sections(sections: dict[str, type], yaml_path: str | Path | None = None,
                  overrides: list[str] | None = None,
                  base: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Resolve the named dataclass sections from defaults, ``base``, a YAML file and overrides.

    Precedence: dataclass defaults < ``base`` (e.g. a preset) < YAML < ``--set``.
    """
    raw: dict[str, dict[str, Any]] = {k: dict((base or {}).get(k, {})) for k in sections}
    if yaml_path is not None:
        for k, v in read_yaml_sections(yaml_path, sections).items():
            raw[k].update(v)
    for key, value in parse_overrides(overrides or []).items():
        sec, name = override_target(key, sections)
        raw[sec][name] = value
    return {sec: from_dict(cls, raw[sec], sec) for sec, cls in sections.items()}


def override_target(key: str, sections: dict[str, type]) -> tuple[str, str]:
    """The (section, field) an override key names: dotted (``train.lr``) or bare (``lr``,
    when exactly one section has that field, or names it among its ``LEGACY_KEYS``). A
    field of a field (``model.official.tokens``, or ``official.tokens``) is named as
    ``official.tokens``, for the section's ``upgrade`` to place. A dotted key's field is
    checked where the section is built (:func:`from_dict`)."""
    head, dot, rest = key.partition(".")
    if dot and head in sections:
        return head, rest
    def known_to(cls: type) -> set[str]:
        return {f.name for f in dataclasses.fields(cls)} | set(getattr(cls, "LEGACY_KEYS", ()))
    owners = [sec for sec, cls in sections.items() if head in known_to(cls)]
    if dot and not owners:
        raise ConfigError(f"--set {key}: unknown section {head!r}; expected {sorted(sections)}")
    if not owners:
        known = sorted({f.name for cls in sections.values() for f in dataclasses.fields(cls)})
        raise ConfigError(f"--set {key}: unknown key; known keys: {', '.join(known)}")
    if len(owners) > 1:
        raise ConfigError(f"--set {key}: ambiguous, use one of {[f'{o}.{key}' for o in owners]}")
    return owners[0], key


def has_field(cls: type, name: str) -> bool:
    """Whether dataclass ``cls`` has field ``name``, or ``a.b`` with ``a`` a field whose type
    (or the non-None part of its Optional) is a dataclass that has ``b``."""
    head, dot, rest = name.partition(".")
    fields = {f.name for f in dataclasses.fields(cls)}
    if head not in fields:
        return False
    if not dot:
        return True
    tp = typing.get_type_hints(cls)[head]
    nested = [a for a in (typing.get_args(tp) or (tp,)) if dataclasses.is_dataclass(a)]
    return bool(nested) and has_field(nested[0], rest)


def save_yaml(path: str | Path, sections: dict[str, Any]) -> None:
    Path(path).write_text(yaml.safe_dump({k: to_dict(v) for k, v in sections.items()}, sort_keys=False))
