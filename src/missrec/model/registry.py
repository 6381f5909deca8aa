"""Model names -> config class and builder, so the CLI and trainer stay model-agnostic."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch

from ..config import TrainConfig, to_dict
from ..data.store import ModalityFeatures
from ..errors import MissrecError
from ..presets import preset_names, train_defaults
from .base import SequentialRecommender
from .missrec import MISSRec, MISSRecConfig
from .sasrec import SASRec, SASRecConfig
from .sasrec_text import SASRecText, SASRecTextConfig
from .unisrec import UniSRec, UniSRecConfig


@dataclass
class ItemFeatures:
    """What a model may know about the items: their count and their feature matrices."""

    n_items: int
    features: dict[str, ModalityFeatures]


@dataclass
class ModelSpec:
    name: str
    config_cls: type
    """The model's config dataclass."""
    builder: Callable[[Any, ItemFeatures], SequentialRecommender]
    """Takes (config, catalogue) and returns the model, its catalogue attached."""
    description: str
    pretrains: bool = False
    """Whether the model has a multi-domain pre-training objective (``pretrain_loss``, §3.5)."""

    def build(self, config: Any, catalogue: ItemFeatures) -> SequentialRecommender:
        return self.builder(config, catalogue)

    @property
    def train_defaults(self) -> dict[str, Any]:
        """Training settings that suit this model better than :class:`TrainConfig`'s
        defaults (``presets/defaults/<model>.yaml``)."""
        return train_defaults(self.name)

    @property
    def presets(self) -> list[str]:
        """Names of this model's presets (``presets/<model>/*.yaml``)."""
        return preset_names(self.name)


MODELS: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> None:
    MODELS[spec.name] = spec


def get_model_spec(name: str) -> ModelSpec:
    if name not in MODELS:
        raise MissrecError(f"unknown model {name!r}; expected one of {', '.join(sorted(MODELS))}")
    return MODELS[name]


def config_defaults(model: str) -> dict[str, dict[str, Any]]:
    """``{"model": ..., "train": ...}`` at their dataclass defaults: what a saved config that
    lacks a field ran with (a new field's default keeps what earlier runs computed). Empty
    model section for an unknown model."""
    spec = MODELS.get(model)
    return {"model": to_dict(spec.config_cls()) if spec is not None else {}, "train": to_dict(TrainConfig())}


def recorded_config(model: str, config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A run's recorded ``{"model": ..., "train": ...}`` config in today's layout, every field
    present: an earlier layout is upgraded (the config class's ``upgrade``) and a field the
    record lacks takes its default (a new field's default keeps what earlier runs computed).
    Two records of one setting, from before and after a config change, compare equal."""
    defaults = config_defaults(model)
    spec = MODELS.get(model)
    own = dict(config.get("model") or {})
    if spec is not None and callable(getattr(spec.config_cls, "upgrade", None)):
        own = spec.config_cls.upgrade(own)
    return {"model": {**defaults["model"], **own}, "train": {**defaults["train"], **(config.get("train") or {})}}


def required_modalities(config: Any) -> list[str]:
    """Feature modalities a model config reads from the store (none for id-only models)."""
    return list(getattr(config, "modalities", []) or [])


def mode_of(config: Any) -> str:
    """'transductive' for a config that learns item ids beside content, else 'inductive'
    (a model of ids only has no mode: see :func:`needs_item_ids`)."""
    return str(getattr(config, "mode", "inductive"))


def needs_item_ids(config: Any) -> bool:
    """Whether a model of ``config`` scores items by learned ids (no features: SASRec; or
    transductive mode), so that it cannot rank a catalogue it was not trained on."""
    return not required_modalities(config) or mode_of(config) == "transductive"


def _features_of(config: Any, catalogue: ItemFeatures) -> tuple[dict[str, int], dict, dict]:
    """Feature widths, matrices and presence masks of the config's modalities (clear error
    when the store lacks one)."""
    missing = [m for m in config.modalities if m not in catalogue.features]
    if missing:
        raise MissrecError(f"the store has no {', '.join(missing)} features (has: "
                           f"{', '.join(sorted(catalogue.features)) or 'none'}); run `missrec features`")
    dims = {m: catalogue.features[m].dim for m in config.modalities}
    feats = {m: torch.from_numpy(catalogue.features[m].matrix) for m in config.modalities}
    present = {m: torch.from_numpy(catalogue.features[m].present) for m in config.modalities}
    return dims, feats, present


def _build_sasrec(config: Any, catalogue: ItemFeatures) -> SequentialRecommender:
    return SASRec(config, catalogue.n_items)


def _multimodal_builder(model_cls: type) -> Callable[[Any, ItemFeatures], SequentialRecommender]:
    """A builder for a model over the catalogue's feature matrices (attached after construction)."""
    def build(config: Any, catalogue: ItemFeatures) -> SequentialRecommender:
        dims, feats, present = _features_of(config, catalogue)
        model = model_cls(config, catalogue.n_items, dims)
        model.attach_catalogue(feats, present)
        return model
    return build


register(ModelSpec("sasrec", SASRecConfig, _build_sasrec, "SASRec on item ids (full-softmax cross-entropy)"))
register(ModelSpec("missrec", MISSRecConfig, _multimodal_builder(MISSRec),
                   "MISSRec: multi-modal interest-aware encoder-decoder (the paper)", pretrains=True))
register(ModelSpec("sasrec-text", SASRecTextConfig, _multimodal_builder(SASRecText),
                   "SASRec_T: SASRec over a trainable projection of frozen text features"))
register(ModelSpec("unisrec", UniSRecConfig, _multimodal_builder(UniSRec),
                   "UniSRec-style: MoE whitening adapters over frozen features, causal Transformer, "
                   "softmax over all items with temperature (inductive | transductive)"))
