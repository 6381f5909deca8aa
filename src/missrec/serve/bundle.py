"""Serving bundles: a trained model and its live catalogue in safe formats (no pickle).

A bundle is a directory::

    manifest.json                 model name and config, modalities (width, feature encoder),
                                  non-tensor extra state (clustering fingerprint), cache layout
    model.safetensors             weights, tensor extra state (interest table, prototypes), and
                                  the trained catalogue's raw features (``trained.<m>``),
                                  which the model is attached to so its clustering stays valid
    catalogue.json                {"generation": g}: which catalogue files are current
    items-<g>.json                item ids (row 0 = padding), texts, which rows are alive
    items-<g>.safetensors         raw features ``raw.<m>`` / ``present.<m>`` and the item side
                                  ready for scoring (``cache.<field>``: the model's item cache,
                                  :mod:`missrec.model.cache`)
    items-<g>.log.jsonl           item changes since generation g (see :mod:`.journal`)

Everything is written to a temporary name and moved into place with ``os.replace``: export
builds a whole temporary directory; compaction writes generation g+1 and then switches
``catalogue.json``. Loading reads JSON and safetensors only; it never executes anything
from the files, and needs no store and no training data.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from ..config import from_dict
from ..data.store import ModalityFeatures
from ..errors import MissrecError
from ..model.base import SequentialRecommender
from ..model.cache import ItemCache
from ..model.registry import ItemFeatures, get_model_spec
from ..train.checkpoint import catalogue_of, load_model, read_checkpoint
from ..train.pretrained import (BUNDLE_FORMAT, BUNDLE_VERSION, MANIFEST, WEIGHTS, bundle_weights, read_manifest,
                               is_bundle_dir as is_bundle)

POINTER = "catalogue.json"
EXTRA_SUFFIX = "_extra_state"


@dataclass
class ItemState:
    """The catalogue as served: one row per item, row 0 padding."""

    ids: list[str]
    text: list[str]
    alive: np.ndarray
    """[n+1] bool: False for padding and removed items (never ranked)."""
    raw: dict[str, np.ndarray]
    """Per modality [n+1, d_in] float32 raw features (zero where absent)."""
    present: dict[str, np.ndarray]
    """Per modality [n+1] bool."""
    cache: ItemCache
    """The model's item cache (:meth:`~missrec.model.base.SequentialRecommender.item_cache`
    of the trained catalogue, then edited row by row)."""
    digest: list[str] = field(default_factory=list)
    """Per row, the digest of the content it was last put with (:meth:`NewItem.digest
    <missrec.serve.catalogue.NewItem.digest>`); "" where unknown (trained items, bundles
    older than digests): such a row counts as changed by any refresh."""

    added_offset: float = 0.0
    """Added to the scores of the items added after training (rows past the trained ones):
    the offset :mod:`missrec.serve.calibration` sets so that they get their share of the
    top of the lists. 0: scored as the model scores them."""

    def __post_init__(self) -> None:
        self.digest = list(self.digest) + [""] * (len(self.ids) - len(self.digest))


@dataclass
class LoadedBundle:
    path: Path
    manifest: dict
    model: SequentialRecommender
    config: Any
    items: ItemState
    generation: int


# ----------------------------------------------------------------------------- writing

def export_bundle(source: str | Path, bundle: str | Path) -> Path:
    """Write the bundle of a run directory or checkpoint ``source`` to ``bundle`` (atomic)."""
    return write_bundle(from_checkpoint(source), bundle)


@dataclass
class BundleParts:
    """What a bundle holds, built from a checkpoint in memory."""

    manifest: dict
    weights: dict[str, torch.Tensor]
    items: ItemState
    model: SequentialRecommender
    config: Any


def from_checkpoint(source: str | Path) -> BundleParts:
    payload = read_checkpoint(source)
    model, config = load_model(payload)
    ids = list(payload["item_ids"])
    parts = from_model(payload["model"], model, config, ids, payload.get("item_text"),
                       catalogue_of(payload).features)
    parts.manifest.update({"dataset": payload.get("dataset", {}), "epoch": payload.get("epoch"),
                           "source_checkpoint": str(Path(source).resolve())})
    return parts


def from_model(name: str, model: SequentialRecommender, config: Any, ids: list[str],
               text: list[str] | None, features: dict[str, ModalityFeatures]) -> BundleParts:
    """The bundle of a model (attached to its catalogue) over items ``ids`` (row 0 padding)."""
    text = list(text or [""] * len(ids))
    with torch.no_grad():
        cache = model.item_cache()
    alive = np.ones(len(ids), dtype=bool)
    alive[0] = False
    modalities = list(getattr(config, "modalities", []) or [])
    feats = {m: features[m] for m in modalities}
    manifest = {
        "format": BUNDLE_FORMAT, "version": BUNDLE_VERSION, "model": name, "model_config": asdict(config),
        "modalities": {m: {"dim": f.dim, "source": f.source} for m, f in feats.items()},
        "n_trained_items": len(ids) - 1, "cache_kind": type(cache).__name__,
    }
    weights, manifest["extra_state"] = _split_state(model.state_dict())
    for m, f in feats.items():
        weights[f"trained.{m}"] = torch.from_numpy(f.matrix)
        weights[f"trained_present.{m}"] = torch.from_numpy(f.present.astype(np.uint8))
    items = ItemState(ids, text, alive, {m: f.matrix for m, f in feats.items()},
                      {m: f.present for m, f in feats.items()}, cache)
    return BundleParts(manifest, weights, items, model, config)


def write_bundle(parts: BundleParts, bundle: str | Path) -> Path:
    return _write_atomically(Path(bundle), parts.manifest, parts.weights, parts.items)


def _write_atomically(bundle: Path, manifest: dict, weights: dict[str, torch.Tensor],
                      items: ItemState) -> Path:
    if bundle.exists() and not is_bundle(bundle) and any(bundle.iterdir()):
        raise MissrecError(f"{bundle}: exists and is not a missrec bundle; choose another directory")
    bundle.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{bundle.name}.", dir=bundle.parent))
    try:
        save_file(_contiguous(weights), str(tmp / WEIGHTS))
        write_generation(tmp, 0, items)
        write_json(tmp / POINTER, {"generation": 0})
        write_json(tmp / MANIFEST, manifest)
        old = None
        if bundle.exists():
            old = bundle.with_name(f".{bundle.name}.old-{os.getpid()}")
            os.replace(bundle, old)
        os.replace(tmp, bundle)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return bundle


def write_generation(bundle: Path, generation: int, items: ItemState) -> None:
    """Write ``items-<g>.json`` and ``items-<g>.safetensors`` (each via a temporary name)."""
    tensors: dict[str, torch.Tensor] = {}
    for m, x in items.raw.items():
        tensors[f"raw.{m}"] = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        tensors[f"present.{m}"] = torch.from_numpy(items.present[m].astype(np.uint8))
    tensors.update({f"cache.{k}": v for k, v in items.cache.tensors().items()})
    meta = {"ids": items.ids, "text": items.text, "alive": items.alive.astype(bool).tolist()}
    if any(items.digest):
        meta["digest"] = items.digest
    if items.added_offset:
        meta["added_offset"] = items.added_offset
    target = bundle / f"items-{generation}.safetensors"
    tmp = target.with_name(target.name + ".tmp")
    save_file(_contiguous(tensors), str(tmp))
    os.replace(tmp, target)
    write_json(bundle / f"items-{generation}.json", meta)


def write_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _contiguous(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # safetensors refuses shared or strided storage; a clone gives each tensor its own
    return {k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()}


def _split_state(state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, dict]]:
    """Tensors of a state dict, and the JSON part of its extra states (e.g. MISSRec's
    clustering: its tensors go to the weights as ``<key>.<field>``)."""
    tensors, extra = {}, {}
    for key, value in state.items():
        if torch.is_tensor(value):
            tensors[key] = value
        elif key.endswith(EXTRA_SUFFIX) and isinstance(value, dict):
            extra[key] = {}
            for field, v in value.items():
                if torch.is_tensor(v):
                    tensors[f"{key}.{field}"] = v
                else:
                    extra[key][field] = v
        else:
            raise MissrecError(f"state entry {key!r} is neither a tensor nor an extra state")
    return tensors, extra


# ----------------------------------------------------------------------------- reading

def load_bundle(bundle: str | Path) -> LoadedBundle:
    """Rebuild the model (attached to its trained catalogue) and read the current items."""
    bundle = Path(bundle)
    manifest = read_manifest(bundle)
    model, config = _build_model(manifest, *bundle_weights(bundle, manifest))
    generation = int(json.loads((bundle / POINTER).read_text())["generation"])
    items = read_generation(bundle, generation, manifest, model)
    return LoadedBundle(bundle, manifest, model, config, items, generation)


def _build_model(manifest: dict, state: dict[str, Any], catalogue: dict[str, torch.Tensor]
                 ) -> tuple[SequentialRecommender, Any]:
    """The model, attached to the trained catalogue its clustering was computed on."""
    spec = get_model_spec(manifest["model"])
    config = from_dict(spec.config_cls, manifest["model_config"], "model")
    feats = {m: ModalityFeatures(catalogue[f"trained.{m}"].numpy(),
                                 catalogue[f"trained_present.{m}"].numpy().astype(bool), info.get("source", ""))
             for m, info in manifest["modalities"].items()}
    model = spec.build(config, ItemFeatures(int(manifest["n_trained_items"]), feats))
    model.load_state_dict(state)
    model.eval()
    return model, config


def read_generation(bundle: Path, generation: int, manifest: dict, model: SequentialRecommender) -> ItemState:
    meta = json.loads((bundle / f"items-{generation}.json").read_text(encoding="utf-8"))
    tensors = load_file(str(bundle / f"items-{generation}.safetensors"))
    modalities = list(manifest["modalities"])
    raw = {m: tensors[f"raw.{m}"].numpy() for m in modalities}
    present = {m: tensors[f"present.{m}"].numpy().astype(bool) for m in modalities}
    stored = {k[len("cache."):]: v for k, v in tensors.items() if k.startswith("cache.")}
    if "interests" in tensors:  # version 1 kept MISSRec's interests beside its cache
        stored["interests"] = tensors["interests"]
    cache = model.cache_type.from_tensors(stored)
    return ItemState(list(meta["ids"]), list(meta["text"]), np.asarray(meta["alive"], dtype=bool),
                     raw, present, cache, list(meta.get("digest", [])), float(meta.get("added_offset", 0.0)))
