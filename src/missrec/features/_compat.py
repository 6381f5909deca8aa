"""Lazy imports of the optional encoder packages, with errors that name the extra to install.

Heavy packages (sentence-transformers, open_clip, Pillow) are imported only when an encoder
actually needs its model, so ``import missrec`` and fully cached runs stay fast and work
without them.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType

import torch

from ..errors import MissrecError

# Keeps the stand-in operator library alive for the life of the process (see below).
_TORCHVISION_STUB = None


class MissingExtraError(MissrecError):
    """An optional dependency is not installed; the message says which extra provides it."""

    def __init__(self, module: str, extra: str, what: str):
        self.module = module
        self.extra = extra
        super().__init__(
            f"{what} needs the Python package {module!r}, which is not installed; "
            f"install it with: pip install 'missrec[{extra}]'"
        )


def require(module: str, extra: str, what: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingExtraError` naming ``extra``.

    Call :func:`ensure_torchvision_importable` first for packages that import torchvision.
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        # Name the package that is actually missing (it may be a dependency of ``module``).
        raise MissingExtraError(e.name or module, extra, what) from None


def ensure_torchvision_importable() -> None:
    """Make ``import torchvision`` work when its compiled ops cannot load.

    Why: PyPI's Linux torchvision wheels are built against the CUDA torch. Beside a CPU-only
    torch (``torch==2.13.0+cpu``, as in the development venv) their ``_C`` extension cannot
    load, and torchvision's own ``_meta_registrations`` then fails on
    ``register_fake("torchvision::nms")``. transformers (hence sentence-transformers) and
    open_clip import torchvision, so the whole encoder stack would fail to import. We only need
    torchvision's pure-Python parts (transforms), so we declare the two operator schemas that
    the registration expects and import again; the compiled ops (nms, roi_align...) stay
    unavailable, which none of our encoders use. With a working torchvision this is a no-op.
    """
    global _TORCHVISION_STUB
    if "torchvision" in sys.modules and hasattr(sys.modules["torchvision"], "__version__"):
        return
    try:
        importlib.import_module("torchvision")
        return
    except ModuleNotFoundError:
        return  # not installed: the packages that need it report it themselves
    except RuntimeError as e:
        if "torchvision::" not in str(e):
            raise
    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[name]
    if _TORCHVISION_STUB is None:
        lib = torch.library.Library("torchvision", "DEF")
        lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        lib.define("qnms(Tensor qdets, Tensor scores, float iou_threshold) -> Tensor")
        _TORCHVISION_STUB = lib
    importlib.import_module("torchvision")
