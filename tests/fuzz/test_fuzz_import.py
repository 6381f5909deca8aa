"""``missrec data import`` on mutated sources of every format: success, or one error line.

Each example copies a small valid source, mutates one of its files (truncation, wrong
separators, invalid UTF-8, CRLF, a byte-order mark, duplicated / dropped / swapped lines,
a number replaced by NaN, inf, a huge, negative or non-integer value, an emptied file) and
imports it. The outcome is either a complete, readable store, or exit code 1 with one line
``error: ...`` naming a source file and no store (nor temporary folder) left behind.
Line-ending and encoding-marker changes must give exactly the store of the clean source.
"""

from __future__ import annotations

import random
import tempfile
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("hypothesis")
from hypothesis import given, strategies as st  # noqa: E402

from _fuzzkit import FORMATS, TEXT_MUTATIONS, assert_clean_failure, fresh_copy, leftovers, mutate, run  # noqa: E402
from missrec.data.store import read_store  # noqa: E402

BINARY_SUFFIXES = (".feat1CLS", ".feat3CLS")
NEUTRAL = ("crlf", "bom", "blank_lines")
"""Mutations after which the import must give the clean source's store."""


def _import(fmt: str, src: Path, dest: Path, *extra: str) -> tuple[int, str, str]:
    return run(["data", "import", "--format", fmt, "--kcore", "1", *extra, *FORMATS[fmt][1](src), str(dest)])


def _content(store: Path) -> tuple:
    ds = read_store(store)
    feats = tuple((k, f.matrix.tobytes(), f.present.tobytes()) for k, f in sorted(ds.features.items()))
    return ds.fingerprint(), tuple(ds.users.ids), tuple(ds.item_text), feats


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> dict[str, tuple[Path, tuple]]:
    """Each format's valid source and the content of its imported store."""
    base = tmp_path_factory.mktemp("clean")
    out = {}
    for fmt, (writer, _) in FORMATS.items():
        src = writer(base / fmt / ("toy" if fmt == "recbole" else "src"))
        code, _, err = _import(fmt, src, base / f"{fmt}-store")
        assert code == 0, err
        out[fmt] = (src, _content(base / f"{fmt}-store"))
    return out


def _check(fmt: str, clean: dict, file_name: str, kind: str, seed: int) -> None:
    src, reference = clean[fmt]
    with tempfile.TemporaryDirectory() as tmp:
        work = fresh_copy(src, Path(tmp) / src.name)
        target = work / file_name
        target.write_bytes(mutate(target.read_bytes(), kind, random.Random(seed)))
        out = Path(tmp) / "out"
        out.mkdir()
        dest = out / "store"
        code, _, err = _import(fmt, work, dest)
        if code == 0:
            content = _content(dest)  # complete and readable
            if kind in NEUTRAL and not file_name.endswith(BINARY_SUFFIXES):
                assert content == reference, f"{kind} on {file_name} changed the imported store"
        else:
            names = [p.name for p in work.iterdir()] + [work.name]
            assert_clean_failure(code, err, names)
            assert not dest.exists(), "a failed import left a store behind"
        assert leftovers(out) == []


@pytest.mark.parametrize("fmt", sorted(FORMATS))
@given(data=st.data())
def test_mutated_source_imports_or_fails_in_one_line(clean, fmt, data) -> None:
    files = sorted(p.name for p in clean[fmt][0].iterdir())
    _check(fmt, clean, data.draw(st.sampled_from(files), label="file"),
           data.draw(st.sampled_from(TEXT_MUTATIONS), label="mutation"),
           data.draw(st.integers(0, 2**16), label="seed"))


@pytest.mark.parametrize("fmt", sorted(FORMATS))
@pytest.mark.parametrize("kind", NEUTRAL)
def test_line_endings_and_markers_do_not_change_the_store(clean, fmt, kind) -> None:
    for file_name in sorted(p.name for p in clean[fmt][0].iterdir()):
        if not file_name.endswith(BINARY_SUFFIXES):
            _check(fmt, clean, file_name, kind, 0)


# ----------------------------------------------------------------------------- targeted cases

def _edit(src: Path, tmp: Path, file_name: str, old: bytes, new: bytes) -> Path:
    work = fresh_copy(src, tmp / src.name)
    data = (work / file_name).read_bytes()
    assert old in data
    (work / file_name).write_bytes(data.replace(old, new, 1))
    return work


CASES = [
    # format, file, old bytes, new bytes, expected words in the error line
    ("unisrec", "Toy.item2index", b"B01\t1", b"B00\t1", ["Toy.item2index:2", "appears twice"]),
    ("unisrec", "Toy.train.inter", b"0\t0\t1", b"0\t0\t17", ["Toy.train.inter:2", "outside 0..5"]),
    ("unisrec", "Toy.user2index", b"U2\t2", b"U2\t7", ["Toy.user2index", "0..2"]),
    ("unisrec", "Toy.text", b"B01\tthing", b"B\xe901\tthing", ["Toy.text:3", "UTF-8"]),
    ("unisrec", "Toy.valid.inter", b"\t", b",", ["Toy.valid.inter:1", "tab"]),
    ("recbole", "toy.inter", b"\t101\t", b"\tnan\t", ["toy.inter:2", "timestamp 'nan' is not a number"]),
    ("recbole", "toy.inter", b"\t101\t", b"\tinf\t", ["toy.inter:2", "timestamp 'inf' is not a number"]),
    ("recbole", "toy.item", b"i1\tTitle 1", b"i0\tTitle 1", ["toy.item:3", "appears twice"]),
    ("recbole", "toy.inter", b"u0\ti0\t101", b"u0,i0,101", ["toy.inter:2", "commas"]),
    ("rechorus", "Shop.item2index", b"A2\t2", b"A1\t2", ["Shop.item2index:2", "appears twice"]),
    ("rechorus", "train.csv", b"1\t1\t10", b"1\t9\t10", ["train.csv:2", "item_id 9 is not in Shop.item2index"]),
    ("rechorus", "dev.csv", b"2\t4\t6", b"1\t4\t6", ["dev.csv:3", "second row"]),
    ("rechorus", "test.csv", b"1\t4\t20", b"1\t4\t1e999", ["test.csv:2", "time '1e999' is not a number"]),
    ("amazon", "reviews.json", b"\"unixReviewTime\": 1000", b"\"unixReviewTime\": NaN",
     ["reviews.json:1", "unixReviewTime"]),
    ("amazon", "reviews.json", b"\"unixReviewTime\": 1000", b"\"unixReviewTime\": Infinity",
     ["reviews.json:1", "unixReviewTime"]),
    ("amazon", "meta.json", b"{\"asin\": \"P0\"", b"{\"asin\": [\"P0\"]", ["meta.json:1", "field 'asin'"]),
]


@pytest.mark.parametrize("fmt,file_name,old,new,words", CASES,
                         ids=[f"{c[0]}-{c[1]}-{i}" for i, c in enumerate(CASES)])
def test_targeted_bad_inputs_name_the_file_and_line(clean, tmp_path, fmt, file_name, old, new, words) -> None:
    work = _edit(clean[fmt][0], tmp_path, file_name, old, new)
    code, _, err = _import(fmt, work, tmp_path / "store")
    line = assert_clean_failure(code, err, [file_name])
    for w in words:
        assert w in line, line
    assert not (tmp_path / "store").exists()


def test_empty_source_files(clean, tmp_path) -> None:
    for fmt, (src, _) in clean.items():
        for p in sorted(src.iterdir()):
            work = fresh_copy(src, tmp_path / fmt / src.name)
            (work / p.name).write_bytes(b"")
            code, _, err = _import(fmt, work, tmp_path / fmt / "store")
            if code == 0:  # ReChorus's item text is optional and may be empty (no header either)
                assert (fmt, p.name) == ("rechorus", "Shop.text"), p.name
            else:
                assert_clean_failure(code, err, [p.name, work.name])


@pytest.mark.parametrize("args,words", [
    (["--format", "unisrec", "--kcore", "-1"], ["--kcore", "-1"]),
    (["--format", "unisrec", "--kcore", "many"], ["--kcore", "many"]),
    (["--format", "parquet"], ["--format", "parquet"]),
    (["--format", "unisrec", "--non-finite", "zero"], ["--non-finite", "zero"]),
])
def test_bad_import_options(clean, tmp_path, args, words) -> None:
    code, _, err = run(["data", "import", *args, str(clean["unisrec"][0]), str(tmp_path / "store")])
    line = assert_clean_failure(code, err, [words[0]])
    assert all(w in line for w in words), line
    assert not (tmp_path / "store").exists()


def test_destination_that_is_a_file_or_a_foreign_folder(clean, tmp_path) -> None:
    src = clean["unisrec"][0]
    (tmp_path / "file").write_text("keep me")
    code, _, err = _import("unisrec", src, tmp_path / "file")
    assert_clean_failure(code, err, ["file"])
    assert (tmp_path / "file").read_text() == "keep me"
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "notes.txt").write_text("keep me")
    code, _, err = _import("unisrec", src, tmp_path / "folder")
    assert "not a missrec store" in assert_clean_failure(code, err, ["folder"])
    assert (tmp_path / "folder" / "notes.txt").read_text() == "keep me"


# ----------------------------------------------------------------------------- feature files at import

def _feature_nan(src: Path, tmp: Path, row: int, col: int, value: float) -> Path:
    work = fresh_copy(src, tmp / src.name)
    m = np.fromfile(work / "Toy.feat3CLS", dtype="<f4").reshape(6, -1)
    m[row, col] = value
    m.tofile(work / "Toy.feat3CLS")
    return work


@pytest.mark.parametrize("value,word", [(np.nan, "NaN"), (np.inf, "+inf"), (-np.inf, "-inf")])
def test_non_finite_feature_names_file_item_and_column(clean, tmp_path, value, word) -> None:
    work = _feature_nan(clean["unisrec"][0], tmp_path, 4, 17, value)
    code, _, err = _import("unisrec", work, tmp_path / "store")
    line = assert_clean_failure(code, err, ["Toy.feat3CLS"])
    assert "row 4 (item 'B04'), column 17 holds " + word in line
    assert "--non-finite missing" in line
    assert not (tmp_path / "store").exists()


def test_non_finite_feature_rows_as_missing_modality(clean, tmp_path) -> None:
    work = _feature_nan(clean["unisrec"][0], tmp_path, 4, 17, np.nan)
    code, _, err = _import("unisrec", work, tmp_path / "store", "--non-finite", "missing")
    assert code == 0, err
    f = read_store(tmp_path / "store").features
    assert f["image"].present.tolist() == [False, True, True, True, True, False, True]  # B04 is index 5
    assert not f["image"].matrix[5].any() and np.isfinite(f["image"].matrix).all()
    assert f["text"].present[1:].all()
