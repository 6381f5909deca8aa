"""The encoder interface: batching, on-disk cache by content, determinism, failures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from _featkit import CountingTextEncoder
from missrec.errors import MissrecError
from missrec.features.base import EncodeError
from missrec.features.cache import FeatureCache, default_cache_dir, file_digest

TEXTS = ["red glue", "blue tape", "sanding roll", "red glue"]


def test_default_cache_dir_follows_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MISSREC_CACHE", str(tmp_path / "elsewhere"))
    assert default_cache_dir() == tmp_path / "elsewhere"
    monkeypatch.delenv("MISSREC_CACHE")
    assert default_cache_dir() == Path.home() / ".cache" / "missrec"


def test_encode_shape_dtype_and_batching() -> None:
    enc = CountingTextEncoder(dim=5, batch_size=2)
    out = enc.encode(TEXTS)
    assert out.shape == (4, 5) and out.dtype == np.float32
    # 3 distinct texts in batches of 2 -> 2 model calls; the duplicate is encoded once.
    assert enc.calls == 2 and sorted(enc.seen) == sorted(set(TEXTS))
    np.testing.assert_array_equal(out[0], out[3])


def test_second_call_is_served_from_cache_without_model() -> None:
    first = CountingTextEncoder(batch_size=2)
    a = first.encode(TEXTS)
    second = CountingTextEncoder(batch_size=2)  # a new process would build a new encoder
    res = second.encode_partial(TEXTS)
    assert second.calls == 0, "a fully cached run must not call the model"
    assert res.n_cached == 3 and res.n_computed == 0
    np.testing.assert_array_equal(res.matrix, a)


def test_cache_is_per_identity_and_content() -> None:
    CountingTextEncoder(tag="v1").encode(["x", "y"])
    other = CountingTextEncoder(tag="v2")  # e.g. other weights: nothing may be shared
    other.encode(["x"])
    assert other.calls == 1
    again = CountingTextEncoder(tag="v1")
    again.encode(["x", "y", "z"])  # only the new content goes to the model
    assert again.seen == ["z"]


def test_cache_dir_argument_and_no_cache(tmp_path: Path) -> None:
    enc = CountingTextEncoder(cache_dir=tmp_path / "c")
    enc.encode(["a"])
    assert enc.cache is not None and enc.cache.path.is_relative_to(tmp_path / "c") and len(enc.cache) == 1
    off = CountingTextEncoder(use_cache=False)
    off.encode(["a"])
    off.encode(["a"])
    assert off.calls == 2 and off.cache is None


def test_deterministic_without_cache() -> None:
    a = CountingTextEncoder(use_cache=False).encode(TEXTS)
    b = CountingTextEncoder(use_cache=False).encode(TEXTS)
    np.testing.assert_array_equal(a, b)


def test_failures_are_reported_not_cached() -> None:
    enc = CountingTextEncoder()
    res = enc.encode_partial(["ok", "BAD", 3])
    assert res.ok.tolist() == [True, False, False]
    assert set(res.errors) == {1, 2} and "unencodable" in res.errors[1]
    assert not res.matrix[1:].any()
    with pytest.raises(EncodeError, match="2 of 3 inputs"):
        enc.encode(["ok", "BAD", 3])
    assert len(enc.cache) == 1  # only "ok"


def test_empty_input() -> None:
    out = CountingTextEncoder(dim=7).encode([])
    assert out.shape == (0, 7)


def test_feature_cache_roundtrip(tmp_path: Path) -> None:
    cache = FeatureCache("some:encoder/with odd chars", tmp_path)
    assert cache.get_many(["k"]) == {}
    cache.put_many([("k", np.arange(3, dtype=np.float32))])
    cache.close()
    again = FeatureCache("some:encoder/with odd chars", tmp_path)
    np.testing.assert_array_equal(again.get_many(["k", "missing"])["k"], [0, 1, 2])
    assert FeatureCache("another", tmp_path).path != again.path


def test_file_digest_is_remembered_and_invalidated(tmp_path: Path) -> None:
    f = tmp_path / "w.bin"
    f.write_bytes(b"weights-1")
    d1 = file_digest(f, tmp_path)
    assert file_digest(f, tmp_path) == d1
    f.write_bytes(b"weights-2, longer")  # new size (and mtime): must be re-hashed
    assert file_digest(f, tmp_path) != d1


def test_unusable_cache_dir_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    enc = CountingTextEncoder(cache_dir=blocker)
    with pytest.raises(MissrecError, match="feature cache unusable.*--no-cache"):
        enc.encode(["a"])
