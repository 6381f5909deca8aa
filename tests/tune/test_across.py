"""``missrec tune-across`` on two small generated domains: every candidate scored on every
domain as ``missrec train`` would score it, the choice by the best worst-case ratio
(checked against the scores it wrote), resuming, and one-line errors."""

from __future__ import annotations

import csv
import json

import pytest
import yaml
from click.testing import CliRunner
from support import make_dataset

from missrec.cli import main
from missrec.data.store import write_store
from missrec.errors import MissrecError
from missrec.tune import tune, tune_across

optuna = pytest.importorskip("optuna")

SMALL = ["epochs=2", "model.hidden=16"]


def quiet(line):
    pass


def cli(*args):
    res = CliRunner().invoke(main, [str(a) for a in args])
    return res.exit_code, res.output


@pytest.fixture(scope="module")
def studies(tmp_path_factory):
    root = tmp_path_factory.mktemp("across")
    out = []
    for name, seed in (("shop", 0), ("films", 7)):
        store = write_store(make_dataset(n_users=40, n_items=30, seed=seed), root / name)
        tune("sasrec", store, 2, root / f"study-{name}", sets=SMALL, seed=seed, log=quiet)
        out.append((root / f"study-{name}", store))
    return out


def scores_of(out):
    with open(out / "scores.csv") as f:
        return list(csv.DictReader(f))


def test_every_candidate_is_scored_everywhere_and_the_best_worst_case_is_chosen(studies, tmp_path):
    (study_a, store_a), (study_b, store_b) = studies
    out = tmp_path / "across"
    code, printed = cli("tune-across", "--model", "sasrec", "--study", study_a, "--study", study_b, "--out", out,
                        "--top", 1)
    assert code == 0, printed
    rows = scores_of(out)
    labels = sorted({r["candidate"] for r in rows})
    assert len(labels) == 3 and "default" in labels  # the default and each study's best trial
    assert len(rows) == 6 and {r["domain"] for r in rows} == {"shop", "films"}
    valid = {(r["candidate"], r["domain"]): float(r["valid_ndcg@10"]) for r in rows}
    # on its own domain a candidate scores what its trial scored, the default what the
    # study's first trial (the default) scored
    for study, name in ((study_a, "shop"), (study_b, "films")):
        trials = list(csv.DictReader(open(study / "trials.csv")))
        assert trials[0]["note"].split("; ")[0] == "the model's default"
        assert valid[("default", name)] == float(trials[0]["valid_ndcg@10"])
        best = max(trials[1:], key=lambda r: float(r["valid_ndcg@10"]))
        assert valid[(f"{name}-t{best['number']}", name)] == float(best["valid_ndcg@10"])
    # elsewhere, what `missrec train` with the trial's values scores (the same seed, the same run)
    cross = next(r for r in rows if r["origin"] == "shop" and r["domain"] == "films")
    config = tmp_path / "shop-best.yaml"
    config.write_text((study_a / "best.yaml").read_text())
    run = tmp_path / "check"
    code, output = cli("train", "--model", "sasrec", "--config", config, "--data", store_b, "--out", run, "-q",
                       "--set", "threads=1", *(w for s in SMALL for w in ("--set", s)))
    assert code == 0, output
    assert json.loads((run / "results.json").read_text())["valid"]["ndcg@10"] == float(cross["valid_ndcg@10"])
    # ratios to each domain's best, and the highest lowest ratio chosen
    best = {d: max(v for (_, dd), v in valid.items() if dd == d) for d in ("shop", "films")}
    for r in rows:
        assert float(r["ratio"]) == pytest.approx(valid[(r["candidate"], r["domain"])] / best[r["domain"]], abs=1e-6)
    worst = {c: min(valid[(c, d)] / best[d] for d in best) for c in labels}
    mean = {c: sum(valid[(c, d)] / best[d] for d in best) / 2 for c in labels}
    chosen = max(labels, key=lambda c: (worst[c], mean[c]))
    assert f"chosen: {chosen}" in printed and f"**{chosen}**" in (out / "table.md").read_text()
    choice = yaml.safe_load((out / "choice.yaml").read_text())
    if chosen == "default":
        assert choice == {}
    else:
        row = next(r for r in rows if r["candidate"] == chosen)
        assert choice["train"]["lr"] == float(row["train.lr"])
        assert choice["model"]["attn_dropout"] == choice["model"]["dropout"] == float(row["model.dropout"])
    # running it again trains nothing and chooses the same
    again = tune_across("sasrec", [study_a, study_b], out, top=1, log=quiet)
    assert again.ran == 0 and again.choice.label == chosen and scores_of(out) == rows


def test_a_killed_run_resumes_and_parallel_runs_agree(studies, tmp_path):
    (study_a, _), (study_b, _) = studies
    first = tune_across("sasrec", [study_a, study_b], tmp_path / "one", top=1, log=quiet)
    both = tune_across("sasrec", [study_a, study_b], tmp_path / "two", top=1, jobs=2, log=quiet)
    # each study's best on the other domain; the default was scored by both studies
    assert both.scores == first.scores and both.ran == first.ran == 2
    assert not (tmp_path / "one" / "runs" / "films" / "default").exists()
    shop_best = next(c.label for c in first.candidates if c.origin == "shop")
    # a run cut short: its results gone, the command goes on from its checkpoint or start
    (tmp_path / "two" / "runs" / "films" / shop_best / "results.json").unlink()
    lines = []
    again = tune_across("sasrec", [study_a, study_b], tmp_path / "two", top=1, log=lines.append)
    assert again.ran == 1 and again.scores == first.scores and f"{shop_best} on films" in lines[-1]
    # a run that fails in a worker: one error once the running runs end; the finished ones are kept
    broken = tmp_path / "three" / "runs" / "films"
    broken.mkdir(parents=True)
    (broken / shop_best).write_text("not a folder")
    with pytest.raises(MissrecError, match="a run failed .*run the command again"):
        tune_across("sasrec", [study_a, study_b], tmp_path / "three", top=1, jobs=2, log=quiet)
    (broken / shop_best).unlink()
    resumed = tune_across("sasrec", [study_a, study_b], tmp_path / "three", top=1, log=quiet)
    assert resumed.scores == first.scores and resumed.ran < 2


def test_studies_that_cannot_be_compared_are_one_line(studies, tmp_path):
    (study_a, store_a), (study_b, _) = studies
    other = tmp_path / "other-space"
    tune("sasrec", store_a, 1, other, sets=["epochs=1", "model.hidden=16"], log=quiet)
    cases = [
        (["--study", study_a], "give at least two studies"),
        (["--study", study_a, "--study", study_a], "one study per domain"),
        (["--study", study_a, "--study", tmp_path], "not a missrec tune study"),
        (["--study", study_b, "--study", other], "searched another way"),
        (["--study", study_a, "--study", study_b, "--top", "0"], "--top and --jobs must be >= 1"),
    ]
    for args, message in cases:
        code, output = cli("tune-across", "--model", "sasrec", *args, "--out", tmp_path / "x")
        assert code == 1 and output.count("\n") == 1 and message in output, output
    code, output = cli("tune-across", "--model", "unisrec", "--study", study_a, "--study", study_b,
                       "--out", tmp_path / "x")
    assert code == 1 and "tunes sasrec, not unisrec" in output
    # a study made before studies recorded their store: one line saying how to record it
    optuna.load_study(study_name="missrec-tune", storage=f"sqlite:///{other / 'study.db'}").set_user_attr(
        "store_path", "")
    code, output = cli("tune-across", "--model", "sasrec", "--study", study_b, "--study", other, "--out", tmp_path / "x")
    assert code == 1 and output.count("\n") == 1 and "does not record its store" in output, output


def test_a_setting_a_study_already_trained_is_not_trained_again(tmp_path):
    # both studies begin with the default; the same sampler seed then draws the same values
    folders = []
    for name, seed in (("left", 1), ("right", 2)):
        store = write_store(make_dataset(n_users=30, n_items=20, seed=seed), tmp_path / name)
        tune("sasrec", store, 2, tmp_path / f"study-{name}", sets=SMALL, log=quiet)
        folders.append(tmp_path / f"study-{name}")
    result = tune_across("sasrec", folders, tmp_path / "across", log=quiet)
    assert [c.label for c in result.candidates] == ["default", "left-t1"] and result.ran == 0
    for name in ("left", "right"):
        run = json.loads((tmp_path / f"study-{name}" / "trials" / "0000" / "results.json").read_text())
        assert result.scores[("default", name)] == run["valid"]["ndcg@10"]
    right = json.loads((tmp_path / "study-right" / "trials" / "0001" / "results.json").read_text())
    assert result.scores[("left-t1", "right")] == right["valid"]["ndcg@10"]


def test_a_default_changed_since_the_studies_ran_is_trained_again(studies, tmp_path, monkeypatch):
    import missrec.tune.across as across

    # today's default is not what the studies' first trials trained
    monkeypatch.setattr(across, "default_values", lambda *args: None)
    (study_a, _), (study_b, _) = studies
    result = tune_across("sasrec", [study_a, study_b], tmp_path / "x", top=2, log=quiet)
    assert all((tmp_path / "x" / "runs" / d / "default" / "results.json").is_file() for d in ("shop", "films"))
    assert {c.trial.number for c in result.candidates if c.trial is not None} == {0, 1}
