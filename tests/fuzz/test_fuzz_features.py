"""``missrec features STORE --attach MODALITY=FILE`` on generated and damaged feature files.

Sources are raw float32 files (``X.feat3CLS`` + ``X.item2index``) and ``.npy`` matrices
(+ ``.ids``) holding any float32 values (NaN, ±inf, huge, zero rows), ids that are the
store's, foreign or duplicated, a wrong ``--attach-dim`` and truncated bytes. Each run
either attaches exactly the finite, non-zero rows of store items (NaN/inf rows only with
``--non-finite missing``, as absent items), or exits 1 with one ``error:`` line naming the
file and leaves the store byte-for-byte as it was.
"""

from __future__ import annotations

import random
import tempfile
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("hypothesis")
from hypothesis import given, strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

from _fuzzkit import (TEXT_MUTATIONS, assert_clean_failure, fresh_copy, mutate, run, tree_digest,  # noqa: E402
                      unisrec_source)
from missrec.data.store import read_store  # noqa: E402

STORE_IDS = [f"B{i:02d}" for i in range(6)]
IDS = st.sampled_from(STORE_IDS + ["Z1", "Z2", "0", "B00 "])
FLOATS = st.floats(width=32, allow_nan=True, allow_infinity=True)


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("attach")
    src = unisrec_source(base / "src", features=False)
    code, _, err = run(["data", "import", "--format", "unisrec", str(src), str(base / "store")])
    assert code == 0, err
    return base / "store"


@st.composite
def sources(draw):
    """(ids, float32 matrix, layout, --attach-dim, --non-finite)."""
    n = draw(st.integers(0, 7))
    dim = draw(st.integers(1, 5))
    ids = draw(st.lists(IDS, min_size=n, max_size=n))
    zero_rows = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    matrix = draw(hnp.arrays(np.float32, (n, dim), elements=FLOATS))
    matrix[np.asarray(zero_rows, dtype=bool)] = 0.0
    layout = draw(st.sampled_from(["raw", "npy"]))
    attach_dim = dim if layout == "npy" or draw(st.booleans()) else draw(st.integers(1, 9))
    return ids, matrix, layout, attach_dim, draw(st.sampled_from(["error", "missing"]))


def _write_source(d: Path, ids: list[str], matrix: np.ndarray, layout: str) -> tuple[Path, Path]:
    d.mkdir()
    if layout == "raw":
        (d / "X.item2index").write_bytes("".join(f"{a}\t{i}\n" for i, a in enumerate(ids)).encode())
        matrix.astype("<f4").tofile(d / "X.feat3CLS")
        return d / "X.feat3CLS", d / "X.item2index"
    np.save(d / "F.npy", matrix)
    (d / "F.ids").write_bytes("".join(f"{a}\n" for a in ids).encode())
    return d / "F.npy", d / "F.ids"


def _attach(store: Path, path: Path, dim: int, non_finite: str) -> tuple[int, str, str]:
    return run(["features", str(store), "--attach", f"image={path}", "--attach-dim", str(dim),
                "--non-finite", non_finite])


def _expected_presence(ids: list[str], matrix: np.ndarray) -> list[bool]:
    """Store items with a finite, non-zero row in the source (index order, padding first)."""
    rows = {a: r for r, a in enumerate(ids)}
    out = [False]
    for item in STORE_IDS:
        r = rows.get(item)
        out.append(r is not None and bool(np.isfinite(matrix[r]).all() and matrix[r].any()))
    return out


@given(src=sources())
def test_attach_is_exact_or_fails_in_one_line(store, src) -> None:
    ids, matrix, layout, attach_dim, non_finite = src
    with tempfile.TemporaryDirectory() as tmp:
        work = fresh_copy(store, Path(tmp) / "store")
        before = tree_digest(work)
        feat, ids_file = _write_source(Path(tmp) / "src", ids, matrix, layout)
        code, _, err = _attach(work, feat, attach_dim, non_finite)
        non_finite_rows = not np.isfinite(matrix).all()
        stripped = [a.strip() for a in ids]
        if code != 0:
            line = assert_clean_failure(code, err, [feat.name, ids_file.name])
            assert tree_digest(work) == before, "a failed attach changed the store"
            expected_failure = (len(ids) == 0 or attach_dim != matrix.shape[1] or len(set(stripped)) != len(ids)
                                or not set(stripped) & set(STORE_IDS)
                                or (non_finite == "error" and non_finite_rows))
            assert expected_failure, line
            return
        assert len(ids) and attach_dim == matrix.shape[1] and not (non_finite == "error" and non_finite_rows)
        f = read_store(work).features["image"]
        by_id = {a.strip(): r for r, a in enumerate(ids)}
        assert f.present.tolist() == _expected_presence(stripped, matrix)
        for i, item in enumerate(STORE_IDS, 1):
            if f.present[i]:
                np.testing.assert_array_equal(f.matrix[i], matrix[by_id[item]])
            else:
                assert not f.matrix[i].any()


@given(layout=st.sampled_from(["raw", "npy"]), target=st.sampled_from(["features", "ids"]),
       kind=st.sampled_from(TEXT_MUTATIONS), seed=st.integers(0, 2**16))
def test_damaged_feature_or_id_file(store, layout, target, kind, seed) -> None:
    rng = np.random.default_rng(seed)
    matrix = rng.standard_normal((6, 4)).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        work = fresh_copy(store, Path(tmp) / "store")
        before = tree_digest(work)
        feat, ids_file = _write_source(Path(tmp) / "src", list(reversed(STORE_IDS)), matrix, layout)
        path = feat if target == "features" else ids_file
        path.write_bytes(mutate(path.read_bytes(), kind, random.Random(seed)))
        code, _, err = _attach(work, feat, 4, "error")
        if code == 0:
            ds = read_store(work)
            assert np.isfinite(ds.features["image"].matrix).all()
        else:
            assert_clean_failure(code, err, [feat.name, ids_file.name])
            assert tree_digest(work) == before


# ----------------------------------------------------------------------------- targeted cases

def test_nan_row_is_named_by_file_item_and_column(store, tmp_path) -> None:
    work = fresh_copy(store, tmp_path / "store")
    before = tree_digest(work)
    m = np.ones((3, 4), dtype=np.float32)
    m[2, 3] = np.nan
    feat, _ = _write_source(tmp_path / "src", ["B01", "B02", "B03"], m, "raw")
    code, _, err = _attach(work, feat, 4, "error")
    line = assert_clean_failure(code, err, ["X.feat3CLS"])
    assert "row 2 (item 'B03'), column 3 holds NaN" in line
    assert tree_digest(work) == before
    code, out, err = _attach(work, feat, 4, "missing")
    assert code == 0, err
    assert "1 rows with NaN/inf treated as missing" in out
    f = read_store(work).features["image"]
    assert f.present.tolist() == [False, False, True, True, False, False, False]


def test_values_beyond_float32_are_rejected(store, tmp_path) -> None:
    work = fresh_copy(store, tmp_path / "store")
    (tmp_path / "src").mkdir()
    np.save(tmp_path / "src" / "F.npy", np.array([[1.0, 1e300], [2.0, 3.0]]))
    (tmp_path / "src" / "F.ids").write_text("B00\nB01\n")
    code, _, err = _attach(work, tmp_path / "src" / "F.npy", 2, "error")
    assert "row 0 (item 'B00') holds values beyond the float32 range" in assert_clean_failure(code, err, ["F.npy"])


def test_second_bad_attach_writes_neither(store, tmp_path) -> None:
    work = fresh_copy(store, tmp_path / "store")
    before = tree_digest(work)
    good, _ = _write_source(tmp_path / "good", STORE_IDS, np.ones((6, 4), np.float32), "raw")
    bad, _ = _write_source(tmp_path / "bad", STORE_IDS, np.full((6, 4), np.inf, np.float32), "raw")
    code, _, err = run(["features", str(work), "--attach", f"text={good}", "--attach", f"image={bad}",
                        "--attach-dim", "4"])
    assert "holds +inf" in assert_clean_failure(code, err, ["X.feat3CLS"])
    assert tree_digest(work) == before


@pytest.mark.parametrize("args,words", [
    (["--attach", "image"], ["--attach", "MODALITY=FEATURES_FILE"]),
    (["--attach", "image=/no/such/file.npy"], ["file.npy", "not found"]),
    (["--attach", "image=x.npy", "--attach-dim", "0"], ["--attach-dim", "0"]),
    (["--attach", "image=x.npy", "--attach-dim", "-4"], ["--attach-dim"]),
    (["--attach", "image=x.npy", "--non-finite", "ignore"], ["--non-finite", "ignore"]),
])
def test_bad_attach_options(store, tmp_path, args, words) -> None:
    work = fresh_copy(store, tmp_path / "store")
    code, _, err = run(["features", str(work), *args])
    line = assert_clean_failure(code, err, [words[0]])
    assert all(w in line for w in words), line


# ----------------------------------------------------------------------------- damaged stores

@pytest.fixture
def attached(store, tmp_path) -> Path:
    work = fresh_copy(store, tmp_path / "store")
    feat, _ = _write_source(tmp_path / "src", STORE_IDS, np.ones((6, 4), np.float32), "raw")
    assert _attach(work, feat, 4, "error")[0] == 0
    return work


def test_store_with_non_finite_features_is_refused(attached) -> None:
    m = np.load(attached / "features" / "image.npy")
    m[3, 1] = np.inf
    np.save(attached / "features" / "image.npy", m)
    code, _, err = run(["data", "describe", str(attached)])
    line = assert_clean_failure(code, err, [str(attached)])
    assert "modality 'image' holds NaN or infinite values" in line and "'B02'" in line


@pytest.mark.parametrize("name", ["features/image.npy", "features/image.present.npy", "items.parquet",
                                  "users.parquet", "interactions.parquet", "schema.json"])
@pytest.mark.parametrize("cut", [0, 0.5])
def test_truncated_store_file(attached, name, cut) -> None:
    path = attached / name
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * cut)])
    code, _, err = run(["data", "describe", str(attached)])
    assert_clean_failure(code, err, [path.name, str(attached)])
