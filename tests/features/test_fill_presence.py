"""Filling a store: missing text/images are absent (presence 0), never fake zero features."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from _featkit import CountingTextEncoder, MeanColourEncoder, make_store
from missrec.data.store import read_schema, read_store
from missrec.errors import MissrecError
from missrec.features.fill import fill_features, resolve_image

Image = pytest.importorskip("PIL.Image")


def _png(path: Path, colour: tuple[int, int, int]) -> Path:
    Image.new("RGB", (6, 4), colour).save(path)
    return path


def test_text_presence_follows_empty_text(tmp_path: Path) -> None:
    store = make_store(tmp_path / "s", ["a", "b", "c", "d"], texts=["glue", "", "   ", "tape"])
    enc = CountingTextEncoder(dim=4)
    (report,) = fill_features(store, text=enc)
    ds = read_store(store)
    f = ds.features["text"]
    assert f.present.tolist() == [False, True, False, False, True]
    assert f.matrix.shape == (5, 4)
    assert not f.matrix[[0, 2, 3]].any()
    assert f.matrix[[1, 4]].any(axis=1).all()
    assert sorted(enc.seen) == ["glue", "tape"], "empty texts must not be encoded"
    assert report.n_present == 2 and report.n_no_input == 2
    assert read_schema(store)["modalities"]["text"]["source"] == enc.identity


def test_image_presence_missing_and_unreadable(tmp_path: Path) -> None:
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    _png(imgs / "a.png", (255, 0, 0))                 # found by item id
    _png(imgs / "remote-b.jpg", (0, 255, 0))          # found by the URL's file name
    (imgs / "c.jpg").write_bytes(b"not an image")     # unreadable -> absent
    own = _png(tmp_path / "d-own.png", (0, 0, 255))   # an absolute path stored in the item
    store = make_store(tmp_path / "s", ["a", "b", "c", "d", "e"],
                       images=[None, "https://img.example/x/remote-b.jpg", None, str(own),
                               "https://img.example/e.jpg"])  # e: URL only, no local file
    (report,) = fill_features(store, image=MeanColourEncoder(), images_dir=imgs)
    f = read_store(store).features["image"]
    assert f.present.tolist() == [False, True, True, False, True, False]
    np.testing.assert_allclose(f.matrix[1], [1, 0, 0])
    np.testing.assert_allclose(f.matrix[2], [0, 1, 0], atol=0.02)  # JPEG is lossy
    np.testing.assert_allclose(f.matrix[4], [0, 0, 1])
    assert not f.matrix[[0, 3, 5]].any()
    assert report.n_failed == 1 and "not a readable image" in report.first_error
    assert report.n_no_input == 1
    assert "1 unreadable" in report.summary()


def test_resolve_image_order(tmp_path: Path) -> None:
    d = tmp_path / "imgs"
    d.mkdir()
    for name in ("A1.png", "A1.jpg", "pic.jpg", "rel.webp"):
        (d / name).write_bytes(b"x")
    assert resolve_image("A1", None, d) == d / "A1.jpg"  # .jpg preferred over .png
    assert resolve_image("A1", "https://h/p/pic.jpg", d) == d / "pic.jpg"
    assert resolve_image("A1", "rel.webp", d) == d / "rel.webp"
    assert resolve_image("zz", "https://h/none.jpg", d) is None
    assert resolve_image("A1", "https://h/pic.jpg", None) is None  # nothing is downloaded


def test_refill_is_served_from_cache(tmp_path: Path) -> None:
    store = make_store(tmp_path / "s", ["a", "b"], texts=["one", "two"])
    fill_features(store, text=CountingTextEncoder())
    enc = CountingTextEncoder()
    (report,) = fill_features(store, text=enc)
    assert enc.calls == 0 and report.n_cached == 2 and report.n_computed == 0


class _NaNForPoison(CountingTextEncoder):
    """Returns NaN features for the text 'poison' (a model that overflowed on one input)."""

    def _forward(self, prepared):
        out = super()._forward(prepared)
        out[[t == "poison" for t in prepared]] = np.nan
        return out


def test_non_finite_encoder_output_is_an_error_or_missing(tmp_path: Path) -> None:
    store = make_store(tmp_path / "s", ["a", "b", "c"], texts=["glue", "poison", "tape"])
    with pytest.raises(MissrecError, match=r"counting:v1:4 \(text\): output row 1 \(item 'b'\), column 0 holds NaN"):
        fill_features(store, text=_NaNForPoison(dim=4, use_cache=False))
    assert "text" not in read_schema(store)["modalities"]  # nothing written
    (report,) = fill_features(store, text=_NaNForPoison(dim=4, use_cache=False), non_finite="missing")
    f = read_store(store).features["text"]
    assert f.present.tolist() == [False, True, False, True]
    assert np.isfinite(f.matrix).all() and not f.matrix[2].any()
    assert report.n_failed == 1 and report.first_error == "NaN or infinite features"
