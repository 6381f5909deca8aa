"""``missrec experiment defaults``: each domain's models at their default, tuned on the
domain and chosen across domains, the tuned values read from the tuning folder."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from missrec.cli import main
from missrec.errors import MissrecError
from missrec.experiments import ExperimentOptions, plan_experiment
from missrec.experiments.defaults import config_sets


def planned(out, **options):
    return plan_experiment(ExperimentOptions("defaults", out, **options))


def tuned_folder(root):
    (root / "toy-a" / "sasrec").mkdir(parents=True)
    (root / "toy-a" / "sasrec" / "best.yaml").write_text(
        "# missrec tune\ntrain:\n  lr: 0.003\n  epochs: 50\nmodel:\n  dropout: 0.25\n  attn_dropout: 0.25\n")
    (root / "across" / "sasrec").mkdir(parents=True)
    (root / "across" / "sasrec" / "choice.yaml").write_text("train:\n  lr: 0.0005\nmodel: {}\n")
    return root


def test_the_default_plan_covers_every_domain_and_model(tmp_path):
    plan = planned(tmp_path, seeds=3)
    names = {j.cell.name for j in plan.jobs}
    domains = ("scientific-mm", "scientific-mixed", "office", "ml-100k")
    models = ("missrec", "unisrec", "sasrec-text", "sasrec")
    assert names == {f"{d}-{m}-default" for d in domains for m in models} | {f"{d}-popularity" for d in domains}
    assert len(plan.jobs) == 3 * len(names)
    by = {(j.cell.name, j.seed): j for j in plan.jobs}
    assert by[("office-unisrec-default", 2024)].model_cfg.mode == "inductive"  # UniSRec T
    assert by[("office-missrec-default", 2023)].model_cfg.modalities == ["text"]
    assert by[("scientific-mixed-missrec-default", 2023)].model_cfg.modalities == ["text", "image"]
    assert "32 tuned and chosen-across cells need --tuned DIR" in plan.experiment.plan_note


def test_tuned_values_come_from_the_tuning_folder_without_their_budget(tmp_path):
    tuned = tuned_folder(tmp_path / "tune")
    assert config_sets(tuned / "toy-a" / "sasrec" / "best.yaml", "sasrec") == (
        "train.lr=0.003", "model.dropout=0.25", "model.attn_dropout=0.25")
    plan = planned(tmp_path / "out", targets=["toy-a"], tuned=tuned)
    by = {j.cell.name: j for j in plan.jobs}
    assert by["toy-a-sasrec-tuned"].train_cfg.lr == 0.003 and by["toy-a-sasrec-tuned"].model_cfg.dropout == 0.25
    default = by["toy-a-sasrec-default"]
    assert by["toy-a-sasrec-tuned"].train_cfg.epochs == default.train_cfg.epochs  # the study's budget left out
    assert by["toy-a-sasrec-across"].train_cfg.lr == 0.0005
    assert by["toy-a-sasrec-across"].model_cfg == default.model_cfg
    assert "toy-a-missrec-tuned" not in by and "waiting for their tuned values" in plan.experiment.plan_note
    bad = tmp_path / "bad.yaml"
    for text, message in (("lr: 1\n", "unknown section 'lr'"), ("train: [1]\n", "must be a mapping"),
                          ("train: {lr: [\n", r"bad.yaml:2: invalid YAML"),
                          ("model: {dropuot: 0.1}\n", r"bad.yaml: section 'model' has unknown key\(s\) \['dropuot'\]")):
        bad.write_text(text)
        with pytest.raises(MissrecError, match=message):
            config_sets(bad, "sasrec")
    with pytest.raises(MissrecError, match="unknown domain"):
        planned(tmp_path, targets=["books"])
    with pytest.raises(MissrecError, match="--tuned .*: no such folder"):
        planned(tmp_path, tuned=tmp_path / "nope")
    with pytest.raises(MissrecError, match="--tuned belongs to experiment defaults"):
        plan_experiment(ExperimentOptions("transfer", tmp_path, tuned=tuned))
    with pytest.raises(MissrecError, match="--fractions belongs to experiment transfer"):
        planned(tmp_path, fractions=[0.5])


def test_a_toy_domain_end_to_end(tmp_path):
    tuned = tuned_folder(tmp_path / "tune")
    out = tmp_path / "exp"
    args = ["experiment", "defaults", "--out", str(out), "--targets", "toy-a", "--tuned", str(tuned),
            "--only", "toy-a-missrec-default,toy-a-sasrec-default,toy-a-sasrec-tuned,toy-a-sasrec-text-default,"
            "toy-a-popularity", "--seeds", "1",
            "--set", "epochs=1", "--set", "threads=1", "-q"]
    res = CliRunner().invoke(main, args, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    runs = out / "runs"
    tuned_run = json.loads((runs / "toy-a-sasrec-tuned" / "seed-2023" / "results.json").read_text())
    assert tuned_run["config"]["train"]["lr"] == 0.003 and tuned_run["config"]["train"]["epochs"] == 1
    md = (out / "report.md").read_text()
    assert "Defaults and tuning on toy-a" in md
    assert "SASRec ID, default" in md and "SASRec ID, tuned on the domain" in md and "| popularity |" in md
    # MISSRec against the baseline validation prefers, in each regime that has both (here: default only)
    paired = md[md.index("toy-a: MISSRec − the best baseline, paired over test users"):]
    rows = [line.split(" | ") for line in paired.splitlines() if line.startswith("| default |")]
    assert [r[1] for r in rows] == ["recall@10", "ndcg@10", "recall@50", "ndcg@50"]
    valid = {name: json.loads((runs / f"toy-a-{name}-default" / "seed-2023" / "results.json").read_text())["valid"]
             ["ndcg@10"] for name in ("sasrec", "sasrec-text")}
    assert rows[0][3] == ("SASRec ID" if valid["sasrec"] >= valid["sasrec-text"] else "SASRec T")
    assert "| tuned on the domain |" not in paired
    assert md.index("Defaults and tuning on toy-a") < md.index("toy-a: MISSRec − the best baseline")
