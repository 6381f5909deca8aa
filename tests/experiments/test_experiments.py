"""``missrec experiment``: declared cells, --dry-run plans, overrides, and one real tiny run."""

from __future__ import annotations

import dataclasses

import json
import shutil

import pytest
from click.testing import CliRunner

from missrec.cli import main
from missrec.errors import MissrecError
from missrec.experiments import EXPERIMENTS, ExperimentOptions, cell_overrides, plan_experiment, run_experiment
from missrec.experiments import plan as plan_module
from missrec.experiments.jobs import cell_meta as _cell_meta
from missrec.experiments.stores import RECIPES, ensure_store, recipe_problems, text_encoder_problem
from missrec.report.paper import SCIENTIFIC_STORE_NAMES
from missrec.train.pretrained import model_digest
from missrec.train.resolve import resolve_configs


def planned(name, out, **options):
    return plan_experiment(ExperimentOptions(name, out, **options))


def cells(plan):
    return [j.cell.name for j in plan.jobs]


def test_table3_plan_lists_the_modality_ablation(tmp_path):
    plan = planned("table3", tmp_path, seeds=1, data_root=tmp_path / "none")
    assert cells(plan) == ["missrec-t", "missrec-t-id", "missrec-v", "missrec-v-id", "missrec-tv", "missrec-tv-id",
                           "sasrec", "unisrec-t"]
    by = {j.cell.name: j for j in plan.jobs}
    assert "modalities=image" in by["missrec-v-id"].sets and "mode=transductive" in by["missrec-v-id"].sets
    assert by["missrec-tv"].store == tmp_path / "stores" / "amazon-scientific-mm"
    assert all(j.estimate_s > 0 for j in plan.jobs)
    assert any("does not exist" in p for p in plan.problems)  # no raw data under that root


def test_table5_plan_has_every_variant_and_the_pretrain_pairs(tmp_path):
    plan = planned("table5", tmp_path, seeds=2)
    names = cells(plan)
    assert names[:4] == ["pretrain", "pretrain", "pretrain-no-ss", "pretrain-no-ss"]  # pre-training first
    assert set(names) == {"pretrain", "pretrain-no-ss", "full", "no-adapters", "context-encoder-2",
                          "interest-encoder-2", "no-regulariser", "tokens-added", "kmeans", "full-pretrained",
                          "no-ss-pretrained"}
    sets = {j.cell.name: j.sets for j in plan.jobs if j.seed == 2024}
    assert {"adapter=none", "d=512"} <= set(sets["no-adapters"])
    assert {"decoder=none", "n_enc_layers=2"} <= set(sets["context-encoder-2"])
    assert {"arrangement=released", "n_enc_layers=2"} <= set(sets["interest-encoder-2"])
    assert "gamma=0" in sets["no-regulariser"] and "lambda_ss=0" in sets["pretrain-no-ss"]
    assert "tokens=added" in sets["tokens-added"] and "clustering=kmeans" in sets["kmeans"]
    assert "train.seed=2024" in sets["full"]
    cell4 = next(c for c in EXPERIMENTS["table5"].cells if c.name == "interest-encoder-2")
    assert "closest config" in cell4.note


def test_table2_table4_fig4_plans(tmp_path):
    t2 = planned("table2", tmp_path)
    assert len(t2.jobs) == 12 and {j.cell.store for j in t2.jobs} == {"scientific-mixed", "amazon-scientific-mm"}
    assert cells(planned("fig4", tmp_path)) == cells(t2)
    t4 = planned("table4", tmp_path)
    assert cells(t4) == ["pretrain", "missrec-tv-id-pretrained", "missrec-tv-id", "missrec-tv-pretrained",
                         "missrec-tv"]
    assert t4.jobs[0].cell.pretrain_stores == ("office", "ml-100k")
    assert [j.cell.init_from for j in t4.jobs[1:]] == ["pretrain", None, "pretrain", None]


def test_table2_trains_each_baseline_at_a_setting_its_sweep_tried(tmp_path):
    plan, t2 = planned("baselines", tmp_path), planned("table2", tmp_path)
    per_set = 4 * 4 + 2 * 2
    assert len(plan.jobs) == 2 * per_set
    assert {j.cell.store for j in plan.jobs[:per_set]} == {"amazon-scientific-mm"}
    assert {j.cell.store for j in plan.jobs[per_set:]} == {"scientific-mixed"}
    configs = {j.cell.name: (j.model_cfg, j.train_cfg) for j in plan.jobs}
    runs = {j.cell.name: (j.cell.store, j.model_cfg, j.train_cfg) for j in plan.jobs}
    chosen = {j2.cell.name: next(name for name, run in runs.items()
                                 if run == (j2.cell.store, j2.model_cfg, j2.train_cfg))
              for j2 in t2.jobs if j2.cell.model != "missrec"}
    # the rows with the best mean validation NDCG@10 over three seeds on the subset
    # (docs/baselines.md); table2 trains the full set at the same settings
    expected = {"sasrec": "sasrec-lr3e-4", "sasrec-text": "sasrec-text-lr3e-4", "unisrec-t": "unisrec-t-lr3e-3",
                "unisrec-t-id": "unisrec-t-id-lr3e-3"}
    assert chosen == {f"{p}-{k}": f"{p}-{v}" for p in ("mm", "mixed") for k, v in expected.items()}
    assert configs["mm-sasrec-text"][1].lr == 1e-3 and configs["mm-sasrec-text"][1].batch_size == 2048
    drop = configs["mm-unisrec-t-id-drop0.2"][0]
    assert (drop.dropout, drop.attn_dropout, drop.mode) == (0.2, 0.2, "transductive")
    assert configs["mm-unisrec-t-tau0.05"][0].tau == 0.05
    assert not any("tau" in name for name, (m, _) in configs.items() if not hasattr(m, "tau"))


def test_scientific_tables_keep_unisrecs_subset_rate_while_defaults_train_the_cross_domain_one(tmp_path):
    # UniSRec's default moved to a rate chosen across domains (docs/baselines.md); Tables 2 and 3,
    # Scientific's, keep the rate the subset's search chose
    t3 = {j.cell.name: j.train_cfg for j in planned("table3", tmp_path).jobs}
    defaults = {j.cell.name: j.train_cfg for j in planned("defaults", tmp_path).jobs}
    assert t3["unisrec-t"].lr == 3e-3 and defaults["office-unisrec-default"].lr == 1e-3

def test_user_overrides_apply_where_they_fit(tmp_path):
    exp = EXPERIMENTS["table3"]
    missrec_cell = exp.cells[0]
    sasrec_cell = next(c for c in exp.cells if c.model == "sasrec")
    assert "gamma=0" in cell_overrides(exp, missrec_cell, ["gamma=0", "epochs=1"], 1)
    s = cell_overrides(exp, sasrec_cell, ["gamma=0", "epochs=1"], 1)
    assert "gamma=0" not in s and "epochs=1" in s
    t4 = EXPERIMENTS["table4"]
    pre, ft = t4.cells[0], t4.cells[1]
    assert "epochs=3" in cell_overrides(t4, pre, ["pretrain.epochs=3"], 1)
    assert "epochs=3" not in cell_overrides(t4, ft, ["pretrain.epochs=3"], 1)
    assert cell_overrides(t4, pre, ["epochs=2"], 1).count("epochs=2") == 1  # replaces the cell's epochs=100
    with pytest.raises(MissrecError, match="no cell"):
        planned("table3", tmp_path, sets=["no_such_field=1"])
    with pytest.raises(MissrecError, match="unknown experiment"):
        planned("table9", tmp_path)


def test_dry_run_prints_cells_and_estimate(tmp_path):
    res = CliRunner().invoke(main, ["experiment", "table3", "--out", str(tmp_path / "o"), "--dry-run",
                                    "--data-root", str(tmp_path)])
    assert res.exit_code == 0, res.output
    for name in ("missrec-t ", "missrec-v-id", "missrec-tv-id", "sasrec", "unisrec-t"):
        assert name in res.output
    assert "estimated time" in res.output and "8 runs" in res.output
    assert not (tmp_path / "o" / "runs").exists()


def test_the_report_knows_every_scientific_store_by_name():
    scientific = [r for r in RECIPES.values() if (r.source or "").startswith("amazon-scientific")]
    assert len(scientific) == 3
    assert {r.dataset_name for r in scientific} == set(SCIENTIFIC_STORE_NAMES)
    assert SCIENTIFIC_STORE_NAMES["Scientific-mixed"] == "scientific"


def test_store_problems_are_clear(tmp_path, monkeypatch):
    problems = recipe_problems(RECIPES["office"], tmp_path)
    assert any("amazon-office-2014" in p and "--data-root" in p for p in problems)
    with pytest.raises(MissrecError, match="amazon-office-2014"):
        ensure_store(RECIPES["office"], tmp_path / "stores", tmp_path, log=lambda s: None)
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "sentence_transformers" else real(name, *a))
    assert "missrec[text]" in text_encoder_problem("minilm")


def test_smoke_experiment_end_to_end(tmp_path):
    out = tmp_path / "exp"
    args = ["experiment", "smoke", "--out", str(out), "--set", "epochs=1", "-q"]
    res = CliRunner().invoke(main, args, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    for name in ("sasrec", "sasrec-text", "unisrec-t-id", "missrec-tv-id", "missrec-tv-id-pretrained"):
        r = json.loads((out / "runs" / name / "seed-2023" / "results.json").read_text())
        assert r["epochs"] == 1 and "ndcg@10" in r["test"]
        assert json.loads((out / "runs" / name / "seed-2023" / "cell.json").read_text())["experiment"] == "smoke"
    ft = json.loads((out / "runs" / "missrec-tv-id-pretrained" / "seed-2023" / "results.json").read_text())
    assert ft["transfer_from"].endswith("pretrain/pretrain/seed-2023/model.pt")
    md = (out / "report.md").read_text()
    assert "Smoke test on a generated store" in md and "MISSRec T+V+ID pre-trained" in md
    assert "Pre-training runs" in md and (out / "report.html").exists()
    assert any(p.name.startswith("popularity-") for p in out.glob("*.png"))
    # a second invocation skips every finished (cell, seed)
    res = CliRunner().invoke(main, args, catch_exceptions=False)
    assert res.exit_code == 0
    assert res.output.count("done, skipped") == 6 and "running" not in res.output
    # another folder adopts every run it would repeat exactly, and its report matches
    other = tmp_path / "other"
    res = CliRunner().invoke(main, ["experiment", "smoke", "--out", str(other), "--set", "epochs=1", "-q",
                                    "--reuse", str(out)], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert res.output.count("adopting its results") == 6 and "to run: 0 of 6 (6 adopted" in res.output
    for name in ("sasrec", "missrec-tv-id", "missrec-tv-id-pretrained"):
        mine, theirs = other / "runs" / name / "seed-2023", out / "runs" / name / "seed-2023"
        assert json.loads((mine / "results.json").read_text()) == json.loads((theirs / "results.json").read_text())
        assert json.loads((mine / "cell.json").read_text())["reused_from"] == str(theirs)
    assert (other / "pretrain" / "pretrain" / "seed-2023" / "model.pt").exists()
    assert "MISSRec T+V+ID pre-trained" in (other / "report.md").read_text()
    # a different setting, or different item features, is a different run
    plan = planned("smoke", tmp_path / "third", sets=["epochs=2"], reuse=[out])
    assert all(j.reuse_from is None for j in plan.jobs)
    plan = planned("smoke", tmp_path / "third", sets=["epochs=1"], reuse=[out])
    assert sum(j.reuse_from is not None for j in plan.jobs) == 6
    shutil.copytree(out / "stores" / "synthetic", tmp_path / "third" / "stores" / "synthetic")
    schema_file = tmp_path / "third" / "stores" / "synthetic" / "schema.json"
    schema = json.loads(schema_file.read_text())
    schema["modalities"]["text"]["source"] = "another-encoder"
    schema_file.write_text(json.dumps(schema))
    plan = planned("smoke", tmp_path / "third", sets=["epochs=1"], reuse=[out])
    assert {j.cell.name for j in plan.jobs if j.reuse_from is not None} == {"pretrain"}
    # a finished run made with another configuration (a model's defaults changed since) is flagged
    assert not any(j.stale() for j in planned("smoke", out, sets=["epochs=1"]).jobs)
    res_file = out / "runs" / "sasrec" / "seed-2023" / "results.json"
    r = json.loads(res_file.read_text())
    r["config"]["train"]["lr"] = 0.5
    res_file.write_text(json.dumps(r))
    assert [j.cell.name for j in planned("smoke", out, sets=["epochs=1"]).jobs if j.stale()] == ["sasrec"]
    # so is a fine-tuned run whose pre-training cell has since made another model
    pre = out / "pretrain" / "pretrain" / "seed-2023" / "model.pt"
    assert ft["transfer_from_sha256"] == model_digest(pre)
    shutil.copy(out / "runs" / "missrec-tv-id" / "seed-2023" / "model.pt", pre)
    assert {j.cell.name: j.stale() for j in planned("smoke", out, sets=["epochs=1"]).jobs if j.stale()} == {
        "sasrec": "it trained with another configuration than the plan's",
        "missrec-tv-id-pretrained": "its pre-training cell has made another model since this run started from it"}
    res = CliRunner().invoke(main, args, catch_exceptions=False)
    assert "since this run started from it (delete its folder to re-run)" in res.output


def test_preset_applies_to_from_scratch_cells_that_have_it(tmp_path):
    plan = planned("table4", tmp_path, preset="released")
    by = {j.cell.name: j for j in plan.jobs}
    assert by["missrec-tv"].preset == "released" and by["missrec-tv-id"].preset == "released"
    # pre-training and fine-tuning cells keep their configs
    assert by["pretrain"].preset is None and by["missrec-tv-pretrained"].preset is None
    plan3 = planned("table3", tmp_path, preset="released")
    t3 = {j.cell.name: j for j in plan3.jobs}
    assert t3["sasrec"].preset is None and t3["missrec-v"].preset == "released"
    # the report shows it as its own table, its baselines included
    meta = _cell_meta(plan3.experiment, t3["sasrec"], plan3)
    assert meta["table"] == "table3-released" and "--preset released" in meta["table_title"]
    assert _cell_meta(plan3.experiment, t3["missrec-v"], plan3)["preset"] == "released"
    # overrides that change results make yet another table; speed-only ones do not
    tuned = planned("table3", tmp_path, preset="released", sets=["ema_decay=0.99", "threads=1"])
    meta = _cell_meta(tuned.experiment, tuned.jobs[0], tuned)
    assert meta["table"].startswith("table3-released-") and meta["table_title"].endswith("--set ema_decay=0.99")
    fast = planned("table3", tmp_path, preset="released", sets=["threads=1"])
    assert _cell_meta(fast.experiment, fast.jobs[0], fast)["table"] == "table3-released"
    with pytest.raises(MissrecError, match="unknown preset"):
        planned("table3", tmp_path, preset="nope")
    with pytest.raises(MissrecError, match="no from-scratch cell"):
        planned("smoke", tmp_path, preset="released", only=["sasrec"])


def test_a_run_recorded_before_a_field_existed_compares_with_its_default():
    from missrec.experiments.reuse import comparable_config
    from missrec.model.missrec import MISSRecConfig

    full = dataclasses.asdict(MISSRecConfig())
    old = {"model": {k: v for k, v in full.items() if k != "modality_dropout"},  # before it existed
           "train": {"lr": 1e-3, "threads": 1}}
    same = {"model": full, "train": {"lr": 1e-3, "threads": 2}}
    other = {"model": {**full, "modality_dropout": 0.2}, "train": {"lr": 1e-3, "threads": 1}}
    assert comparable_config(old, "missrec") == comparable_config(same, "missrec")
    assert comparable_config(old, "missrec") != comparable_config(other, "missrec")
    # recorded before the official code's choices were one component (flat, counts as ratios)
    flat = {"model": {**{k: v for k, v in full.items() if k != "official"}, "tokens": "separate",
                      "arrangement": "paper", "reg_form": "paper", "n_clusters": 0.5, "knn_k": 5.0},
            "train": {"lr": 1e-3}}
    assert comparable_config(flat, "missrec") == comparable_config(same, "missrec")
    flat["model"]["tokens"] = "added"
    assert comparable_config(flat, "missrec") != comparable_config(same, "missrec")


def test_parallel_jobs_repeat_the_sequential_runs(tmp_path):
    """--jobs 2 runs cells in worker processes (a fine-tuning cell after its pre-training cell)
    and, at the same thread count, gives every run the sequential run's metrics."""
    args = ["experiment", "smoke", "--set", "epochs=1", "--set", "threads=1", "-q", "--no-plots"]
    for out, extra in (("seq", []), ("par", ["--jobs", "2"])):
        res = CliRunner().invoke(main, [*args, "--out", str(tmp_path / out), *extra], catch_exceptions=False)
        assert res.exit_code == 0, res.output
    assert res.output.count("train.log") == 6 and res.output.count("finished in") == 6
    runs = sorted(p.relative_to(tmp_path / "seq") for p in (tmp_path / "seq").glob("*/*/seed-2023/history.jsonl"))
    assert len(runs) == 6
    for rel in runs:
        seq, par = (json.loads((tmp_path / d / rel).read_text().splitlines()[-1]) for d in ("seq", "par"))
        measured = [k for k in seq if not k.endswith(("seconds", "per_second"))]
        assert "loss" in " ".join(measured)
        assert {k: par[k] for k in measured} == {k: seq[k] for k in measured}, rel
        assert "epoch" in (tmp_path / "par" / rel.parent / "train.log").read_text()
    for rel in (r for r in runs if r.parts[0] == "runs"):
        seq, par = (json.loads((tmp_path / d / rel.parent / "results.json").read_text()) for d in ("seq", "par"))
        assert (par["valid"], par["test"]) == (seq["valid"], seq["test"]), rel
    ft = json.loads((tmp_path / "par" / "runs" / "missrec-tv-id-pretrained" / "seed-2023" / "results.json").read_text())
    assert ft["transfer_from"] == str(tmp_path / "par" / "pretrain" / "pretrain" / "seed-2023" / "model.pt")


def test_parallel_jobs_share_the_cores_unless_threads_is_set(monkeypatch):
    from missrec.experiments import parallel

    monkeypatch.setattr(parallel, "usable_cores", lambda: 8)
    plan = planned("smoke", "unused", sets=["epochs=1"])
    job = parallel.with_thread_share(plan.jobs[0], 3)
    assert job.sets[-1] == "train.threads=2"
    plan = planned("smoke", "unused", sets=["epochs=1", "threads=4"])
    assert parallel.with_thread_share(plan.jobs[0], 3).sets == plan.jobs[0].sets
    assert not any(s.startswith("train.threads=2") for s in plan.jobs[0].sets)


def test_options_are_checked_where_they_are_built(tmp_path):
    with pytest.raises(MissrecError, match="--seeds must be >= 1"):
        ExperimentOptions("smoke", tmp_path, seeds=0)
    with pytest.raises(MissrecError, match="--jobs must be >= 1"):
        ExperimentOptions("smoke", tmp_path, processes=0)
    assert ExperimentOptions("smoke", str(tmp_path), reuse=[str(tmp_path)]).reuse == [tmp_path]


def test_each_job_resolves_its_configuration_once(tmp_path, monkeypatch):
    """Planning resolves every job's configs; a fine-tuning job resolves them once more, when
    its starting checkpoint exists (its architecture is the checkpoint's); running reuses them."""
    calls = []

    def counting(model, *args, **kwargs):
        calls.append((model, args[-1] if len(args) == 4 else None))
        return resolve_configs(model, *args, **kwargs)

    monkeypatch.setattr(plan_module, "resolve_configs", counting)
    options = ExperimentOptions("smoke", tmp_path / "o", sets=["epochs=1"], only=["sasrec", "missrec-tv-id-pretrained"],
                                plots=False)
    plan = run_experiment(options, log=lambda s: None)
    assert len(plan.jobs) == 3 and all(j.done for j in plan.jobs)
    assert len(calls) == 4 and [init for _, init in calls].count(None) == 3
    finetune = plan.job_of("missrec-tv-id-pretrained", 2023)
    assert finetune.from_checkpoint and finetune.train_cfg.epochs == 1
