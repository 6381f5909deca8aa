"""The UniSRec importer reproduces the shared datasets' published statistics exactly."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from missrec.data.batching import build_examples
from missrec.data.describe import describe
from missrec.data.importers import ImportOptions
from missrec.data.importers.unisrec import import_unisrec
from missrec.data.store import write_store
from missrec.errors import InputFormatError

from support import shared_dataset


@pytest.fixture(scope="module")
def sci_mm_store(tmp_path_factory) -> Path:
    ds = import_unisrec([shared_dataset("amazon-scientific-mm")], ImportOptions())
    return write_store(ds, tmp_path_factory.mktemp("s") / "scimm")


@pytest.fixture(scope="module")
def sci_store(tmp_path_factory) -> Path:
    ds = import_unisrec([shared_dataset("amazon-scientific")], ImportOptions())
    return write_store(ds, tmp_path_factory.mktemp("s") / "sci")


def test_scientific_statistics(sci_store):
    info = describe(sci_store)
    assert (info["users"], info["items"], info["interactions"]) == (8442, 4385, 59427)
    assert info["avg_seq_len"] == 7.04
    assert (info["min_seq_len"], info["max_seq_len"]) == (5, 80)
    assert info["items_with_text"] == 4385
    assert info["coverage"] == {}


def test_scientific_mm_statistics(sci_mm_store):
    info = describe(sci_mm_store)
    assert (info["users"], info["items"], info["interactions"]) == (2928, 1585, 19712)
    assert info["avg_seq_len"] == 6.73
    assert info["max_seq_len"] == 36
    assert info["train_examples"] == 10928
    assert info["coverage"] == {"text": 1.0, "image": 1.0}


def _read_rows(path: Path):
    rows = []
    with open(path) as f:
        next(f)
        for line in f:
            u, h, t = line.rstrip("\n").split("\t")
            rows.append((int(u) + 1, tuple(int(x) + 1 for x in h.split()), int(t) + 1))
    return rows


@pytest.mark.parametrize("split", ["train", "valid", "test"])
def test_examples_equal_the_source_rows(sci_store, split):
    """The rebuilt sequences give back every row of the source files, histories included."""
    from missrec.data.store import read_store

    ds = read_store(sci_store)
    ex = build_examples(ds, split, max_len=50)
    ours = sorted((int(ex.users[i]), tuple(ex.history(i).tolist()), int(ex.targets[i])) for i in range(len(ex)))
    theirs = sorted(_read_rows(shared_dataset("amazon-scientific") / f"Scientific.{split}.inter"))
    assert ours == theirs


def _copy(tmp_path: Path) -> Path:
    dst = tmp_path / "src"
    shutil.copytree(shared_dataset("amazon-scientific-mm"), dst)
    for p in dst.iterdir():
        p.chmod(0o644)
    return dst


def test_all_zero_feature_rows_become_missing(tmp_path):
    src = _copy(tmp_path)
    feats = np.fromfile(src / "Scientific.feat3CLS", dtype=np.float32).reshape(-1, 512)
    feats[[3, 7]] = 0
    feats.tofile(src / "Scientific.feat3CLS")
    ds = import_unisrec([src], ImportOptions())
    assert ds.features["image"].present.sum() == 1585 - 2
    assert not ds.features["image"].present[4] and not ds.features["image"].present[8]
    assert ds.features["text"].present[1:].all()


def test_truncated_feature_file_names_file_and_expectation(tmp_path):
    src = _copy(tmp_path)
    with open(src / "Scientific.feat1CLS", "r+b") as f:
        f.truncate(512 * 4 * 10 + 6)
    with pytest.raises(InputFormatError, match=r"feat1CLS: size .* not a multiple"):
        import_unisrec([src], ImportOptions())


def test_feature_rows_must_match_item_count(tmp_path):
    src = _copy(tmp_path)
    with open(src / "Scientific.feat3CLS", "r+b") as f:
        f.truncate(512 * 4 * 10)
    with pytest.raises(InputFormatError, match=r"feat3CLS: has 10 rows, expected 1585"):
        import_unisrec([src], ImportOptions())


def test_bad_header_and_bad_line(tmp_path):
    src = _copy(tmp_path)
    p = src / "Scientific.valid.inter"
    lines = p.read_text().splitlines()
    p.write_text("\n".join([lines[0].replace("\t", ",")] + lines[1:]) + "\n")
    with pytest.raises(InputFormatError, match=r"valid.inter:1: header .*separator must be a tab"):
        import_unisrec([src], ImportOptions())
    lines[5] = "12\tx y\t3"
    p.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputFormatError, match=r"valid.inter:6: .*integer"):
        import_unisrec([src], ImportOptions())


def test_inconsistent_history_is_caught(tmp_path):
    src = _copy(tmp_path)
    p = src / "Scientific.test.inter"
    lines = p.read_text().splitlines()
    u, h, t = lines[1].split("\t")
    lines[1] = "\t".join([u, " ".join(reversed(h.split())), t])
    p.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputFormatError, match=r"test.inter:2: history of user"):
        import_unisrec([src], ImportOptions())
