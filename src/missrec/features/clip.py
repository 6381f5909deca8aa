"""CLIP text and image towers through open_clip, from a local checkpoint (``clip:PATH``).

Nothing is downloaded: the architecture comes from open_clip's built-in configs (default
``ViT-B-32``) or from a JSON model config the user points at, the weights from ``PATH``.
Tokenizer vocabularies of the built-in CLIP models ship inside open_clip.

Note for OpenAI's original weights (what MISSRec's released ``.feat1CLS``/``.feat3CLS`` were
made with): they use QuickGELU, so pass ``--clip-arch ViT-B-32-quickgelu``; with plain
``ViT-B-32`` they load without error but give subtly different features.

Features are the projected embeddings, *not* L2-normalised, as in MISSRec's feature files.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import MissrecError
from ._compat import ensure_torchvision_importable, require
from .base import Encoder, EncodeError
from .cache import file_digest
from .image import open_rgb

EXTRA = "clip"
DEFAULT_ARCH = "ViT-B-32"


class ClipModel:
    """One loaded CLIP (both towers), shared by the text and image encoders built on it."""

    _loaded: dict[tuple[str, str], "ClipModel"] = {}
    _lock = threading.Lock()

    def __init__(self, checkpoint: Path, arch: str):
        self.checkpoint = checkpoint
        self.arch = arch
        self.model: Any = None
        self.preprocess: Any = None
        self.tokenizer: Any = None

    @classmethod
    def get(cls, checkpoint: Path, arch: str) -> "ClipModel":
        """The (lazily loaded) model for ``checkpoint`` + ``arch``, shared per process."""
        key = (str(checkpoint.resolve()), arch)
        with cls._lock:
            if key not in cls._loaded:
                cls._loaded[key] = ClipModel(checkpoint, arch)
            return cls._loaded[key]

    def arch_name(self, open_clip: Any) -> str:
        """Register a JSON config file with open_clip (if ``arch`` is one) and return its name."""
        if self.arch.endswith(".json"):
            path = Path(self.arch)
            if not path.is_file():
                raise MissrecError(f"{path}: CLIP model config not found")
            open_clip.add_model_config(path)
            return path.stem
        if open_clip.get_model_config(self.arch) is None:
            raise MissrecError(f"unknown CLIP architecture {self.arch!r}; use an open_clip model name "
                               "(e.g. ViT-B-32, ViT-B-32-quickgelu) or a model config .json file")
        return self.arch

    def load(self) -> "ClipModel":
        if self.model is not None:
            return self
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        ensure_torchvision_importable()
        open_clip = require("open_clip", EXTRA, "the clip encoder")
        require("PIL", EXTRA, "the clip encoder")
        name = self.arch_name(open_clip)
        if not self.checkpoint.is_file():
            raise MissrecError(f"{self.checkpoint}: CLIP checkpoint not found")
        try:
            model, _, preprocess = open_clip.create_model_and_transforms(
                name, pretrained=str(self.checkpoint.resolve()), device="cpu")
        except RuntimeError as e:
            # e.g. missing/unexpected keys or size mismatches: the checkpoint is not this arch.
            raise MissrecError(f"{self.checkpoint}: cannot load as CLIP {name!r} "
                               f"(wrong --clip-arch?): {str(e).splitlines()[0][:300]}") from None
        self.model = model.eval()
        self.preprocess = preprocess
        self.tokenizer = open_clip.get_tokenizer(name)
        return self

    def embed_dim(self) -> int:
        if self.arch.endswith(".json"):
            return int(json.loads(Path(self.arch).read_text())["embed_dim"])
        ensure_torchvision_importable()
        open_clip = require("open_clip", EXTRA, "the clip encoder")
        cfg = open_clip.get_model_config(self.arch)
        if cfg is None:
            raise MissrecError(f"unknown CLIP architecture {self.arch!r}")
        return int(cfg["embed_dim"])


class _ClipEncoder(Encoder):
    """Shared parts of the two towers."""

    name = "clip"

    def __init__(self, checkpoint: str | Path, *, arch: str = DEFAULT_ARCH, **kwargs: Any):
        super().__init__(**kwargs)
        self.checkpoint = Path(checkpoint)
        self.arch = arch
        self._identity: str | None = None

    @property
    def clip(self) -> ClipModel:
        return ClipModel.get(self.checkpoint, self.arch)

    @property
    def identity(self) -> str:
        if self._identity is None:
            if not self.checkpoint.is_file():
                raise MissrecError(f"{self.checkpoint}: CLIP checkpoint not found")
            arch = self.arch
            if arch.endswith(".json"):
                # A config file is identified by its content, not its name.
                arch = Path(arch).stem + "@" + hashlib.sha256(Path(arch).read_bytes()).hexdigest()[:12]
            digest = file_digest(self.checkpoint, self.cache_dir)[:16]
            self._identity = f"clip:{arch}:{digest}:{self.modality}"
        return self._identity

    @property
    def dim(self) -> int:
        return self.clip.embed_dim()


class ClipTextEncoder(_ClipEncoder):
    """CLIP text tower. Inputs are strings (truncated to the model's context length)."""

    modality = "text"

    def _prepare(self, raw: Any) -> Any:
        if not isinstance(raw, str):
            raise EncodeError(f"clip text: expected a string, got {type(raw).__name__}")
        return raw

    def _forward(self, prepared: list[Any]) -> np.ndarray:
        clip = self.clip.load()
        with torch.inference_mode():
            return clip.model.encode_text(clip.tokenizer(prepared)).float().numpy()


class ClipImageEncoder(_ClipEncoder):
    """CLIP image tower. Inputs are image file paths (or bytes); preprocessing is open_clip's
    evaluation transform for the architecture."""

    modality = "image"

    def _prepare(self, raw: Any) -> Any:
        if not isinstance(raw, (str, Path, bytes, bytearray)):
            raise EncodeError(f"clip image: expected an image path or bytes, got {type(raw).__name__}")
        img = open_rgb(raw)
        return self.clip.load().preprocess(img)

    def _forward(self, prepared: list[Any]) -> np.ndarray:
        clip = self.clip.load()
        with torch.inference_mode():
            return clip.model.encode_image(torch.stack(prepared)).float().numpy()
