"""One offset on the scores of items added after training, set so that they take their share
of the top k: against a direct count over the model's scores, kept in the log and the bundle."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from missrec.cli import main

from missrec.serve.calibration import added_share, exposure_offset
from missrec.serve.errors import RequestError
from missrec.serve.recommender import Recommender


def new_items(n: int, dim: int = 16, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [{"id": f"new-{j}", "text": f"new {j}", "features": {"text": rng.normal(size=dim).tolist()}}
            for j in range(n)]


def histories(rec: Recommender, n: int = 40) -> list[list[str]]:
    trained = rec.item_ids[1:51]
    rng = np.random.default_rng(1)
    return [list(rng.choice(trained, size=4, replace=False)) for _ in range(n)]


def test_the_offset_found_gives_added_items_their_share_of_the_top_k():
    g = torch.Generator().manual_seed(0)
    trained, added = torch.randn(500, 10, generator=g).sort(1, descending=True).values, \
        (torch.randn(500, 10, generator=g) - 1.5).sort(1, descending=True).values
    tops = (trained, added)
    assert added_share(tops, 0.0, 10) < 0.3
    offset = exposure_offset(tops, 0.4, 10)
    assert offset > 0 and abs(added_share(tops, offset, 10) - 0.4) < 0.01
    # the oracle: count the added items among each row's 10 best of all 20 scores
    merged = torch.cat([trained, added + offset], 1)
    assert abs(float((merged.argsort(1, descending=True)[:, :10] >= 10).float().mean()) - 0.4) < 0.01


def test_calibrating_a_bundle_shifts_added_items_and_persists(toy_bundle):
    rec = Recommender(toy_bundle)
    rec.add_items(new_items(25))
    hist = histories(rec)
    before = rec.recommend(hist, rec.n_items)
    cal = rec.calibrate_added(hist, k=10)
    assert cal.catalogue_share == pytest.approx(25 / 75) and cal.users == len(hist)
    assert abs(cal.share_after - cal.catalogue_share) < 0.05
    after = rec.recommend(hist, rec.n_items)
    for b, a in zip(before, after):  # scores of added items move by the offset, trained ones stay
        sb, sa = dict(zip(b.items, b.scores)), dict(zip(a.items, a.scores))
        for item, score in sa.items():
            assert score == pytest.approx(sb[item] + (cal.offset if item.startswith("new-") else 0.0), abs=1e-5)
    shown = np.mean([sum(i.startswith("new-") for i in r.items[:10]) / 10 for r in rec.recommend(hist, 10)])
    assert shown == pytest.approx(cal.share_after)
    rec.close()  # the offset is in the log: it replays
    rec = Recommender(toy_bundle)
    assert rec.catalogue.state.added_offset == pytest.approx(cal.offset)
    rec.compact()
    rec.add_items(new_items(3, seed=1)[:1])  # a later change keeps it
    rec.close()
    rec = Recommender(toy_bundle, writable=False)
    assert rec.catalogue.state.added_offset == pytest.approx(cal.offset)
    rec.close()


def test_calibration_needs_added_items(toy_bundle):
    rec = Recommender(toy_bundle)
    with pytest.raises(RequestError, match="added after training"):
        rec.calibrate_added(histories(rec))
    rec.close()


def test_the_cli_calibrates_over_a_stores_histories_and_sets_an_offset(toy_bundle, toy_store):
    rec = Recommender(toy_bundle)
    rec.add_items(new_items(25))
    rec.close()
    res = CliRunner().invoke(main, ["items", "calibrate", str(toy_bundle), "--data", str(toy_store), "--users", "30"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["users"] <= 30 and out["k"] == 10 and abs(out["share_after"] - out["catalogue_share"]) < 0.1
    assert Recommender(toy_bundle, writable=False).catalogue.state.added_offset == pytest.approx(out["offset"])
    res = CliRunner().invoke(main, ["items", "calibrate", str(toy_bundle), "--data", str(toy_store), "--keep"])
    assert res.exit_code == 0 and (toy_bundle / "calibration.json").is_file()
    res = CliRunner().invoke(main, ["items", "calibrate", str(toy_bundle), "--offset", "0"])
    assert res.exit_code == 0 and json.loads(res.output) == {"added_offset": 0.0}
    assert not (toy_bundle / "calibration.json").exists()  # set by hand: no longer recalibrated
    res = CliRunner().invoke(main, ["items", "calibrate", str(toy_bundle)])
    assert res.exit_code != 0 and "--data" in res.output
    holder = Recommender(toy_bundle)  # as a running server would
    res = CliRunner().invoke(main, ["items", "calibrate", str(toy_bundle), "--offset", "0.1"])
    assert res.exit_code == 1 and "holds this bundle" in res.output and len(res.output.strip().splitlines()) == 1
    holder.close()


def test_kept_histories_recalibrate_after_every_write_and_survive_a_restart(toy_bundle):
    rec = Recommender(toy_bundle)
    rec.add_items(new_items(10))
    hist = histories(rec)
    first = rec.calibrate_added(hist, k=10, keep=True)
    report = rec.add_items(new_items(30, seed=2)[10:])  # 20 more: their share grows
    assert report["added_offset"] == pytest.approx(rec.catalogue.state.added_offset)
    shown = np.mean([sum(i.startswith("new-") for i in r.items[:10]) / 10 for r in rec.recommend(hist, 10)])
    assert abs(shown - 30 / 80) < 0.05 and first.catalogue_share == pytest.approx(10 / 60)
    rec.close()
    rec = Recommender(toy_bundle)  # the kept histories come back with the bundle
    offset = rec.remove_items(["new-0"])["added_offset"]
    assert offset == pytest.approx(rec.catalogue.state.added_offset)
    rec.set_added_offset(0.0)  # an offset set by hand stops the recalibration
    assert "added_offset" not in rec.add_items(new_items(31, seed=3)[30:])
    assert rec.catalogue.state.added_offset == 0.0
    rec.close()
