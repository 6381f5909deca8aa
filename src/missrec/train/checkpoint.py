"""Self-describing checkpoints: weights, configs, item vocabulary, catalogue, epoch, score.

Inference needs nothing else: no training dataset, no store.

Files are read with ``torch.load(weights_only=True)``: they hold only tensors and plain
data (str, int, float, bool, None, lists, tuples, dicts), so opening a file from someone
else cannot run code from it. A SHA-256 digest of the contents, written with them, turns a
flipped byte or an edited tensor into an error instead of silently different weights.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config import from_dict
from ..data.store import ModalityFeatures
from ..errors import MissrecError
from ..model.base import SequentialRecommender
from ..model.registry import ItemFeatures, get_model_spec

FORMAT = "missrec-checkpoint"
VERSION = 2
"""1: without a digest (still read); 2: with one."""
REQUIRED = ("model", "model_config", "train_config", "state_dict", "item_ids", "catalogue")


def save_checkpoint(path: str | Path, *, model_name: str, model: SequentialRecommender, model_config: Any,
                    train_config: Any, item_ids: list[str], catalogue: ItemFeatures, dataset: dict,
                    item_text: list[str] | None = None,
                    epoch: int, best: dict[str, float], extra: dict | None = None) -> None:
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "model": model_name,
        "model_config": plain(asdict(model_config)),
        "train_config": plain(asdict(train_config)),
        "state_dict": {k: v.detach().cpu() if torch.is_tensor(v) else v for k, v in model.state_dict().items()},
        "item_ids": list(item_ids),
        "item_text": list(item_text) if item_text is not None else None,
        "catalogue": {m: {"matrix": torch.from_numpy(np.ascontiguousarray(f.matrix)),
                          "present": torch.from_numpy(np.ascontiguousarray(f.present)),
                          "source": f.source} for m, f in catalogue.features.items()},
        "dataset": plain(dataset),
        "epoch": int(epoch),
        "best": plain(best),
        "extra": plain(extra or {}),
    }
    write_payload(path, payload)


def read_checkpoint(path: str | Path) -> dict:
    path = Path(path)
    if path.is_dir():
        path = path / "model.pt"
    if not path.exists():
        raise MissrecError(f"{path}: no checkpoint here (expected a run directory or a model.pt file)")
    payload = read_payload(path, FORMAT, "checkpoint")
    missing = [k for k in REQUIRED if k not in payload]
    if missing:
        raise MissrecError(f"{path}: not a complete missrec checkpoint (lacks {', '.join(missing)})")
    return payload


def catalogue_of(payload: dict) -> ItemFeatures:
    feats = {m: ModalityFeatures(np.asarray(d["matrix"]), np.asarray(d["present"]), d.get("source", ""))
             for m, d in payload["catalogue"].items()}
    return ItemFeatures(n_items=len(payload["item_ids"]) - 1, features=feats)


def load_model(payload: dict) -> tuple[SequentialRecommender, Any]:
    """Rebuild the model of a checkpoint payload, weights loaded, in eval mode."""
    spec = get_model_spec(payload["model"])
    config = from_dict(spec.config_cls, payload["model_config"], "model")
    model = spec.build(config, catalogue_of(payload))
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise MissrecError(f"the checkpoint's weights do not fit its {payload['model']} configuration "
                           f"({first})") from None
    model.eval()
    return model, config


# ---------------------------------------------------------------------------- safe files

def write_payload(path: str | Path, payload: dict) -> None:
    """Save ``payload`` with its digest, atomically (a reader never sees half a file)."""
    path = Path(path)
    payload = {**payload, "digest": digest(payload)}
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def read_payload(path: Path, fmt: str, what: str) -> dict:
    """Load a file written by :func:`write_payload` without executing code from it.

    Every way the file can be wrong (truncated, not a torch file, pickled objects, another
    format, a digest that does not match) ends in a one-line :class:`MissrecError`.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "GLOBAL" in str(e) or "global" in str(e):
            raise MissrecError(
                f"{path}: holds pickled Python objects, which missrec does not load (loading them could run "
                f"code from the file); if it is an older missrec {what} from a source you trust, convert it once "
                f"with: python -c \"from missrec.train.checkpoint import convert_trusted; "
                f"convert_trusted('{path}')\"") from None
        raise MissrecError(f"{path}: not a readable missrec {what} (corrupted: {_first_line(e)})") from None
    except Exception as e:  # noqa: BLE001 - whatever the loader trips on, the file is unreadable
        raise MissrecError(f"{path}: not a readable missrec {what} (truncated or corrupted: "
                           f"{_first_line(e)})") from None
    if not isinstance(payload, dict) or payload.get("format") != fmt:
        raise MissrecError(f"{path}: not a missrec {what}")
    stored = payload.pop("digest", None)
    if stored is not None and stored != digest(payload):
        raise MissrecError(f"{path}: its contents do not match the digest written with them "
                           f"(the file was altered or damaged)")
    return payload


def convert_trusted(path: str | Path, out: str | Path | None = None) -> Path:
    """Rewrite an older, pickled checkpoint (numpy arrays inside) as tensors and plain data.

    This is the one place that unpickles: call it only on files from a source you trust.
    """
    path = Path(path)
    payload = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise MissrecError(f"{path}: not a missrec checkpoint")
    payload.pop("digest", None)
    target = Path(out) if out is not None else path
    write_payload(target, _tensors_and_plain(payload))
    return target


def digest(payload: dict) -> str:
    """SHA-256 over every tensor's dtype, shape and bytes and every other value's repr."""
    h = hashlib.sha256()
    _feed(h, payload)
    return h.hexdigest()


def _feed(h: Any, obj: Any) -> None:
    if torch.is_tensor(obj):
        t = obj.detach().cpu().contiguous()
        h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy())
    elif isinstance(obj, dict):
        h.update(b"{")
        for k in sorted(obj, key=repr):
            h.update(repr(k).encode())
            _feed(h, obj[k])
        h.update(b"}")
    elif isinstance(obj, (list, tuple)):
        h.update(b"(" if isinstance(obj, tuple) else b"[")
        for v in obj:
            _feed(h, v)
        h.update(b"]")
    else:
        h.update(repr(obj).encode())


def plain(obj: Any) -> Any:
    """``obj`` as plain data (numpy scalars and arrays become Python numbers and lists)."""
    if isinstance(obj, dict):
        return {str(k) if isinstance(k, Path) else k: plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(plain(v) for v in obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    if obj is None or isinstance(obj, (str, int, float, bool)) or torch.is_tensor(obj):
        return obj
    raise TypeError(f"cannot store a {type(obj).__name__} in a checkpoint")


def _tensors_and_plain(obj: Any) -> Any:
    """Like :func:`plain`, but numpy arrays become tensors (an older file's catalogue)."""
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(obj))
    if isinstance(obj, dict):
        return {k: _tensors_and_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_tensors_and_plain(v) for v in obj)
    return plain(obj)


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return (text.splitlines()[0] if text else type(e).__name__)[:200]
