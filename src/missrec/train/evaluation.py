"""``missrec evaluate``'s scoring of a loaded model: full-ranking metrics on a split, with
modalities optionally removed from chosen items (``drops``) and every target's twin without
a modality ranked beside it (``twins``; :mod:`missrec.eval.modalities`). The model evaluated
on the store it was trained on (:func:`missrec.train.loop.evaluate_checkpoint`) and a model
rebuilt on another store's catalogue (:mod:`missrec.train.zeroshot`) are scored alike."""

from __future__ import annotations

from typing import Any

from ..config import TrainConfig
from ..data.batching import Examples
from ..data.store import ModalityFeatures
from ..eval.evaluator import evaluate
from ..eval.modalities import Drop, drop_modalities, twin_ranks
from ..model.base import SequentialRecommender
from .meta import eval_device, protocol_of


def evaluate_loaded(model: SequentialRecommender, model_name: str, examples: Examples,
                    features: dict[str, ModalityFeatures], train_cfg: TrainConfig, split: str, name: str,
                    progress: bool = False, drops: list[Drop] = (), twins: list[str] = ()) -> dict[str, Any]:
    """The metrics of ``model`` on ``examples`` of ``split`` (what ``missrec evaluate`` prints);
    ``features`` are the catalogue's the model is attached to; ``name`` is what errors name."""
    device = eval_device(train_cfg.device)
    model.to(device)
    cache, dropped = drop_modalities(model, model.item_cache(), features, list(drops), examples.targets, train_cfg.seed)
    res = evaluate(model, examples, protocol_of(train_cfg), device, progress, desc=split, name=name, cache=cache)
    out = {"model": model_name, "split": split, "users": len(examples), **res.metrics,
           "protocol": protocol_of(train_cfg).describe(), "users_per_second": round(res.users_per_second, 1)}
    if drops:
        out["dropped"] = dropped
    if twins:
        out["twins"] = {m: twin_ranks(model, cache, examples, features, m, device=device).summary() for m in twins}
    return out


__all__ = ["evaluate_loaded"]
