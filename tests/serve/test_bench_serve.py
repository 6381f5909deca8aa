"""`missrec bench serve --during-write N`: its JSON keeps every key and adds the write's.

The servers run in this process (uvicorn in a thread) with an encoder that embeds any text
as a constant vector, so the test needs neither MiniLM nor a child process."""

from __future__ import annotations

import json
import os
import threading
import time

import numpy as np
import pytest
from click.testing import CliRunner

uvicorn = pytest.importorskip("uvicorn")

from missrec.cli import main  # noqa: E402
from missrec.serve import bench  # noqa: E402
from missrec.serve.content import Encoded  # noqa: E402
from missrec.serve.http import ServiceOptions, create_app  # noqa: E402
from missrec.serve.recommender import Recommender  # noqa: E402


class ConstantEncoder:
    def encode(self, modality, source, contents):
        return Encoded(np.full((len(contents), 16), 0.3, np.float32))

    def close(self):
        pass


class ThreadServer:
    """What bench.start_server returns, for a server in a thread of this process."""

    def __init__(self, bundle, token_file=None, approximate=False, threads=1, timeout=300.0, extra=()):
        flags = dict(zip(extra[::2], extra[1::2]))
        self.rec = Recommender(bundle, encoder=ConstantEncoder())
        options = ServiceOptions(token=token_file.read_text() if token_file else None,
                                 max_items_per_request=int(flags.get("--max-items", 1000)))
        port = bench.free_port()
        self.server = uvicorn.Server(uvicorn.Config(create_app(self.rec, options), host="127.0.0.1",
                                                    port=port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        self.url = f"http://127.0.0.1:{port}"

    def rss_mb(self) -> float:
        return bench.process_rss_mb(os.getpid())

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.rec.close()


def test_during_write_adds_the_write_figures_to_every_existing_key(toy_bundle, monkeypatch):
    monkeypatch.setattr(bench, "start_server", ThreadServer)
    res = CliRunner().invoke(main, ["bench", "serve", str(toy_bundle), "--requests", "40", "--seconds", "5",
                                    "--during-write", "1200", "--json"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    for key in ("bundle", "catalogue_size", "k", "server_threads", "load_average", "machine"):
        assert key in out
    for c in ("concurrency_1", "concurrency_32"):
        assert {"requests", "errors", "p50_ms", "p99_ms", "requests_per_second"} <= set(out["exact"][c])
    assert out["write_items"] == 1200 and out["write_seconds"] > 0  # over the default cap: one request
    assert out["read_requests"] >= 1 and 0 < out["read_p50_ms"] <= out["read_p99_ms"]
    rec = Recommender(toy_bundle, writable=False)
    assert rec.n_items == 50  # the write went to a copy
    rec.close()
