"""``train.train_fraction``: a seeded share of the training users trains; every validation and
test user stays; the draw depends only on the seed (and nests across fractions)."""

from __future__ import annotations

import numpy as np
import pytest

from missrec.config import TrainConfig, from_dict
from missrec.data.batching import build_examples
from missrec.data.store import write_store
from missrec.data.users import choose_users, hold_out_users, keep_user_fraction
from missrec.errors import ConfigError
from missrec.model.missrec import MISSRecConfig
from missrec.train.loop import RunData, StoreTrainer, train

from support import make_dataset

TINY = MISSRecConfig(d=16, n_heads=2, ffn_dim=32, n_clusters=0.3)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return write_store(make_dataset(n_users=40, n_items=30, seed=4), tmp_path_factory.mktemp("fraction") / "s")


def test_the_kept_users_are_a_seeded_subset_of_the_right_size():
    users = np.repeat(np.arange(1, 41), 3)
    kept = choose_users(users, 0.25, seed=7)
    assert len(kept) == 10 and set(kept) <= set(range(1, 41)) and np.all(np.diff(kept) > 0)
    assert np.array_equal(kept, choose_users(users, 0.25, seed=7))  # the seed decides
    assert not np.array_equal(kept, choose_users(users, 0.25, seed=8))
    assert set(kept) <= set(choose_users(users, 0.5, seed=7))  # a smaller share is a subset of a larger one
    assert len(choose_users(users, 0.001, seed=7)) == 1  # at least one user
    assert np.array_equal(choose_users(users, 1.0, seed=7), np.arange(1, 41))


def test_a_held_out_share_leaves_users_on_both_sides(store):
    ex = build_examples(RunData.load(store, [], 50).dataset, "train")
    rest, held = hold_out_users(ex, 0.25, seed=3)
    assert len(rest) + len(held) == len(ex)
    assert not set(rest.users) & set(held.users) and len(set(held.users)) == 10
    assert hold_out_users(ex, 0.0, seed=3) == (ex, None)
    _, all_but_one = hold_out_users(ex, 0.999, seed=3)
    assert len(set(all_but_one.users)) == len(set(ex.users)) - 1


def test_training_keeps_a_fraction_of_users_and_every_valid_and_test_user(store):
    data = RunData.load(store, ["text", "image"], 50)
    cfg = TrainConfig(epochs=1, batch_size=32, seed=11, train_fraction=0.5)
    trainer = StoreTrainer("missrec", store, None, cfg, TINY, data=data, log=lambda s: None)
    trainer.load_data()
    kept = np.unique(trainer.examples.users)
    assert np.array_equal(kept, choose_users(data.train.users, 0.5, 11)) and len(kept) == 20
    # every training example of a kept user, none of the others
    assert np.array_equal(trainer.examples.targets, data.train.targets[np.isin(data.train.users, kept)])
    # valid and test: the full splits, whatever the fraction
    full = build_examples(data.dataset, "test")
    assert np.array_equal(data.test.targets, full.targets) and np.array_equal(data.test.users, full.users)
    res = train("missrec", store, None, cfg, TINY, data=data, log=lambda s: None).results
    assert res["train_users"] == 20 and res["train_examples"] == len(trainer.examples)
    whole = train("missrec", store, None, TrainConfig(epochs=1, batch_size=32, seed=11), TINY, data=data,
                  log=lambda s: None).results
    assert whole["train_users"] == len(np.unique(data.train.users)) and res["test"] != whole["test"]
    assert keep_user_fraction(data.train, 1.0, 11) is data.train


@pytest.mark.parametrize("value", ["0", "1.5", "-0.2"])
def test_a_fraction_outside_its_range_is_one_clear_line(value):
    with pytest.raises(ConfigError, match=r"train\.train_fraction=.*expected in \(0, 1\]"):
        from_dict(TrainConfig, {"train_fraction": value}, "train")
