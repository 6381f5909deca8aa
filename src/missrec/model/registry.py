"""Model names -> config class and builder, so the CLI and trainer stay model-agnostic."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from ..data.store import ModalityFeatures
from ..errors import MissrecError
from .base import SequentialRecommender


@dataclass
class Catalogue:
    """What a model may know about the items: their count and their feature matrices."""

    n_items: int
    features: dict[str, ModalityFeatures]


@dataclass
class ModelSpec:
    name: str
    config_path: str
    """``module:Class`` of the model's config dataclass."""
    build_path: str
    """``module:function`` taking (config, catalogue) and returning the model."""
    description: str
    train_defaults: dict[str, Any] = field(default_factory=dict)
    """Training settings that suit this model better than :class:`TrainConfig`'s defaults."""

    @property
    def config_cls(self) -> type:
        return _load(self.config_path)

    def build(self, config: Any, catalogue: Catalogue) -> SequentialRecommender:
        return _load(self.build_path)(config, catalogue)


def _load(path: str) -> Any:
    module, name = path.split(":")
    return getattr(importlib.import_module(module), name)


MODELS: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> None:
    MODELS[spec.name] = spec


def get_model_spec(name: str) -> ModelSpec:
    if name not in MODELS:
        raise MissrecError(f"unknown model {name!r}; expected one of {', '.join(sorted(MODELS))}")
    return MODELS[name]


def required_modalities(config: Any) -> list[str]:
    """Feature modalities a model config reads from the store (none for id-only models)."""
    return list(getattr(config, "modalities", []) or [])


def _build_sasrec(config: Any, catalogue: Catalogue) -> SequentialRecommender:
    from .sasrec import SASRec

    return SASRec(config, catalogue.n_items)


def _build_missrec(config: Any, catalogue: Catalogue) -> SequentialRecommender:
    from .missrec import MISSRec

    dims, feats, present = _features_of(config, catalogue)
    model = MISSRec(config, catalogue.n_items, dims)
    model.attach_catalogue(feats, present)
    return model


register(ModelSpec("sasrec", "missrec.model.sasrec:SASRecConfig", f"{__name__}:_build_sasrec",
                   "SASRec on item ids (full-softmax cross-entropy)", {"batch_size": 256}))
# Fine-tuning batch 512 as the released props/finetune.yaml (the paper's 2048 is its
# pre-training batch); on amazon-scientific-mm it reached a higher validation NDCG@10.
register(ModelSpec("missrec", "missrec.model.missrec:MISSRecConfig", f"{__name__}:_build_missrec",
                   "MISSRec: multi-modal interest-aware encoder-decoder (the paper)", {"batch_size": 512}))


def _features_of(config: Any, catalogue: Catalogue) -> tuple[dict[str, int], dict, dict]:
    """Feature widths, matrices and presence masks of the config's modalities (clear error
    when the store lacks one)."""
    import torch

    missing = [m for m in config.modalities if m not in catalogue.features]
    if missing:
        raise MissrecError(f"the store has no {', '.join(missing)} features (has: "
                           f"{', '.join(sorted(catalogue.features)) or 'none'}); run `missrec features`")
    dims = {m: catalogue.features[m].dim for m in config.modalities}
    feats = {m: torch.from_numpy(catalogue.features[m].matrix) for m in config.modalities}
    present = {m: torch.from_numpy(catalogue.features[m].present) for m in config.modalities}
    return dims, feats, present


def _build_sasrec_text(config: Any, catalogue: Catalogue) -> SequentialRecommender:
    from .sasrec_text import SASRecText

    dims, feats, present = _features_of(config, catalogue)
    model = SASRecText(config, catalogue.n_items, dims)
    model.attach_catalogue(feats, present)
    return model


def _build_unisrec(config: Any, catalogue: Catalogue) -> SequentialRecommender:
    from .unisrec import UniSRec

    dims, feats, present = _features_of(config, catalogue)
    model = UniSRec(config, catalogue.n_items, dims)
    model.attach_catalogue(feats, present)
    return model


register(ModelSpec("sasrec-text", "missrec.model.sasrec_text:SASRecTextConfig", f"{__name__}:_build_sasrec_text",
                   "SASRec_T: SASRec over a trainable projection of frozen text features"))
register(ModelSpec("unisrec", "missrec.model.unisrec:UniSRecConfig", f"{__name__}:_build_unisrec",
                   "UniSRec-style: MoE whitening adapters over frozen features, causal Transformer, "
                   "softmax over all items with temperature (inductive | transductive)"))
