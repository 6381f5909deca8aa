"""A pre-trained model's name, configuration and weights, from any file missrec writes: a
checkpoint (``model.pt``), a run directory (its ``model.pt``) or a serving bundle directory
(``manifest.json`` + ``model.safetensors``).

Training may not import the serving layer, so a bundle's weights are read here from its
documented layout (:mod:`missrec.serve.bundle`): the manifest names the model, its config,
its modalities and the non-tensor part of every extra state (e.g. MISSRec's clustering
fingerprint); ``model.safetensors`` holds the weights, the tensors of each extra state as
``<key>.<field>``, and the trained catalogue's raw features as ``trained.<m>`` /
``trained_present.<m>``, which are data, not weights, and are dropped. Reading needs JSON and
safetensors only; nothing in the files is executed.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from ..errors import MissrecError
from .checkpoint import read_checkpoint

BUNDLE_FORMAT = "missrec-bundle"
BUNDLE_VERSION = 2
"""The layout bundles are written in (:mod:`missrec.serve.bundle`)."""
BUNDLE_VERSIONS = (1, 2)
"""Bundle layouts this reads: 1 stored vector caches as ``cache.tensor`` / ``cache.0`` /
``cache.1`` and MISSRec's interests beside its cache (``interests``); 2 stores every cache as
its fields (``cache.<field>``). Their weights are laid out alike."""
MANIFEST = "manifest.json"
WEIGHTS = "model.safetensors"
CATALOGUE_TENSORS = ("trained.", "trained_present.")
"""Prefixes (then a modality name) of the bundle tensors that hold the trained catalogue."""


@dataclass
class Pretrained:
    """What transfer and zero-shot evaluation need of a saved model."""

    path: Path
    kind: str
    """'checkpoint' or 'bundle'."""
    model: str
    """The registered model name."""
    model_config: dict[str, Any]
    state_dict: dict[str, Any]
    """Weights and extra states, as ``model.state_dict()`` gives them."""
    train_config: dict[str, Any] | None = None
    """The training configuration (checkpoints only)."""

    @property
    def modalities(self) -> list[str]:
        return list(self.model_config.get("modalities") or [])

    @classmethod
    def of_checkpoint(cls, path: Path, payload: dict[str, Any]) -> "Pretrained":
        """From a payload :func:`~missrec.train.checkpoint.read_checkpoint` has read."""
        return cls(Path(path), "checkpoint", payload["model"], dict(payload["model_config"]), payload["state_dict"],
                   dict(payload["train_config"]))


def is_bundle_dir(path: str | Path) -> bool:
    return (Path(path) / MANIFEST).is_file()


def read_pretrained(path: str | Path) -> Pretrained:
    """The model saved at ``path``: a checkpoint file, a run directory or a bundle directory."""
    path = Path(path)
    if is_bundle_dir(path):
        return read_bundle(path)
    return Pretrained.of_checkpoint(path, read_checkpoint(path))


def read_bundle(bundle: Path) -> Pretrained:
    """A bundle's model: its manifest's name and config, its weights with every extra state
    rebuilt from the manifest's part and its ``<key>.<field>`` tensors."""
    manifest = read_manifest(bundle)
    state, _ = bundle_weights(bundle, manifest)
    return Pretrained(bundle, "bundle", str(manifest["model"]), dict(manifest["model_config"]), state)


def bundle_weights(bundle: Path, manifest: dict[str, Any]) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """A bundle's state dict (weights, with every extra state rebuilt from the manifest's part
    and its ``<key>.<field>`` tensors) and, apart, its trained catalogue's tensors."""
    try:
        tensors = load_file(str(bundle / WEIGHTS))
    except Exception as e:  # noqa: BLE001 - whatever safetensors trips on, the file is unreadable
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise MissrecError(f"{bundle / WEIGHTS}: not readable bundle weights ({first})") from None
    names = {f"{p}{m}" for p in CATALOGUE_TENSORS for m in manifest.get("modalities", {})}
    state: dict[str, Any] = {key: dict(fields) for key, fields in (manifest.get("extra_state") or {}).items()}
    catalogue = {}
    for name, tensor in tensors.items():
        if name in names:
            catalogue[name] = tensor
            continue
        owner = next((k for k in state if name.startswith(k + ".")), None)
        if owner is None:
            state[name] = tensor
        else:
            state[owner][name[len(owner) + 1:]] = tensor
    return state, catalogue


def read_manifest(bundle: Path) -> dict[str, Any]:
    """A bundle's ``manifest.json``, checked: its format, a version this reads, its model."""
    file = bundle / MANIFEST
    try:
        manifest = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise MissrecError(f"{file}: unreadable bundle manifest ({e})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != BUNDLE_FORMAT:
        raise MissrecError(f"{file}: not a missrec bundle manifest")
    if manifest.get("version") not in BUNDLE_VERSIONS:
        raise MissrecError(f"{file}: bundle version {manifest.get('version')}; this missrec reads versions "
                           f"{', '.join(map(str, BUNDLE_VERSIONS))}")
    missing = [k for k in ("model", "model_config") if k not in manifest]
    if missing:
        raise MissrecError(f"{file}: an incomplete bundle manifest (lacks {', '.join(missing)})")
    return manifest


def weight_files(path: str | Path) -> list[Path]:
    """The files that hold the model at ``path`` (what tells two pre-trained models apart)."""
    path = Path(path)
    if is_bundle_dir(path):
        return [path / MANIFEST, path / WEIGHTS]
    return [path / "model.pt" if path.is_dir() else path]


def model_digest(path: str | Path) -> str:
    """SHA-256 of the files that hold the model at ``path`` (a checkpoint, a run or a bundle).

    Planning an experiment asks it of one pre-trained model for every run fine-tuned from
    it, so files are hashed once while their size and modification time stay the same."""
    stats = tuple((str(f.resolve()), st.st_size, st.st_mtime_ns) for f in weight_files(path) for st in [f.stat()])
    return _digest(stats)


@functools.lru_cache(maxsize=64)
def _digest(files: tuple[tuple[str, int, int], ...]) -> str:
    h = hashlib.sha256()
    for name, _, _ in files:
        with open(name, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def tensor_state(state: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The tensors of a state dict (its extra states, such as MISSRec's clustering, left out)."""
    return {k: v for k, v in state.items() if torch.is_tensor(v)}


__all__ = ["Pretrained", "bundle_weights", "is_bundle_dir", "model_digest", "read_bundle", "read_manifest", "read_pretrained",
           "tensor_state", "weight_files"]
