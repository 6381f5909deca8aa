"""Encoder specs as the CLI spells them: ``minilm``, ``efficientnet-lite0``, ``clip:PATH``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import MissrecError
from .base import Encoder
from .clip import DEFAULT_ARCH, ClipImageEncoder, ClipTextEncoder
from .image import EfficientNetLite0Encoder
from .text import MiniLMEncoder

TEXT_ENCODERS = ("minilm", "clip:PATH")
IMAGE_ENCODERS = ("efficientnet-lite0", "clip:PATH")


def make_encoder(spec: str, modality: str, *, clip_arch: str | None = None, **kwargs: Any) -> Encoder:
    """Build the encoder named by ``spec`` for ``modality`` (``"text"`` or ``"image"``).

    ``kwargs`` go to the encoder (``batch_size``, ``cache_dir``, ``use_cache``, ``progress``).
    Nothing heavy is imported here: models load on first use.
    """
    if modality not in ("text", "image"):
        raise MissrecError(f"unknown modality {modality!r}; expected 'text' or 'image'")
    if spec.startswith("clip:"):
        path = Path(spec[len("clip:"):]).expanduser()
        if not spec[len("clip:"):]:
            raise MissrecError("clip: needs a checkpoint path, e.g. clip:/models/ViT-B-32.pt")
        if not path.is_file():
            raise MissrecError(f"{path}: CLIP checkpoint not found (clip:PATH takes a local weights file; "
                               "nothing is downloaded)")
        cls = ClipTextEncoder if modality == "text" else ClipImageEncoder
        return cls(path, arch=clip_arch or DEFAULT_ARCH, **kwargs)
    if modality == "text" and spec == "minilm":
        return MiniLMEncoder(**kwargs)
    if modality == "image" and spec == "efficientnet-lite0":
        return EfficientNetLite0Encoder(**kwargs)
    choices = TEXT_ENCODERS if modality == "text" else IMAGE_ENCODERS
    raise MissrecError(f"unknown {modality} encoder {spec!r}; expected one of: {', '.join(choices)}")
