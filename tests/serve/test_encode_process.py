"""The server embeds new items' content in a child process of lower priority."""

from __future__ import annotations

import os

from missrec.serve.encode_process import EncoderProcess, _encode


def test_the_child_runs_at_lower_priority_and_is_started_only_when_needed():
    proc = EncoderProcess(nice=3)
    try:
        missing = proc.encode("text", "synthetic:0", ["an item"])  # no encoder: no child either
        assert missing.vectors is None and "cannot be rebuilt" in missing.missing and proc._pool is None
        pool = proc._executor()
        ours = os.getpriority(os.PRIO_PROCESS, 0)
        assert pool.submit(os.getpriority, os.PRIO_PROCESS, 0).result(timeout=120) == min(ours + 3, 19)
        assert pool.submit(_encode, "text", "synthetic:0", ["x"]).result(timeout=120).vectors is None
    finally:
        proc.close()
    assert proc._pool is None
