"""The feature encoder that made a modality, rebuilt from the identity the store recorded.

A modality's ``source`` is its encoder's :attr:`~missrec.features.base.Encoder.identity`
(model, weights digest, preprocessing). New raw content (a text, an image file's bytes) is
embedded only by an installed encoder whose identity is exactly that one, so its vectors
live in the trained space.
"""

from __future__ import annotations

from typing import Any

from ..errors import MissrecError
from ..features.registry import make_encoder

# identity prefix -> encoder spec; CLIP identities do not record the checkpoint's path
SPECS = {"minilm:": "minilm", "efficientnet-lite0:": "efficientnet-lite0"}


def modality_encoder(modality: str, source: str, loaded: dict[str, Any]) -> tuple[Any | None, str]:
    """(encoder, "") when ``source`` names an installed ``modality`` encoder, else (None, why)."""
    if source in loaded:
        return loaded[source], ""
    spec = next((s for prefix, s in SPECS.items() if source.startswith(prefix)), None)
    if spec is None:
        return None, f"the bundle's {modality} features come from " \
                     f"{source or 'an unrecorded source'!r}, which cannot be rebuilt here; " \
                     f"send features.{modality}"
    try:
        enc = make_encoder(spec, modality, use_cache=False)
        identity = enc.identity
    except MissrecError as e:
        return None, str(e)
    if identity != source:
        return None, f"the installed {spec} encoder is {identity!r}, the bundle's is {source!r}"
    loaded[source] = enc
    return enc, ""
