"""Time estimates from finished runs (what ``--dry-run`` prints)."""

from __future__ import annotations

import json

from missrec.config import TrainConfig
from missrec.experiments.estimate import TYPICAL_EPOCHS, measured_costs, measured_epochs, run_estimate
from missrec.experiments.spec import CellSpec
from missrec.experiments.stores import RECIPES


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


def test_a_cells_finished_seeds_set_the_epochs_its_other_seeds_are_estimated_for(tmp_path):
    office = CellSpec("office-unisrec", "unisrec", "office")
    mixed_cell = CellSpec("mixed-unisrec", "unisrec", "scientific-mixed")
    done = [(office, _run(tmp_path, f"s{i}", 38_000, 760, epochs=e)) for i, e in enumerate((80, 100, 90))]
    taken = measured_epochs(done)
    assert taken == {"office-unisrec": 90.0}
    stores = {"office": tmp_path / "no-store", "scientific-mixed": tmp_path / "no-store"}
    rates = {("train", "unisrec"): 2.0}
    cfg = TrainConfig()
    rows = RECIPES["office"].train_rows  # no store is built here
    assert run_estimate(office, cfg, stores, rates, taken) == 90 * rows * 2.0 / 1000
    # a cell with no finished seed keeps the typical count, as every cell does without measured epochs
    mixed = RECIPES["scientific-mixed"].train_rows
    assert run_estimate(mixed_cell, cfg, stores, rates, taken) == TYPICAL_EPOCHS * mixed * 2.0 / 1000
    assert run_estimate(office, cfg, stores, rates) == TYPICAL_EPOCHS * rows * 2.0 / 1000
