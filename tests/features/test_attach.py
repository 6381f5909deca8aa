"""Attaching precomputed features by external id, and the validation of feature files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from _featkit import make_store
from missrec.data.store import read_store
from missrec.errors import InputFormatError, MissrecError
from missrec.features.attach import attach_features, read_feature_source


def unisrec_source(d: Path, ids: list[str], matrix: np.ndarray, name: str = "X.feat3CLS") -> Path:
    """``d/X.item2index`` + a raw float32 feature file (row i = index i)."""
    d.mkdir(parents=True, exist_ok=True)
    (d / "X.item2index").write_text("".join(f"{a}\t{i}\n" for i, a in enumerate(ids)))
    path = d / name
    np.asarray(matrix, dtype="<f4").tofile(path)
    return path


def test_join_by_id_with_missing_and_zero_rows(tmp_path: Path) -> None:
    store = make_store(tmp_path / "s", ["B1", "B2", "B3", "B4"])
    m = np.arange(4 * 6, dtype=np.float32).reshape(4, 6) + 1
    m[2] = 0  # official layout's "no image" row
    # Source order differs from the store's; B9 is not a store item; B4 has no row.
    src = unisrec_source(tmp_path / "src", ["B3", "B1", "B2", "B9"], m)
    report = attach_features(store, "image", src, dim=6)
    f = read_store(store).features["image"]
    assert f.present.tolist() == [False, True, False, True, False]
    np.testing.assert_array_equal(f.matrix[1], m[1])  # B1
    np.testing.assert_array_equal(f.matrix[3], m[0])  # B3
    assert not f.matrix[[0, 2, 4]].any()
    assert (report.n_present, report.n_not_found, report.n_zero_rows, report.n_unused) == (2, 1, 1, 1)
    assert "2 / 4 items present" in report.summary()


def test_size_not_multiple_of_row(tmp_path: Path) -> None:
    src = unisrec_source(tmp_path / "src", ["B1"], np.ones((1, 6)))
    with open(src, "ab") as f:
        f.write(b"\0\0\0\0")
    with pytest.raises(InputFormatError, match=r"X\.feat3CLS: size 28 bytes is not a multiple .*6 float32"):
        read_feature_source(src, dim=6)


def test_row_count_must_match_item2index(tmp_path: Path) -> None:
    src = unisrec_source(tmp_path / "src", ["B1", "B2", "B3"], np.ones((2, 6)))
    with pytest.raises(InputFormatError, match=r"2 rows, expected 3 \(one per id in .*X\.item2index\)"):
        read_feature_source(src, dim=6)


def test_missing_or_bad_item2index(tmp_path: Path) -> None:
    d = tmp_path / "src"
    d.mkdir()
    np.ones((2, 4), dtype="<f4").tofile(d / "Y.feat1CLS")
    with pytest.raises(InputFormatError, match=r"Y\.item2index"):
        read_feature_source(d / "Y.feat1CLS", dim=4)
    (d / "Y.item2index").write_text("B1\t0\nB2 1\n")
    with pytest.raises(InputFormatError, match=r"Y\.item2index:2: expected 'ID<TAB>index'"):
        read_feature_source(d / "Y.feat1CLS", dim=4)
    (d / "Y.item2index").write_text("B1\t0\nB2\t2\n")
    with pytest.raises(InputFormatError, match=r"indexes must be 0\.\.1"):
        read_feature_source(d / "Y.feat1CLS", dim=4)


def test_no_matching_ids_is_an_error(tmp_path: Path) -> None:
    store = make_store(tmp_path / "s", ["B1", "B2", "B3"])
    src = unisrec_source(tmp_path / "src", ["0", "1"], np.ones((2, 4)))
    with pytest.raises(InputFormatError, match="none of its 2 ids"):
        attach_features(store, "image", src, dim=4)
    assert "image" not in read_store(store).features  # nothing written


def test_non_finite_rows_rejected(tmp_path: Path) -> None:
    m = np.ones((2, 4))
    m[1, 2] = np.nan
    src = unisrec_source(tmp_path / "src", ["B1", "B2"], m)
    with pytest.raises(InputFormatError, match="row 1 .*'B2'.* NaN"):
        read_feature_source(src, dim=4)


def test_npy_with_ids_file(tmp_path: Path) -> None:
    store = make_store(tmp_path / "s", ["B1", "B2", "B3"])
    np.save(tmp_path / "f.npy", np.array([[1.0, 2.0], [3.0, 4.0]]))
    (tmp_path / "f.ids").write_text("B3\nB1\n")
    attach_features(store, "text", tmp_path / "f.npy")
    f = read_store(store).features["text"]
    assert f.present.tolist() == [False, True, False, True]
    np.testing.assert_array_equal(f.matrix[3], [1, 2])
    (tmp_path / "f.ids").write_text("B3\n")
    with pytest.raises(InputFormatError, match="2 rows, expected 1"):
        read_feature_source(tmp_path / "f.npy")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(MissrecError, match="not found"):
        read_feature_source(tmp_path / "nope.feat3CLS")
