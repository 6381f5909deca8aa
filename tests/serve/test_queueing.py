"""Ranking passes take the oldest waiting calls first, and at most MAX_BATCH histories
(a larger call goes alone), in the flat combining of Recommender.recommend as on the loop."""

from __future__ import annotations

import threading
import time

from missrec.serve.queueing import MAX_BATCH, take_batch
from missrec.serve.recommender import Recommender


def test_take_batch_is_first_come_first_served_and_bounded():
    pending = [1, 30, 40, 1, 100, 2]
    passes = []
    while pending:
        taken, pending = take_batch(pending, lambda n: n, 64)
        passes.append(taken)
    assert passes == [[1, 30], [40, 1], [100], [2]]


def test_queued_calls_are_ranked_oldest_first_in_bounded_passes(toy_bundle):
    rec = Recommender(toy_bundle, writable=False)
    calls = [[[f"i{1 + (j + h) % 50}"] for h in range(30)] for j in range(5)]  # 150 histories
    alone = [rec.recommend(c, k=3) for c in calls]
    passes = []
    rank = rec._rank
    rec._rank = lambda jobs: passes.append([calls.index(j.histories) for j in jobs]) or rank(jobs)
    answers = [None] * len(calls)
    with rec._lock:  # the model is busy: every call queues
        threads = []
        for j, c in enumerate(calls):
            threads.append(threading.Thread(target=lambda j=j, c=c: answers.__setitem__(j, rec.recommend(c, k=3))))
            threads[-1].start()
            deadline = time.monotonic() + 30
            while len(rec._queue) < j + 1 and time.monotonic() < deadline:  # queued in this order
                time.sleep(0.001)
    for t in threads:
        t.join(30)
    assert [j for p in passes for j in p] == [0, 1, 2, 3, 4]
    assert all(sum(len(calls[j]) for j in p) <= MAX_BATCH for p in passes)
    assert [[r.items for r in a] for a in answers] == [[r.items for r in a] for a in alone]
