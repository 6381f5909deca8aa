"""``missrec report`` on run directories written by hand: grouping, bold, paper numbers,
figures, the HTML page and README regeneration."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from missrec.cli import main
from missrec.data.store import write_store
from missrec.errors import MissrecError
from missrec.report import build_report, compare_with_paper, update_readme, write_report
from missrec.data.importers import ImportOptions, get_importer
from missrec.report.paper import PAPER_TABLES, SCIENTIFIC_FINGERPRINTS, default_reference, paper_dataset, reference
from missrec.report.popularity import bucket_labels, bucket_of, train_popularity
from missrec.report.runs import Stat, find_runs, group_cells

from support import make_dataset, shared_dataset

PNG = b"\x89PNG\r\n\x1a\n"
PROTOCOL = "full ranking over all items; leave-one-out; history not masked; ties pessimistic"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return write_store(make_dataset(n_users=60, n_items=40, seed=2), tmp_path_factory.mktemp("s") / "toy")


def fake_run(path: Path, model: str, seed: int, test: dict, *, store: Path | None = None,
             model_cfg: dict | None = None, meta: dict | None = None, n_users: int = 60,
             quality: float = 0.5, name: str = "toy", fingerprint: str = "fp0001") -> Path:
    """A run directory as `missrec train` writes it (results.json, history.jsonl, ranks)."""
    path.mkdir(parents=True)
    cfg = {"model": model_cfg if model_cfg is not None else {"hidden": 16},
           "train": {"epochs": 3, "lr": 0.001, "seed": seed, "device": "cpu", "threads": 0}}
    results = {"model": model, "dataset": {"name": name, "store": str(store or "/nowhere"), "fingerprint": fingerprint},
               "valid": {k: v * 1.1 for k, v in test.items()}, "test": test, "best_epoch": 2, "epochs": 3,
               "train_seconds": 12.5 + seed % 7, "seconds_per_epoch": 4.2, "parameters": {"total": 10, "trainable": 10},
               "seed": seed, "protocol": PROTOCOL, "config": cfg, "transfer_from": None,
               "code_version": "0.1.0+abc1234"}
    (path / "results.json").write_text(json.dumps(results))
    hist = [{"epoch": e, "train_seconds": 4.0, ("loss_si" if model == "missrec" else "loss"): 5.0 - e,
             "valid_ndcg@10": 0.01 * e * (1 + quality)} for e in (1, 2, 3)]
    (path / "history.jsonl").write_text("".join(json.dumps(h) + "\n" for h in hist))
    rng = np.random.default_rng(seed + int(100 * quality))
    targets = rng.integers(1, 41, size=n_users)
    ranks = np.where(rng.random(n_users) < quality, rng.integers(0, 10, n_users), rng.integers(10, 40, n_users))
    np.save(path / "test_ranks.npy", ranks)
    np.save(path / "test_targets.npy", targets)
    if meta is not None:
        (path / "cell.json").write_text(json.dumps(meta))
    return path


def metrics(r10: float, n10: float = 0.05, r50: float = 0.3, n50: float = 0.08) -> dict:
    return {"recall@10": r10, "ndcg@10": n10, "recall@50": r50, "ndcg@50": n50}


@pytest.fixture
def runs(tmp_path, store):
    root = tmp_path / "runs"
    fake_run(root / "sasrec" / "s1", "sasrec", 1, metrics(0.10, 0.050), store=store, quality=0.3)
    fake_run(root / "sasrec" / "s2", "sasrec", 2, metrics(0.20, 0.060), store=store, quality=0.3)
    mcfg = {"d": 16, "modalities": ["text", "image"], "mode": "transductive"}
    fake_run(root / "missrec" / "s1", "missrec", 1, metrics(0.30, 0.040), store=store, model_cfg=mcfg, quality=0.7)
    fake_run(root / "missrec" / "s2", "missrec", 2, metrics(0.34, 0.044), store=store, model_cfg=mcfg, quality=0.7)
    return root


def test_runs_of_one_setting_are_grouped_with_mean_and_std(runs):
    cells = group_cells(find_runs([runs]))
    assert len(cells) == 2
    sas = next(c for c in cells if c.model == "sasrec")
    assert sorted(sas.seeds) == [1, 2]
    s = sas.metric("recall@10")
    assert s.n == 2 and s.mean == pytest.approx(0.15) and s.std == pytest.approx(np.std([0.1, 0.2], ddof=1))
    mis = next(c for c in cells if c.model == "missrec")
    assert mis.label == "MISSRec T+V+ID"


def test_a_different_config_is_another_cell(runs):
    fake_run(runs / "sasrec-wide" / "s1", "sasrec", 1, metrics(0.12), model_cfg={"hidden": 64})
    cells = group_cells(find_runs([runs]))
    assert len(cells) == 3
    labels = sorted(c.label for c in cells if c.model == "sasrec")
    assert labels == ["SASRec ID [hidden=16]", "SASRec ID [hidden=64]"]


def test_markdown_has_mean_std_bold_best_and_run_provenance(runs, tmp_path):
    files = write_report([runs], tmp_path / "out", plots=False)
    md = files.markdown.read_text()
    assert "0.1500 ± 0.0707" in md  # SASRec recall@10 over two seeds
    assert "**0.3200** ± 0.0283" in md  # best recall@10 (MISSRec) in bold
    assert "**0.0550** ± 0.0071" in md  # best ndcg@10 is SASRec's
    assert "0.0420 ± 0.0028" in md and "**0.0420**" not in md
    # the selection number: validation NDCG@10 (1.1 x test here), best in bold
    assert "| valid N@10 |" in md and "**0.0605** ± 0.0078" in md and "0.0462 ± 0.0031" in md
    for needle in (PROTOCOL, "fp0001", "0.1.0+abc1234", "13.5", "seed"):
        assert needle in md
    assert md.count("| runs/") == 0 and "sasrec/s1" in md


def test_paper_numbers_beside_ours_and_a_sentence(tmp_path, store):
    meta = {"table": "table3", "table_title": "Table 3 here", "label": "MISSRec T+V", "order": 0,
            "paper": {"table": "table3", "row": "MISSRec T+V"}}
    fake_run(tmp_path / "r" / "a", "missrec", 1, metrics(0.1500, 0.0800, 0.3300, 0.1000), store=store,
             model_cfg={"modalities": ["text", "image"]}, meta=meta)
    rep = build_report([tmp_path / "r"])
    (t,) = rep.tables
    assert t.title == "Table 3 here"
    assert "R@10 paper" in t.header
    md = (write_report([tmp_path / "r"], tmp_path / "o", plots=False).markdown).read_text()
    assert "0.1633" in md and "0.3264" in md  # the paper's Table 3 MISSRec T+V
    assert "below on 2 of 4" in t.summary and "above on 2" in t.summary
    assert "R@10 -8.1%" in t.summary
    assert "full-modality" in " ".join(t.notes)


def test_default_reference_from_the_dataset_identity(tmp_path):
    meta = {"n_items": 1585}  # no table: placed by dataset, reference guessed from the store's name
    fake_run(tmp_path / "r" / "a", "unisrec", 1, metrics(0.16), name="Scientific-mm",
             model_cfg={"modalities": ["text"], "mode": "inductive"}, meta=meta)
    (t,) = build_report([tmp_path / "r"]).tables
    assert t.rows[0][0] == "UniSRec T"
    assert any(isinstance(v, object) and getattr(v, "mean", None) == 0.1602 for v in t.rows[0])
    assert default_reference("scientific", "MISSRec T+V+ID", "missrec", True) == \
        ("table4", "MISSRec T+V+ID pre-trained")
    assert default_reference("scientific", "SASRec ID", "sasrec", False) == ("table2", "SASRec ID")
    assert default_reference(None, "SASRec ID", "sasrec", False) is None


@pytest.mark.parametrize("folder, kind", [("amazon-scientific", "scientific"),
                                          ("amazon-scientific-mm", "scientific-mm")])
def test_the_shared_scientific_sets_are_known_by_fingerprint(folder, kind):
    ds = get_importer("unisrec")([shared_dataset(folder)], ImportOptions())
    assert paper_dataset(ds.fingerprint(), ds.name) == kind
    assert SCIENTIFIC_FINGERPRINTS[ds.fingerprint()] == kind
    assert paper_dataset("0123456789abcdef", "Scientific") is None  # the name alone is ambiguous


def test_paper_data_matches_the_paper():
    assert reference("table2", "MISSRec T+V+ID") == {"recall@10": 0.1304, "ndcg@10": 0.0675,
                                                     "recall@50": 0.2556, "ndcg@50": 0.0947}
    assert reference("table3", "MISSRec T+V+ID")["recall@50"] == 0.3288
    assert reference("table4", "MISSRec T+V")["ndcg@50"] == 0.0889
    assert reference("table5", "(4) 2-layer interest encoder")["recall@10"] == 0.1123
    assert len(PAPER_TABLES["table2"].rows) == 11 and len(PAPER_TABLES["table3"].rows) == 15
    assert len(PAPER_TABLES["table5"].rows) == 6


def test_compare_sentence_says_below_and_above():
    ref = {"recall@10": 0.2, "recall@50": 0.4, "ndcg@10": 0.1, "ndcg@50": 0.2}
    ours = {"recall@10": Stat(0.1, 0, 1), "recall@50": Stat(0.5, 0, 1), "ndcg@10": None, "ndcg@50": Stat(0.2, 0, 1)}
    s = compare_with_paper([("M", ours, ref)], "Table X")
    assert s.startswith("Against the paper (Table X), we are below on 1 of 3 numbers (M: R@10 -50.0%)")
    assert "at or above on 2 (M: R@50 +25.0%, N@50 +0.0%)" in s
    assert "nothing to compare" in compare_with_paper([])


def test_figures_are_written_and_embedded(runs, tmp_path):
    out = tmp_path / "out"
    files = write_report([runs], out)
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert any(n.startswith("curves-") for n in pngs) and any(n.startswith("popularity-") for n in pngs)
    for p in out.glob("*.png"):
        data = p.read_bytes()
        assert data.startswith(PNG) and len(data) > 2000
    md = files.markdown.read_text()
    assert "![" in md and "Performance by item popularity" in md and "vs SASRec ID" in md
    page = files.html.read_text()
    assert page.count("data:image/png;base64,") == len(pngs)
    assert ".png'" not in page and "<b>0.3200</b>" in page


def test_popularity_buckets_count_training_interactions(store, tmp_path):
    pop = train_popularity(store)
    ds = make_dataset(n_users=60, n_items=40, seed=2)
    train = ds.interactions.item[ds.interactions.split == 0]
    assert pop.sum() == len(train) and pop[0] == 0
    assert bucket_labels((0, 5, 10)) == ["0-4", "5-9", "10+"]
    assert bucket_of(np.array([0, 4, 5, 9, 10, 99]), (0, 5, 10)).tolist() == [0, 0, 1, 1, 2, 2]


def test_popularity_needs_a_sasrec_baseline(tmp_path, store):
    fake_run(tmp_path / "r" / "a", "unisrec", 1, metrics(0.2), store=store, model_cfg={"modalities": ["text"]})
    fake_run(tmp_path / "r" / "b", "sasrec-text", 1, metrics(0.1), store=store, model_cfg={"modalities": ["text"]})
    rep = build_report([tmp_path / "r"])
    assert rep.popularity == [] and "no SASRec (ID) run" in rep.notes[0]


def test_readme_section_is_regenerated_idempotently(runs, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# Project\n\nintro\n\n<!-- results:start -->\nold stuff\n<!-- results:end -->\n\n## After\n")
    assert update_readme(readme, [runs]) is True
    first = readme.read_text()
    assert "old stuff" not in first and first.startswith("# Project\n\nintro\n\n<!-- results:start -->\n")
    assert first.endswith("<!-- results:end -->\n\n## After\n")
    assert "0.1500 ± 0.0707" in first and "Runs under runs" in first
    assert update_readme(readme, [runs]) is False
    assert readme.read_text() == first


def test_readme_without_markers_gets_a_section_appended(runs, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# Project\n")
    update_readme(readme, [runs])
    text = readme.read_text()
    assert text.startswith("# Project\n\n<!-- results:start -->\n") and text.endswith("<!-- results:end -->\n")
    assert update_readme(readme, [runs]) is False


def test_cli_report_and_readme(runs, tmp_path):
    readme = tmp_path / "R.md"
    readme.write_text("x\n<!-- results:start -->\n<!-- results:end -->\n")
    res = CliRunner().invoke(main, ["report", str(runs), "--out", str(tmp_path / "o"), "--readme", str(readme),
                                    "--no-plots"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert (tmp_path / "o" / "report.md").exists() and (tmp_path / "o" / "report.html").exists()
    assert "updated" in res.output and "SASRec ID" in readme.read_text()
    res = CliRunner().invoke(main, ["report", str(runs)])
    assert res.exit_code != 0 and "--out" in res.output


def test_no_runs_is_a_clear_error(tmp_path):
    with pytest.raises(MissrecError, match="no run directories"):
        build_report([tmp_path])


def test_missing_matplotlib_names_the_extra(runs, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(MissrecError, match=r"missrec\[report\]"):
        write_report([runs], tmp_path / "o")
    # without figures it still works
    write_report([runs], tmp_path / "o2", plots=False)


def test_summary_is_one_table_across_datasets_with_cells_and_paper(tmp_path, store):
    root = tmp_path / "runs"

    def meta(cell: str, label: str, table: str, order: int, paper: dict | None = None) -> dict:
        return {"experiment": "table2", "cell": cell, "label": label, "table": table, "table_title": table,
                "order": order, "paper": paper}

    for seed, r10 in ((1, 0.10), (2, 0.20)):
        fake_run(root / "mm-sasrec" / f"s{seed}", "sasrec", seed, metrics(r10, 0.05), store=store, name="small",
                 fingerprint="fpA", meta=meta("mm-sasrec", "SASRec ID", "table2-mm", 0))
        fake_run(root / "mixed-sasrec" / f"s{seed}", "sasrec", seed, metrics(0.3, 0.07), store=store, name="big",
                 fingerprint="fpB", meta=meta("mixed-sasrec", "SASRec ID", "table2-mixed", 0,
                                             {"table": "table2", "row": "SASRec ID"}))
    fake_run(root / "mm-missrec" / "s1", "missrec", 1, metrics(0.4, 0.09), store=store, name="small",
             fingerprint="fpA", model_cfg={"d": 16, "modalities": ["text", "image"]},
             meta=meta("mm-missrec-tv", "MISSRec T+V", "table2-mm", 1))
    readme = tmp_path / "README.md"
    readme.write_text("# P\n\n<!-- summary:start -->\nold\n<!-- summary:end -->\n\n## After\n")
    res = CliRunner().invoke(main, ["report", str(root), "--summary", str(readme)], catch_exceptions=False)
    assert res.exit_code == 0 and "summary updated" in res.output
    text = readme.read_text()
    lines = [line for line in text.splitlines() if line.startswith("| ")]
    # tables in the report's order (table2-mixed before table2-mm)
    assert lines[0].split(" | ")[1:5] == ["big R@10", "big N@10", "small R@10", "small N@10"]
    sas = next(line for line in lines if line.startswith("| SASRec ID"))
    # mean ± std per dataset, the paper's Table 2 SASRec number in brackets, seeds, reproducing cells
    assert "0.1500 ± 0.0707" in sas and "0.3000 ± 0.0000 (0.1080)" in sas and "| 2 / 2 |" in sas
    assert "`table2 --only mixed-sasrec`, `table2 --only mm-sasrec`" in sas
    mis = next(line for line in lines if line.startswith("| MISSRec T+V"))
    assert "**0.4000**" in mis and mis.count("–") == 2
    assert text.endswith("<!-- summary:end -->\n\n## After\n") and "old" not in text
    assert update_readme(readme, [root], summary=True) is False
