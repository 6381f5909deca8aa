"""Time estimates from finished runs (what ``--dry-run`` prints)."""

from __future__ import annotations

import json

from missrec.experiments.estimate import measured_costs
from missrec.experiments.spec import CellSpec


def _run(tmp_path, name, rows, seconds, epochs=10):
    d = tmp_path / name
    d.mkdir()
    (d / "results.json").write_text(json.dumps({"train_examples": rows, "train_seconds": seconds,
                                               "epochs": epochs}))
    return d


def test_the_rate_comes_from_the_full_size_runs_not_the_few_shot_ones(tmp_path):
    cell = CellSpec("c", "unisrec", "office")
    # a full run at 2 ms a sequence and two 5% runs whose fixed per-epoch costs make them
    # 12 ms a sequence: the median of all three would be 12
    runs = [(cell, _run(tmp_path, "full", 38_000, 760)), (cell, _run(tmp_path, "few", 1_900, 228)),
            (cell, _run(tmp_path, "few2", 1_900, 228))]
    assert measured_costs(runs, {}) == {("train", "unisrec"): 2.0}
    # alone, the small runs are all there is to go on
    assert measured_costs(runs[1:], {}) == {("train", "unisrec"): 12.0}
