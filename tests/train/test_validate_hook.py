"""``train(on_validate=...)``: the hook sees every validation, and what it raises ends the run
with no results written (a hyper-parameter search prunes a trial this way)."""

from __future__ import annotations

import json

import pytest
from support import make_dataset

from missrec.config import TrainConfig
from missrec.data.store import write_store
from missrec.model.sasrec import SASRecConfig
from missrec.train.loop import train
from missrec.train.resume import STATE_FILE


class Stop(Exception):
    pass


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return write_store(make_dataset(n_users=30, n_items=25), tmp_path_factory.mktemp("hook") / "store")


def configs(**train):
    return TrainConfig(batch_size=16, threads=1, seed=3, **train), SASRecConfig(hidden=16)


def test_the_hook_sees_each_validated_epoch(store, tmp_path):
    seen = []
    result = train("sasrec", store, tmp_path / "run", *configs(epochs=4, eval_every=2),
                   log=lambda s: None, on_validate=lambda epoch, metrics: seen.append((epoch, metrics)))
    history = [json.loads(line) for line in (tmp_path / "run" / "history.jsonl").read_text().splitlines()]
    assert [e for e, _ in seen] == [2, 4]
    assert [m["ndcg@10"] for _, m in seen] == [history[1]["valid_ndcg@10"], history[3]["valid_ndcg@10"]]
    assert result.results["valid"]["ndcg@10"] == max(m["ndcg@10"] for _, m in seen)


def test_what_the_hook_raises_ends_the_run_before_results(store, tmp_path):
    def stop_at_2(epoch, metrics):
        if epoch == 2:
            raise Stop

    run = tmp_path / "run"
    with pytest.raises(Stop):
        train("sasrec", store, run, *configs(epochs=5), log=lambda s: None, on_validate=stop_at_2)
    assert not (run / "results.json").exists() and not (run / "model.pt").exists()
    assert len((run / "history.jsonl").read_text().splitlines()) == 1  # epoch 2 was not recorded
    assert (run / STATE_FILE).exists()  # the state after epoch 1: the run could be resumed
