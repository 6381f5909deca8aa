"""CLIP through open_clip from a local checkpoint, on a tiny random CLIP built here."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from missrec.errors import MissrecError
from missrec.features._compat import ensure_torchvision_importable

pytest.importorskip("PIL.Image", reason="needs the 'clip' extra")
ensure_torchvision_importable()
open_clip = pytest.importorskip("open_clip", reason="needs the 'clip' extra")
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from missrec.features.registry import make_encoder  # noqa: E402

TINY = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 16, "head_width": 16},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, object]:
    """A randomly initialised CLIP saved as a state dict, with its model config file."""
    d = tmp_path_factory.mktemp("clip")
    cfg = d / "tiny-clip-test.json"
    cfg.write_text(json.dumps(TINY))
    open_clip.add_model_config(cfg)
    torch.manual_seed(0)
    model = open_clip.create_model("tiny-clip-test", device="cpu").eval()
    ckpt = d / "tiny.pt"
    torch.save(model.state_dict(), ckpt)
    return ckpt, cfg, model


def test_text_tower_matches_reference(tiny_clip) -> None:
    ckpt, cfg, model = tiny_clip
    texts = ["a red glue bottle", "blue tape", "a red glue bottle"]
    enc = make_encoder(f"clip:{ckpt}", "text", clip_arch=str(cfg), batch_size=2)
    out = enc.encode(texts)
    assert out.shape == (3, 16) and out.dtype == np.float32
    tok = open_clip.get_tokenizer("tiny-clip-test")
    with torch.no_grad():
        ref = model.encode_text(tok(texts)).numpy()
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)
    assert enc.dim == 16 and enc.identity.startswith("clip:tiny-clip-test@") and enc.identity.endswith(":text")


def test_image_tower_matches_reference(tiny_clip, tmp_path: Path) -> None:
    ckpt, cfg, model = tiny_clip
    paths = []
    for i, colour in enumerate([(255, 0, 0), (0, 128, 255)]):
        paths.append(tmp_path / f"{i}.png")
        Image.new("RGB", (50, 40), colour).save(paths[-1])
    enc = make_encoder(f"clip:{ckpt}", "image", clip_arch=str(cfg))
    out = enc.encode(paths)
    _, _, preprocess = open_clip.create_model_and_transforms("tiny-clip-test", device="cpu")
    with torch.no_grad():
        ref = model.encode_image(torch.stack([preprocess(Image.open(p).convert("RGB")) for p in paths])).numpy()
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)
    assert enc.identity.endswith(":image") and enc.identity != make_encoder(
        f"clip:{ckpt}", "text", clip_arch=str(cfg)).identity


def test_wrong_architecture_or_path(tiny_clip, tmp_path: Path) -> None:
    ckpt, cfg, _ = tiny_clip
    other = dict(TINY, embed_dim=8)
    wrong = tmp_path / "tiny-other.json"
    wrong.write_text(json.dumps(other))
    with pytest.raises(MissrecError, match="cannot load as CLIP 'tiny-other'"):
        make_encoder(f"clip:{ckpt}", "text", clip_arch=str(wrong)).encode(["x"])
    with pytest.raises(MissrecError, match="checkpoint not found"):
        make_encoder(f"clip:{tmp_path / 'none.pt'}", "text")
    with pytest.raises(MissrecError, match="unknown CLIP architecture"):
        make_encoder(f"clip:{ckpt}", "text", clip_arch="No-Such-Arch").encode(["x"])
