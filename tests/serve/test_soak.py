"""A short soak of a real HTTP server on 127.0.0.1 (the CI version of `missrec bench soak`)."""

from __future__ import annotations

import threading
import time

import pytest

uvicorn = pytest.importorskip("uvicorn")

from missrec.serve.bench import free_port  # noqa: E402
from missrec.serve.http import ServiceOptions, create_app  # noqa: E402
from missrec.serve.recommender import Recommender  # noqa: E402
from missrec.serve.soak import TOKEN, soak_url  # noqa: E402


def test_short_soak_has_no_5xx_and_leaves_the_catalogue_as_it_was(toy_bundle):
    rec = Recommender(toy_bundle)
    ids = [i for i, alive in zip(rec.item_ids, rec.catalogue.state.alive) if alive]
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(rec, ServiceOptions(token=TOKEN)), host="127.0.0.1",
                                           port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        res = soak_url(f"http://127.0.0.1:{port}", ids, {"text": 16, "image": 16}, n_requests=150,
                       seconds=30, concurrency=4)
    finally:
        server.should_exit = True
        thread.join(10)
        rec.close()
    assert res["requests"] == 150
    assert res["any_5xx"] == 0 and res["valid_5xx"] == 0, res
    answers = res["answers"]
    assert answers.get("malformed:4xx", 0) >= 10 and answers.get("write:2xx", 0) >= 3
    assert rec.n_items == len(ids)  # every soak item was deleted again
