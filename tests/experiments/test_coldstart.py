"""The cold-start experiment on a small generated store: held-out items leave training,
come back through add_items, and their targets are ranked (MISSRec, UniSRec, SASRec over
text features) or missed (SASRec-ID)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from missrec.cli import main
from missrec.data.store import SPLIT_VALID, read_store, write_store
from missrec.data.synthetic import synthetic_dataset
from missrec.errors import MissrecError
from missrec.experiments.coldstart import (ColdStartOptions, check_sets, hold_out, model_sets, popularity_ranks,
                                             TOP, report, run_coldstart, target_ranks)
from missrec.serve import Recommender


def test_hold_out_removes_items_everywhere(toy_store):
    ds = read_store(toy_store)
    reduced, held = hold_out(ds, 0.2, 0)
    assert len(held) == 10 and reduced.n_items == 40
    assert not held & set(reduced.items.ids)
    kept = [e for e in ds.items.ids[1:] if e not in held]
    i, j = ds.items.index(kept[3]), reduced.items.index(kept[3])
    assert np.array_equal(ds.features["text"].matrix[i], reduced.features["text"].matrix[j])
    ranks = popularity_ranks(reduced, sorted(held), ds.n_items)
    assert (ranks == ds.n_items - 1).all()  # never seen: last, after every tie


def test_coldstart_ranks_held_out_targets_only_with_added_items(toy_store, tmp_path):
    opts = ColdStartOptions(fraction=0.2, seeds=2, sets=["epochs=1", "batch_size=64"])
    res = run_coldstart(toy_store, tmp_path, opts, log=lambda s: None)
    table = res["results"]
    assert table["missrec"]["held-out targets"]["users"] > 0
    assert table["missrec"]["held-out targets"]["seeds"] == 2 and table["sasrec"]["held-out targets"]["seeds"] == 1
    assert table["sasrec"]["held-out targets"]["recall@50"][0] == 0.0  # it cannot rank them
    assert table["missrec"]["held-out targets"]["recall@50"][0] > 0.0
    for model in ("unisrec", "sasrec-text"):  # inductive: they rank the added items too
        assert table[model]["held-out targets"]["recall@50"][0] > 0.0
        assert table[model]["other targets"]["users"] == table["missrec"]["other targets"]["users"]
    share = table["missrec"]["held-out targets"]["share_above"]
    assert len(share) == 2 and all(0 <= x <= 1 for x in share) and "share_above" not in table["popularity"]["held-out targets"]
    assert 0 <= table["missrec"]["other targets"]["held_out_in_top10"] <= 1
    assert table["sasrec"]["other targets"]["held_out_in_top10"] == 0.0  # ids only: it cannot show them
    saved = json.loads((tmp_path / "coldstart-all.json").read_text())
    assert saved["held_out_items"] == 10 and saved["missrec_vs_best_baseline"]["targets"] == "held-out"
    runs = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.glob("runs/*/seed-*"))
    assert runs == ["runs/missrec/seed-2023", "runs/missrec/seed-2024", "runs/sasrec-text/seed-2023",
                    "runs/sasrec-text/seed-2024", "runs/sasrec/seed-2023", "runs/unisrec/seed-2023",
                    "runs/unisrec/seed-2024"]
    # the text-only variant reuses the trained runs and ranks the same users
    before = {p: p.stat().st_mtime for p in tmp_path.glob("runs/*/seed-*/model.pt")}
    text = run_coldstart(toy_store, tmp_path, dataclasses.replace(opts, text_only=True), log=lambda s: None)
    assert {p: p.stat().st_mtime for p in tmp_path.glob("runs/*/seed-*/model.pt")} == before
    assert text["variant"] == "text"
    assert text["results"]["missrec"]["held-out targets"]["users"] == table["missrec"]["held-out targets"]["users"]
    # missrec compare reads the rank folders
    out = CliRunner().invoke(main, ["compare", str(tmp_path / "ranks/all/held-out/missrec"),
                                    str(tmp_path / "ranks/all/held-out/unisrec"), "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)[0]["users"] == table["missrec"]["held-out targets"]["users"]
    out = CliRunner().invoke(main, ["compare", str(tmp_path / "ranks/all/held-out/missrec"),
                                    str(tmp_path / "ranks/all/held-out/sasrec-text")])
    assert "MISSRec T+V+ID, 2 seed(s)" in out.output and "SASRec T, 2 seed(s)" in out.output  # what each read
    assert "MISSRec − " in report(tmp_path.parent)
    # the validation split: the same runs, the validation users' targets (for choosing settings)
    valid = run_coldstart(toy_store, tmp_path, dataclasses.replace(opts, split="valid"), log=lambda s: None)
    assert {p: p.stat().st_mtime for p in tmp_path.glob("runs/*/seed-*/model.pt")} == before
    ds = read_store(toy_store)
    _, held = hold_out(ds, 0.2, 0)
    valid_targets = ds.interactions.item[ds.interactions.split == SPLIT_VALID]
    n_cold = sum(ds.items.ids[i] in held for i in valid_targets)
    assert valid["split"] == "valid" and valid["results"]["missrec"]["held-out targets"]["users"] == n_cold
    assert (tmp_path / "coldstart-all-valid.json").exists() and (tmp_path / "ranks/all-valid/held-out/missrec").is_dir()
    assert json.loads((tmp_path / "coldstart-all.json").read_text())["results"] == saved["results"]
    assert "validation targets" in report(tmp_path.parent)
    # --only ranks its models again and keeps the others' rows and the comparison
    again = run_coldstart(toy_store, tmp_path, dataclasses.replace(opts, models=["unisrec"]), log=lambda s: None)
    assert list(again["results"]) == ["missrec", "unisrec", "sasrec-text", "sasrec", "popularity"]
    assert again["results"] == saved["results"] and again["missrec_vs_best_baseline"] == saved["missrec_vs_best_baseline"]


def test_held_out_items_above_a_target_match_a_count_over_the_scores(toy_store, tmp_path):
    opts = ColdStartOptions(fraction=0.2, seeds=1, models=["missrec"], sets=["epochs=1", "batch_size=64"])
    run_coldstart(toy_store, tmp_path, opts, log=lambda s: None)
    ds = read_store(toy_store)
    _, held = hold_out(ds, 0.2, 0)
    rec = Recommender(tmp_path / "runs/missrec/seed-2023")
    rec.add_items([{"id": e, "text": e, "features": {m: ds.features[m].matrix[ds.items.index(e)].tolist()
                                                     for m in rec.catalogue.modalities}} for e in sorted(held)])
    histories = [[ds.items.ids[i] for i in (3, 7, 9)], [ds.items.ids[i] for i in (1, 2)]]
    targets = [sorted(held)[0], ds.items.ids[4]]
    ranks, held_above, held_top, _ = target_ranks(rec, histories, targets, held)
    with torch.no_grad():  # the oracle: count over the fused score rows
        res = rec._resolve(histories, "skip", "h")
        scores = rec._scores(rec._batch([r.rows for r in res]), rec.catalogue.state)
    index = rec.catalogue.index
    for u, t in enumerate(targets):
        above = [e for e, r in index.items() if scores[u, r] > scores[u, index[t]]]
        assert ranks[u] == len(above) and held_above[u] == sum(e in held for e in above)
        top = sorted(index, key=lambda e: -float(scores[u, index[e]]))[:TOP]
        assert held_top[u] == sum(e in held for e in top)


def test_a_setting_goes_to_the_models_that_have_it(toy_store, tmp_path):
    opts = ColdStartOptions(sets=["adapter=moe", "epochs=1"])
    assert model_sets("missrec", opts, 2023) == ["adapter=moe", "epochs=1", "seed=2023"]
    assert model_sets("unisrec", opts, 2024) == ["epochs=1", "seed=2024"]  # UniSRec has no `adapter`
    with pytest.raises(MissrecError, match="adaptr: not a setting of any model"):
        check_sets(ColdStartOptions(sets=["adaptr=moe"]))
    # --dry-run lists the runs still to do, with their overrides, and writes nothing
    res = CliRunner().invoke(main, ["experiment", "coldstart", "--out", str(tmp_path / "cs"), "--data",
                                    str(toy_store), "--seeds", "2", "--set", "adapter=moe", "--dry-run"])
    assert res.exit_code == 0, res.output
    assert "7 training run(s) to do" in res.output  # 2 seeds of 3 content models, SASRec-ID once
    assert "unisrec/seed-2024  --set seed=2024" in res.output and "--set adapter=moe seed=2023" in res.output
    assert not (tmp_path / "cs").exists()
    res = CliRunner().invoke(main, ["experiment", "coldstart", "--out", str(tmp_path / "cs"), "--data",
                                    str(toy_store), "--reuse", str(tmp_path)])
    assert res.exit_code != 0 and "--reuse" in res.output and not (tmp_path / "cs").exists()


def test_calibrated_ranks_give_added_items_about_their_share_of_the_top(toy_store, tmp_path):
    opts = ColdStartOptions(fraction=0.2, seeds=1, models=["missrec"], sets=["epochs=1", "batch_size=64"])
    plain = run_coldstart(toy_store, tmp_path, opts, log=lambda s: None)["results"]["missrec"]
    calibrated = run_coldstart(toy_store, tmp_path, dataclasses.replace(opts, calibrate=True),
                               log=lambda s: None)["results"]["missrec"]  # the same trained run, ranked again
    assert (tmp_path / "coldstart-all-calibrated.json").exists() and (tmp_path / "ranks/all-calibrated").is_dir()
    share = 0.2  # the held-out items' share of the catalogue: what the offset aims at, over validation users
    for part in ("held-out targets", "other targets"):
        assert abs(calibrated[part]["held_out_in_top10"] - share) <= abs(plain[part]["held_out_in_top10"] - share) + 0.02
    assert json.loads((tmp_path / "coldstart-all-calibrated.json").read_text())["calibrate"] is True
    found = json.loads((tmp_path / "ranks/all-calibrated/held-out/missrec/seed-2023/calibration.json").read_text())
    assert found["k"] == 10 and found["catalogue_share"] == pytest.approx(0.2)
    assert calibrated["held-out targets"]["added_offset"] == pytest.approx(found["offset"])


def test_a_text_only_store_trains_missrec_on_its_text(tmp_path):
    store = write_store(synthetic_dataset(seed=2, modalities=("text",)), tmp_path / "text-only")
    opts = ColdStartOptions(fraction=0.2, seeds=1, models=["missrec"], sets=["epochs=1", "batch_size=64"])
    res = run_coldstart(store, tmp_path / "cs", opts, log=lambda s: None)["results"]["missrec"]
    assert res["held-out targets"]["users"] > 0
    config = (tmp_path / "cs" / "runs" / "missrec" / "seed-2023" / "config.yaml").read_text()
    assert "- text\n" in config and "- image" not in config
