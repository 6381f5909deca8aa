"""``missrec experiment transfer``: the leave-one-domain-out plan, and one toy target end to end."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from missrec.cli import main
from missrec.errors import MissrecError
from missrec.experiments import ExperimentOptions, plan_experiment
from missrec.experiments.parallel import _blocked_by
from missrec.train.pretrained import model_digest

REGIMES = ("finetune", "scratch", "unisrec", "popularity")


def planned(out, **options):
    return plan_experiment(ExperimentOptions("transfer", out, **options))


def test_the_default_plan_leaves_one_domain_out(tmp_path):
    plan = planned(tmp_path, seeds=3)
    names = [j.cell.name for j in plan.jobs]
    targets = ("scientific-mm", "office", "ml-100k")
    assert names[:3] == [f"{t}-pretrain" for t in targets]  # pre-training first, once each
    settings = {j.cell.name for j in plan.jobs}
    assert settings == ({f"{t}-{c}" for t in targets for c in ("pretrain", "zero-shot")}
                        | {f"{t}-{r}-f{f}" for t in targets for r in REGIMES for f in ("0.05", "0.2", "1")})
    assert len(plan.jobs) == 3 * 2 + 3 * 3 * 4 * 3  # pre-training and zero-shot once; the rest per seed
    by = {(j.cell.name, j.seed): j for j in plan.jobs}
    assert {t: by[(f"{t}-pretrain", 2023)].cell.pretrain_stores for t in targets} == {
        "scientific-mm": ("office", "ml-100k"), "office": ("scientific-mixed", "ml-100k"),
        "ml-100k": ("scientific-mixed", "office")}
    pre = by[("office-pretrain", 2023)]
    assert pre.cell.max_per_domain == 0 and pre.train_cfg.heldout_share == 0.05 and pre.preset == "inductive"
    assert pre.model_cfg.n_clusters == "2%" and pre.model_cfg.modalities == ["text", "image"]
    # every seed of a fine-tuning cell starts from the one pre-training; zero-shot evaluates it
    for seed in (2023, 2024, 2025):
        assert plan.source_of(by[("office-finetune-f0.2", seed)]) is pre
    assert plan.source_of(by[("office-zero-shot", 2023)]) is pre
    assert plan.source_of(by[("office-scratch-f1", 2024)]) is None
    assert _blocked_by(by[("office-finetune-f1", 2025)], plan) is pre
    # fine-tuning and training from scratch: the same configuration (the default preset) on the same users
    ft, scratch = by[("office-finetune-f0.2", 2024)], by[("office-scratch-f0.2", 2024)]
    assert ft.model_cfg == scratch.model_cfg and ft.train_cfg == scratch.train_cfg
    assert ft.train_cfg.train_fraction == 0.2 and ft.model_cfg.mode == "inductive"
    assert ft.model_cfg.modalities == ["text"] and by[("scientific-mm-scratch-f1", 2023)].model_cfg.modalities == [
        "text", "image"]
    assert by[("ml-100k-unisrec-f0.05", 2025)].model_cfg.mode == "inductive"
    assert by[("ml-100k-popularity-f0.05", 2025)].model_cfg is None
    assert by[("ml-100k-popularity-f0.05", 2025)].train_cfg.train_fraction == 0.05
    # a target's title names what it was pre-trained on: full Scientific, not the subset the scientific-mm target is
    titles = {t: plan.experiment.tables[f"transfer-{t}"].title for t in targets}
    assert titles["office"] == "Transfer to Office: pre-trained on Scientific (full set) + MovieLens-100K (seed 2023)"
    assert titles["scientific-mm"].startswith("Transfer to Scientific (image subset): pre-trained on Office + ")


def test_targets_and_fractions_choose_the_cells(tmp_path):
    plan = planned(tmp_path, targets=["office"], fractions=[1.0, 0.5, 0.5])
    assert [j.cell.name for j in plan.jobs] == ["office-pretrain", "office-zero-shot"] + [
        f"office-{r}-f{f}" for f in ("0.5", "1") for r in REGIMES]
    with pytest.raises(MissrecError, match="unknown target"):
        planned(tmp_path, targets=["books"])
    with pytest.raises(MissrecError, match="--fractions"):
        planned(tmp_path, fractions=[1.5])
    with pytest.raises(MissrecError, match="share one architecture"):
        planned(tmp_path, preset="released")
    with pytest.raises(MissrecError, match="belong to experiment transfer"):
        plan_experiment(ExperimentOptions("table3", tmp_path, targets=["office"]))
    res = CliRunner().invoke(main, ["experiment", "transfer", "--out", str(tmp_path / "o"), "--dry-run",
                                    "--targets", "office", "--fractions", "0.2,x"])
    assert res.exit_code == 1 and "--fractions" in res.output and len(res.output.strip().splitlines()) == 1
    res = CliRunner().invoke(main, ["experiment", "transfer", "--out", str(tmp_path / "o"), "--dry-run",
                                    "--targets", "office", "--seeds", "2", "--only", "office-finetune-f0.2"])
    assert res.exit_code == 0, res.output
    assert "3 runs" in res.output and "office-pretrain" in res.output and "estimated time" in res.output


def test_one_toy_target_end_to_end(tmp_path):
    """A text-only target, pre-trained on two text + image toy domains, at fractions 0.5 and 1."""
    out = tmp_path / "exp"
    args = ["experiment", "transfer", "--out", str(out), "--targets", "toy-text", "--fractions", "0.5,1",
            "--seeds", "1", "--set", "epochs=1", "--set", "threads=1", "-q"]
    res = CliRunner().invoke(main, args, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    pre = json.loads((out / "pretrain" / "toy-text-pretrain" / "seed-2023" / "results.json").read_text())
    assert pre["heldout"]["users"] > 0 and pre["best_epoch"] == 1 and pre["config"]["model"]["modalities"] == [
        "text", "image"]
    runs = out / "runs"
    results = {d.name: json.loads((d / "seed-2023" / "results.json").read_text()) for d in runs.iterdir()}
    assert set(results) == {"toy-text-zero-shot"} | {f"toy-text-{r}-f{f}" for r in REGIMES for f in ("0.5", "1")}
    ft = results["toy-text-finetune-f0.5"]
    assert ft["transfer_from"].endswith("pretrain/toy-text-pretrain/seed-2023/model.pt")
    assert ft["config"]["model"]["modalities"] == ["text"] and ft["config"]["train"]["train_fraction"] == 0.5
    assert ft["train_users"] == results["toy-text-scratch-f0.5"]["train_users"] == 40
    assert results["toy-text-popularity-f0.5"]["train_users"] == 40
    assert results["toy-text-scratch-f1"]["train_users"] == 80
    assert results["toy-text-zero-shot"]["kind"] == "zero-shot"
    # both name the pre-trained model they started from by its digest, not only its path
    pre_model = out / "pretrain" / "toy-text-pretrain" / "seed-2023" / "model.pt"
    assert results["toy-text-zero-shot"]["transfer_from_sha256"] == ft["transfer_from_sha256"] == model_digest(
        pre_model)
    assert results["toy-text-popularity-f1"]["kind"] == "popularity"
    assert all((runs / name / "seed-2023" / "test_ranks.npy").exists() for name in results)
    cell = json.loads((runs / "toy-text-finetune-f0.5" / "seed-2023" / "cell.json").read_text())
    assert cell["facets"] == {"target": "toy-text", "regime": "fine-tune", "fraction": "0.5"}
    assert cell["pretrain_seed"] == 2023
    # the zero-shot cell is what `missrec evaluate` says of the pre-trained model on the target
    store = out / "stores" / "synthetic-text"
    evaluated = CliRunner().invoke(main, ["evaluate", str(out / "pretrain" / "toy-text-pretrain" / "seed-2023"),
                                          "--data", str(store), "--json"])
    assert evaluated.exit_code == 0, evaluated.output
    zero = json.loads(evaluated.output)
    assert {k: zero[k] for k in results["toy-text-zero-shot"]["test"]} == results["toy-text-zero-shot"]["test"]
    # the report: regime x fraction, fine-tune against scratch user by user, recall@10 against the fraction
    md = (out / "report.md").read_text()
    table = md[md.index("## Transfer to toy text-only"):md.index("fine-tune − scratch, paired")]
    assert "| fraction | regime | seeds | R@10 | R@50 | N@10 | N@50 | valid N@10 |" in table
    rows = [line.split(" | ")[:2] for line in table.splitlines() if line.startswith("| ") and "---" not in line]
    assert rows[1:] == [["| 0 (zero-shot)", "zero-shot"]] + [
        [f"| {f}", r] for f in ("0.5", "1") for r in ("fine-tune", "scratch", "UniSRec", "popularity")]
    assert "fine-tune − scratch, paired over test users" in md and "| 0.5 | recall@10 |" in md
    assert (out / "fractions-toy-text.png").exists() and "fractions-toy-text.png" in md
    # a second invocation skips every finished cell
    again = CliRunner().invoke(main, args, catch_exceptions=False)
    assert again.exit_code == 0 and again.output.count("done, skipped") == 10 and "running" not in again.output
