"""Zero-shot evaluation: a pre-trained inductive model scores a store it never saw.

An inductive model reads items through their features, never their ids (paper §3.6.1, eq. 9),
so it can rank another catalogue as it is: the model is rebuilt on the store's catalogue (its
feature matrices, for the modalities the model reads that the store has), every weight is
loaded (:func:`~missrec.train.transfer.load_matching`), and MISSRec re-clusters its interests
on the new catalogue before scoring (its clustering carries the fingerprint of the catalogue
it was computed on). A model that needs item ids (SASRec, transductive mode) is refused.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import TrainConfig, from_dict
from ..data.store import read_schema
from ..errors import MissrecError
from ..eval.evaluator import EvalResult, evaluate
from ..eval.modalities import Drop
from ..model.base import SequentialRecommender
from ..model.registry import get_model_spec, mode_of, needs_item_ids, required_modalities
from .evaluation import evaluate_loaded
from .meta import eval_device, max_len_of, protocol_of
from .pretrained import Pretrained
from .rundata import RunData
from .transfer import load_matching


@dataclass
class ZeroShotModel:
    """A pre-trained model rebuilt on a store's catalogue, weights loaded, in eval mode."""

    pretrained: Pretrained
    model: SequentialRecommender
    config: Any
    """The pre-trained config, its modalities narrowed to those the store has."""
    data: RunData


def fit_to_store(pre: Pretrained, store: Path) -> Any:
    """The pre-trained model's config on ``store``: refused for a model that needs item ids;
    its modalities narrowed to those the store has feature matrices for."""
    config = from_dict(get_model_spec(pre.model).config_cls, pre.model_config, "model")
    if needs_item_ids(config):
        what = "transductive " if mode_of(config) == "transductive" else ""
        how = " (`missrec pretrain`, or `missrec train --preset inductive`)" if pre.model == "missrec" else ""
        raise MissrecError(f"{pre.path}: a {what}{pre.model} model scores items by ids it learned on its own "
                           f"catalogue, so it cannot rank {store}'s items; zero-shot evaluation needs an inductive "
                           f"model{how}")
    have = read_schema(store)["modalities"]
    modalities = [m for m in required_modalities(config) if m in have]
    if not modalities:
        raise MissrecError(f"{store}: has none of the model's modalities ({', '.join(required_modalities(config))}); "
                           f"add them with `missrec features`")
    return dataclasses.replace(config, modalities=modalities)


def build_zero_shot(pre: Pretrained, store: str | Path, data: RunData | None = None) -> ZeroShotModel:
    """Rebuild ``pre`` on ``store``'s catalogue (see the module doc); every weight must fit."""
    store = Path(store)
    config = fit_to_store(pre, store)
    if data is None:
        data = RunData.load(store, required_modalities(config), max_len_of(config))
    model = get_model_spec(pre.model).build(config, data.catalogue)
    report = load_matching(model, pre, mode_of(config))
    untrained = report.mismatched + report.missing
    if untrained:
        raise MissrecError(f"{pre.path}: {len(untrained)} of the model's tensors do not fit {store}'s catalogue "
                           f"({', '.join(untrained[:3])}{'…' if len(untrained) > 3 else ''}): its features are not "
                           "those the model was trained on (another encoder or width?)")
    model.eval()
    return ZeroShotModel(pre, model, config, data)


def evaluate_split(built: ZeroShotModel, split: str, train_cfg: TrainConfig, progress: bool = False) -> EvalResult:
    """Full-ranking metrics of the rebuilt model on the store's ``split`` ('valid' or 'test')."""
    device = eval_device(train_cfg.device)
    built.model.to(device)
    examples = built.data.valid if split == "valid" else built.data.test
    return evaluate(built.model, examples, protocol_of(train_cfg), device, progress, desc=split,
                    name=str(built.pretrained.path))


def evaluate_zero_shot(pre: Pretrained, store: str | Path, split: str = "test",
                       overrides: dict[str, Any] | None = None, progress: bool = False,
                       drops: list[Drop] = (), twins: list[str] = ()) -> dict[str, Any]:
    """``missrec evaluate`` on a store the model was not trained on: what
    :func:`~missrec.train.loop.evaluate_checkpoint` returns, plus what the model read."""
    built = build_zero_shot(pre, store)
    train_cfg = from_dict(TrainConfig, {**(pre.train_config or {}), **(overrides or {})}, "train")
    examples = built.data.valid if split == "valid" else built.data.test
    out = evaluate_loaded(built.model, pre.model, examples, built.data.catalogue.features, train_cfg, split,
                          str(pre.path), progress, drops, twins)
    out["zero_shot"] = {"store": str(store), "items": built.data.dataset.n_items,
                        "modalities": required_modalities(built.config)}
    return out


__all__ = ["ZeroShotModel", "build_zero_shot", "evaluate_split", "evaluate_zero_shot", "fit_to_store"]
