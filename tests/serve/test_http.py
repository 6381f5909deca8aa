"""The HTTP service: routes, auth, persistence across restarts, and no 5xx for any input."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from missrec.serve.http import ServiceOptions, create_app  # noqa: E402
from missrec.serve.recommender import Recommender  # noqa: E402

TOKEN = "test-token-123"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def client(bundle, **options) -> tuple[TestClient, Recommender]:
    rec = Recommender(bundle)
    opts = ServiceOptions(**{"token": TOKEN, **options})
    return TestClient(create_app(rec, opts)), rec


def near_duplicate(rec: Recommender, row: int, seed: int) -> dict[str, list[float]]:
    rng = np.random.default_rng(seed)
    st = rec.catalogue.state
    return {m: (st.raw[m][row] + 0.01 * rng.normal(size=st.raw[m].shape[1])).tolist()
            for m in st.raw if st.present[m][row]}


def test_added_item_is_recommended_survives_restart_and_is_gone_after_delete(toy_bundle):
    c, rec = client(toy_bundle)
    # an item close to i7 and its near-duplicates: a history of those ranks it first
    row = rec.catalogue.index["i7"]
    feats = near_duplicate(rec, row, 0)
    r = c.put("/items", json={"items": [{"id": "NEW-1", "text": "a new item", "features": feats}]},
              headers=AUTH)
    assert r.status_code == 200 and r.json() == {"added": 1, "replaced": 0, "catalogue_size": 51}
    dups = []
    for s in (1, 2):
        dups.append(f"DUP-{s}")
        c.put("/items", json={"items": [{"id": dups[-1], "features": near_duplicate(rec, row, s)}]},
              headers=AUTH)
    body = {"history": dups, "k": 5, "exclude_seen": True}
    first = c.post("/recommend", json=body).json()
    assert "NEW-1" in first["items"][:2]
    assert c.get("/items/NEW-1").json()["text"] == "a new item"
    rec.close()
    c, rec = client(toy_bundle)  # restart: the log is replayed and compacted
    again = c.post("/recommend", json=body).json()
    assert again["items"] == first["items"]
    assert again["scores"] == pytest.approx(first["scores"], abs=1e-6)
    assert c.delete("/items/NEW-1", headers=AUTH).json() == {"removed": 1, "catalogue_size": 52}
    assert c.get("/items/NEW-1").status_code == 404
    assert "NEW-1" not in c.post("/recommend", json={**body, "k": 52}).json()["items"]
    rec.close()
    c, rec = client(toy_bundle)
    assert c.get("/items/NEW-1").status_code == 404 and rec.n_items == 52
    rec.close()


def test_writes_need_a_configured_token(toy_bundle):
    item = {"items": [{"id": "x", "features": {"text": [0.0] * 15 + [1.0]}}]}
    c, rec = client(toy_bundle, token=None)
    assert c.put("/items", json=item, headers=AUTH).status_code == 403
    assert c.delete("/items/i1", headers=AUTH).status_code == 403
    rec.close()
    c, rec = client(toy_bundle)
    assert c.put("/items", json=item).status_code == 401
    assert c.put("/items", json=item, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert c.put("/items", json=item, headers={"Authorization": TOKEN}).status_code == 401
    assert c.post("/recommend", json={"history": ["i1"]}).status_code == 200  # reads are open
    assert c.put("/items", json=item, headers=AUTH).status_code == 200
    rec.close()
    c, rec = client(toy_bundle, protect_reads=True)
    assert c.post("/recommend", json={"history": ["i1"]}).status_code == 401
    assert c.post("/recommend", json={"history": ["i1"]}, headers=AUTH).status_code == 200
    assert c.get("/healthz").status_code == 200
    rec.close()


def test_recommend_single_and_many_and_embed(toy_bundle):
    c, rec = client(toy_bundle)
    one = c.post("/recommend", json={"history": ["i1", "i2"], "k": 3}).json()
    assert set(one) == {"items", "scores"} and len(one["items"]) == 3
    many = c.post("/recommend", json={"histories": [["i1", "i2"], ["i9"]], "k": 3}).json()
    assert many["results"][0]["items"] == one["items"]
    skip = c.post("/recommend", json={"history": ["i1", "zzz"], "k": 3, "unknown": "skip"}).json()
    assert skip["skipped"] == ["zzz"]
    long = c.post("/recommend", json={"history": ["i1", "i2"] * 30, "k": 3}).json()
    assert long["truncated"] == 60 - rec.max_len
    emb = c.post("/embed", json={"history": ["i1", "i2"]}).json()
    assert len(emb["vector"]) == 16
    assert c.get("/readyz").json()["catalogue_size"] == 50
    text = c.get("/metrics").text
    assert 'missrec_requests_total{method="POST",route="/recommend",status="200"} 4' in text
    assert "missrec_request_seconds_bucket" in text and "missrec_catalogue_items 50" in text
    assert c.get("/docs").status_code == 200
    rec.close()


BAD = [
    ("post", "/recommend", {"history": ["i1", "nope"]}, 404, "history"),
    ("post", "/recommend", {"history": []}, 422, "history"),
    ("post", "/recommend", {"history": ["i1"], "k": 0}, 422, "k"),
    ("post", "/recommend", {"history": ["i1"], "k": 51}, 422, "k"),
    ("post", "/recommend", {"history": ["i1"], "k": -3}, 422, "k"),
    ("post", "/recommend", {"history": ["i1"], "k": "10"}, 422, "k"),
    ("post", "/recommend", {"history": ["i1"], "k": 2.5}, 422, "k"),
    ("post", "/recommend", {"history": ["i1"], "k": 10 ** 30}, 422, "k"),
    ("post", "/recommend", {"history": "i1"}, 422, "history"),
    ("post", "/recommend", {"history": [1, 2]}, 422, "history[0]"),
    ("post", "/recommend", {"history": ["i1"], "unknown": "maybe"}, 422, "unknown"),
    ("post", "/recommend", {"history": ["i1"], "histories": [["i1"]]}, 422, "history"),
    ("post", "/recommend", {}, 422, "history"),
    ("post", "/recommend", {"histories": []}, 422, "histories"),
    ("post", "/recommend", {"histories": [["i1"], []]}, 422, "histories[1]"),
    ("post", "/recommend", {"history": ["i1"], "extra": 1}, 422, "extra"),
    ("post", "/recommend", [["i1"]], 422, "body"),
    ("post", "/recommend", None, 422, "body"),
    ("post", "/embed", {"history": ["nope"]}, 404, "history"),
    ("put", "/items", {"items": [{"id": "", "features": {"text": [0.0] * 16}}]}, 422, "items[0].id"),
    ("put", "/items", {"items": [{"id": "a"}]}, 422, "items[0]"),
    ("put", "/items", {"items": [{"id": "a", "features": {"text": [1.0] * 3}}]}, 422, "items[0].features.text"),
    ("put", "/items", {"items": [{"id": "a", "features": {"text": ["x"] * 16}}]}, 422, None),
    ("put", "/items", {"items": [{"id": "a", "features": {"smell": [1.0]}}]}, 422, "items[0].features.smell"),
    ("put", "/items", {"items": [{"id": "a", "features": {"text": [1.0] * 16}}] * 2}, 422, "items[1].id"),
    ("put", "/items", {"items": []}, 422, "items"),
    ("put", "/items", {"things": []}, 422, None),
    ("delete", "/items/never-was", None, 404, "id"),
    ("get", "/items/never-was", None, 404, "id"),
    ("get", "/no/such/route", None, 404, "path"),
]


@pytest.mark.parametrize("method,path,body,status,field", BAD)
def test_bad_requests_get_a_4xx_naming_the_field(toy_bundle, method, path, body, status, field):
    c, rec = client(toy_bundle)
    kwargs = {"headers": AUTH}
    if body is not None:
        kwargs["json"] = body
    elif method in ("post", "put"):
        kwargs["content"] = b"{broken json"
        kwargs["headers"] = {**AUTH, "content-type": "application/json"}
    r = c.request(method.upper(), path, **kwargs)
    assert r.status_code == status, r.text
    err = r.json()
    assert set(err) == {"error", "field"} and err["error"]
    if field is not None:
        assert err["field"] == field, err
    rec.close()


def test_body_limit_and_no_5xx_for_random_input(toy_bundle):
    c, rec = client(toy_bundle, max_body_bytes=2000)
    r = c.post("/recommend", json={"history": ["i1"] * 1000})
    assert r.status_code == 413 and r.json()["field"] == "body"
    # a chunked body (no Content-Length) is cut off at the limit as well
    r = c.post("/recommend", content=iter([b'{"history": [' + b'"i1",' * 800, b'"i1"]}']),
               headers={"content-type": "application/json"})
    assert r.status_code == 413
    rng = np.random.default_rng(0)
    values = [None, 0, -1, 1.5, "x", "", [], {}, ["i1"], [["i1"]], True, 10 ** 40, float("nan")]
    keys = ["history", "histories", "k", "exclude_seen", "unknown", "items", "id", "features"]
    for _ in range(150):
        body = {str(keys[i]): values[j] for i, j in zip(rng.integers(0, len(keys), 3),
                                                          rng.integers(0, len(values), 3))}
        for method, path in (("POST", "/recommend"), ("POST", "/embed"), ("PUT", "/items")):
            try:
                r = c.request(method, path, json=body, headers=AUTH)
            except ValueError:  # NaN is not JSON: the client refuses to send it
                continue
            assert r.status_code < 500, (path, body, r.text)
    rec.close()


def test_concurrent_requests_are_batched_and_answer_as_alone(toy_bundle):
    import asyncio

    import httpx

    c, rec = client(toy_bundle)
    bodies = [{"history": [f"i{j}", f"i{j + 1}"], "k": 1 + j % 5, "exclude_seen": j % 2 == 0} for j in range(1, 30)]
    bodies.append({"history": ["ghost"]})  # one bad request in the batch
    alone = [c.post("/recommend", json=b) for b in bodies]
    calls = []
    original = rec.recommend_calls
    rec.recommend_calls = lambda batch: calls.append(len(batch)) or original(batch)

    async def together():
        transport = httpx.ASGITransport(app=create_app(rec, ServiceOptions(token=TOKEN)))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as ac:
            return await asyncio.gather(*(ac.post("/recommend", json=b) for b in bodies))

    for a, t in zip(alone, asyncio.run(together())):
        assert t.status_code == a.status_code
        if a.status_code == 200:
            assert t.json()["items"] == a.json()["items"]
            assert t.json()["scores"] == pytest.approx(a.json()["scores"], abs=1e-5)
        else:
            assert t.json() == a.json()
    assert max(calls) > 1  # requests that arrived together were ranked together
    rec.close()


def test_put_items_over_the_cap_is_a_413_naming_items(toy_bundle):
    c, rec = client(toy_bundle, max_items_per_request=2)
    items = [{"id": f"cap-{j}", "features": {"text": [0.1 * j] * 16}} for j in range(3)]
    r = c.put("/items", json={"items": items}, headers=AUTH)
    assert r.status_code == 413 and r.json()["field"] == "items" and "at most 2" in r.json()["error"]
    assert rec.n_items == 50  # nothing of it was added
    assert c.put("/items", json={"items": items[:2]}, headers=AUTH).status_code == 200
    rec.close()


def test_calibrate_gives_added_items_their_share_and_needs_the_token(toy_bundle):
    c, rec = client(toy_bundle)
    rng = np.random.default_rng(0)
    items = [{"id": f"new-{j}", "features": {"text": rng.normal(size=16).tolist()}} for j in range(25)]
    assert c.put("/items", json={"items": items}, headers=AUTH).status_code == 200
    histories = [[f"i{j}" for j in rng.choice(np.arange(1, 51), 4, replace=False)] for _ in range(40)]
    assert c.post("/items/calibrate", json={"histories": histories}).status_code == 401
    r = c.post("/items/calibrate", json={"histories": histories, "k": 10}, headers=AUTH)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["catalogue_share"] == pytest.approx(25 / 75) and abs(body["share_after"] - body["catalogue_share"]) < 0.05
    assert rec.catalogue.state.added_offset == pytest.approx(body["offset"])
    assert c.post("/items/calibrate", json={"histories": histories, "keep": True}, headers=AUTH).status_code == 200
    more = [{"id": f"more-{j}", "features": {"text": rng.normal(size=16).tolist()}} for j in range(10)]
    r = c.put("/items", json={"items": more}, headers=AUTH)  # found again after the write
    assert r.status_code == 200 and r.json()["added_offset"] == pytest.approx(rec.catalogue.state.added_offset)
    r = c.post("/items/calibrate", json={"offset": 0.0}, headers=AUTH)
    assert r.status_code == 200 and r.json() == {"added_offset": 0.0}
    r = c.post("/items/calibrate", json={"histories": histories, "offset": 1.0}, headers=AUTH)
    assert r.status_code == 422 and r.json()["field"] == "histories"
    r = c.post("/items/calibrate", json={"histories": histories, "k": 0}, headers=AUTH)
    assert r.status_code == 422 and r.json()["field"] == "k"
    rec.close()
