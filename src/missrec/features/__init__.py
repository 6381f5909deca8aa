"""Item features from frozen pre-trained encoders: one small interface, cached on disk.

* :class:`~missrec.features.base.Encoder` -- ``encode(inputs) -> float32[N, d]`` for texts
  (strings) or images (file paths), batched, deterministic, cached by content.
* :func:`~missrec.features.registry.make_encoder` -- ``minilm``, ``efficientnet-lite0``,
  ``clip:PATH`` (heavy packages are optional extras, imported on first use).
* :func:`~missrec.features.fill.fill_features` -- encode a store's items into its
  ``text`` / ``image`` modalities with presence masks.
* :func:`~missrec.features.attach.attach_features` -- attach features computed elsewhere
  (UniSRec ``.feat1CLS``/``.feat3CLS`` + ``.item2index``, or ``.npy`` + ids), joined by item id.
"""

from .attach import AttachReport, attach_features, join_features, read_feature_source
from .base import Encoder, EncodeError, EncodeResult
from .cache import FeatureCache, default_cache_dir
from .fill import FillReport, fill_features
from .registry import make_encoder

__all__ = [
    "AttachReport",
    "Encoder",
    "EncodeError",
    "EncodeResult",
    "FeatureCache",
    "FillReport",
    "attach_features",
    "default_cache_dir",
    "fill_features",
    "join_features",
    "make_encoder",
    "read_feature_source",
]
