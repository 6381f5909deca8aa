"""Self-describing checkpoints: weights, configs, item vocabulary, catalogue, epoch, score.

Inference needs nothing else: no training dataset, no store.
"""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.store import ModalityFeatures
from ..errors import MissrecError
from ..model.base import SequentialRecommender
from ..model.registry import Catalogue, get_model_spec

FORMAT = "missrec-checkpoint"
VERSION = 1


def save_checkpoint(path: str | Path, *, model_name: str, model: SequentialRecommender, model_config: Any,
                    train_config: Any, item_ids: list[str], catalogue: Catalogue, dataset: dict,
                    item_text: list[str] | None = None,
                    epoch: int, best: dict[str, float], extra: dict | None = None) -> None:
    path = Path(path)
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "model": model_name,
        "model_config": asdict(model_config),
        "train_config": asdict(train_config),
        "state_dict": {k: v.detach().cpu() if torch.is_tensor(v) else v for k, v in model.state_dict().items()},
        "item_ids": list(item_ids),
        "item_text": list(item_text) if item_text is not None else None,
        "catalogue": {m: {"matrix": torch.from_numpy(f.matrix), "present": torch.from_numpy(f.present),
                          "source": f.source} for m, f in catalogue.features.items()},
        "dataset": dataset,
        "epoch": epoch,
        "best": best,
        "extra": extra or {},
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def read_checkpoint(path: str | Path) -> dict:
    path = Path(path)
    if path.is_dir():
        path = path / "model.pt"
    if not path.exists():
        raise MissrecError(f"{path}: no checkpoint here (expected a run directory or a model.pt file)")
    payload = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise MissrecError(f"{path}: not a missrec checkpoint")
    return payload


def catalogue_of(payload: dict) -> Catalogue:
    feats = {m: ModalityFeatures(np.asarray(d["matrix"]), np.asarray(d["present"]), d.get("source", ""))
             for m, d in payload["catalogue"].items()}
    return Catalogue(n_items=len(payload["item_ids"]) - 1, features=feats)


def load_model(payload: dict) -> tuple[SequentialRecommender, Any]:
    """Rebuild the model of a checkpoint payload, weights loaded, in eval mode."""
    from ..config import from_dict

    spec = get_model_spec(payload["model"])
    config = from_dict(spec.config_cls, payload["model_config"], "model")
    model = spec.build(config, catalogue_of(payload))
    model.load_state_dict(payload["state_dict"])
    model.eval()
    return model, config
