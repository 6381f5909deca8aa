"""RecBole atomic-file importer: real ml-100k figures, split rules, malformed inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from missrec.data.importers import ImportOptions, get_importer
from missrec.data.importers.recbole import import_recbole
from missrec.data.store import SPLIT_TEST, SPLIT_TRAIN, SPLIT_VALID, read_store, write_store
from missrec.errors import InputFormatError, MissrecError

from support import DATASETS

ML100K = DATASETS / "ml-100k"

INTER_HEADER = "user_id:token\titem_id:token\trating:float\ttimestamp:float"
ITEM_HEADER = "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq"


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def toy(tmp_path: Path, inter_rows: list[str] | None = None, item_rows: list[str] | None = None,
        inter_header: str = INTER_HEADER, item_header: str = ITEM_HEADER) -> Path:
    """A tiny dataset ``toy/toy.inter`` (+ ``toy.item``): 2 users x 4 items."""
    d = tmp_path / "toy"
    d.mkdir(exist_ok=True)
    if inter_rows is None:
        inter_rows = [
            "u1\ti1\t4\t30", "u1\ti2\t3\t10", "u1\ti3\t5\t20", "u1\ti4\t1\t20",
            "u2\ti2\t2\t5", "u2\ti1\t2\t7", "u2\ti4\t2\t6",
        ]
    write(d / "toy.inter", [inter_header, *inter_rows])
    if item_rows is None:
        item_rows = ["i1\tAlpha\t1990\tDrama", "i2\tBeta\t\tComedy Crime", "i3\tGamma.\t2001\t", "i4\t\t\t"]
    write(d / "toy.item", [item_header, *item_rows])
    return d


def seqs(ds) -> dict[str, list[str]]:
    return {ds.users.ids[u]: [ds.items.ids[i] for i in s]
            for u, s in enumerate(ds.sequences()) if u > 0}


def expect_error(src, match: str, line: int | None, path: Path | None = None, **opts) -> InputFormatError:
    with pytest.raises(InputFormatError, match=match) as err:
        import_recbole(src if isinstance(src, list) else [src], ImportOptions(**opts))
    assert err.value.line == line
    if path is not None:
        assert Path(err.value.path) == path
    return err.value


# ----------------------------------------------------------------------------- real data

@pytest.fixture(scope="module")
def ml100k():
    if not (ML100K / "ml-100k.inter").exists():
        pytest.skip("ml-100k not available")
    return import_recbole([ML100K], ImportOptions())


def test_ml100k_5core_figures(ml100k):
    ds = ml100k
    assert ds.name == "ml-100k"
    assert (ds.n_users, ds.n_items, len(ds.interactions)) == (943, 1349, 99_287)
    counts = np.bincount(ds.interactions.split, minlength=3)
    assert counts[SPLIT_VALID] == counts[SPLIT_TEST] == 943
    assert ds.provenance["text_fields"] == ["movie_title", "release_year", "class"]
    assert ds.provenance["kcore"] == 5


def test_ml100k_5core_holds(ml100k):
    inter = ml100k.interactions
    assert np.bincount(inter.user)[1:].min() >= 5
    assert np.bincount(inter.item)[1:].min() >= 5


def test_ml100k_chronological_leave_one_out(ml100k):
    inter = ml100k.interactions
    order = np.lexsort((inter.position, inter.user))
    u, ts, sp = inter.user[order], inter.timestamp[order], inter.split[order]
    same_user = u[1:] == u[:-1]
    assert np.all(ts[1:][same_user] >= ts[:-1][same_user])
    last = np.r_[~same_user, True]
    assert np.all(sp[last] == SPLIT_TEST)
    second_last = np.r_[last[1:], False] & ~last
    assert np.all(sp[second_last] == SPLIT_VALID)
    assert np.all(sp[~last & ~second_last] == SPLIT_TRAIN)


def test_ml100k_item_text(ml100k):
    text = dict(zip(ml100k.items.ids, ml100k.item_text))
    assert text["1"] == "Toy Story. 1995. Animation Children's Comedy."
    assert text["2"] == "GoldenEye. 1995. Action Adventure Thriller."
    assert all(ml100k.item_text[1:])


def test_ml100k_without_filter_and_from_inter_file():
    if not (ML100K / "ml-100k.inter").exists():
        pytest.skip("ml-100k not available")
    ds = import_recbole([ML100K / "ml-100k.inter"], ImportOptions(kcore=0, text_fields=["movie_title"]))
    assert (ds.n_users, ds.n_items, len(ds.interactions)) == (943, 1682, 100_000)
    assert dict(zip(ds.items.ids, ds.item_text))["1"] == "Toy Story."


# ----------------------------------------------------------------------------- behaviour

def test_toy_order_ties_split_and_text(tmp_path):
    d = toy(tmp_path)
    ds = import_recbole([d], ImportOptions(kcore=0))
    assert ds.name == "toy"
    # time order; the tie at t=20 keeps file order (i3 before i4)
    assert seqs(ds) == {"u1": ["i2", "i3", "i4", "i1"], "u2": ["i2", "i4", "i1"]}
    labels = {ds.users.ids[u]: s.tolist() for u, s in enumerate(ds.split_sequences()) if u > 0}
    assert labels == {"u1": [0, 0, 1, 2], "u2": [0, 1, 2]}
    text = dict(zip(ds.items.ids, ds.item_text))
    assert text == {"[PAD]": "", "i1": "Alpha. 1990. Drama.", "i2": "Beta. Comedy Crime.",
                    "i3": "Gamma. 2001.", "i4": ""}
    assert ds.interactions.timestamp.dtype == np.float64


def test_toy_kcore_and_text_field_choice(tmp_path):
    rows = [f"u{u}\ti{i}\t1\t{u * 10 + i}" for u in range(1, 4) for i in range(1, 4)]
    rows += ["u4\ti1\t1\t1", "u4\ti9\t1\t2", "u4\ti2\t1\t3"]  # i9 is seen once
    d = toy(tmp_path, rows, ["i1\tAlpha\t1990\tDrama", "i2\tBeta\t1991\tComedy", "i3\tGamma\t1992\tWar"])
    ds = import_recbole([d], ImportOptions(kcore=3, text_fields=["class", "movie_title"]))
    # i9 drops, then u4 has 2 rows and drops, then every item still has 3 users
    assert ds.n_users == 3 and ds.n_items == 3 and "i9" not in ds.items
    assert dict(zip(ds.items.ids, ds.item_text))["i1"] == "Drama. Alpha."


def test_explicit_item_file_and_store_roundtrip(tmp_path):
    d = toy(tmp_path)
    other = write(tmp_path / "names.item", ["item_id:token\tname:token_seq", "i1\tOne"])
    ds = import_recbole([d / "toy.inter", other], ImportOptions(kcore=0))
    assert dict(zip(ds.items.ids, ds.item_text))["i1"] == "One."
    back = read_store(write_store(ds, tmp_path / "store"))
    assert back.fingerprint() == ds.fingerprint() and back.item_text == ds.item_text


def test_item_file_is_optional_and_registry(tmp_path):
    d = toy(tmp_path)
    (d / "toy.item").unlink()
    ds = get_importer("recbole")([d], ImportOptions(kcore=0))
    assert ds.item_text == [""] * 5 and ds.provenance["item_file"] is None


def test_too_strict_kcore_is_an_error(tmp_path):
    with pytest.raises(MissrecError, match="lower --kcore"):
        import_recbole([toy(tmp_path)], ImportOptions(kcore=10))


# ----------------------------------------------------------------------------- malformed input

def test_missing_required_field(tmp_path):
    d = toy(tmp_path, inter_header="user_id:token\titem_id:token\trating:float\ttime:float")
    expect_error(d, r"lacks the required field 'timestamp:float'.*it has: user_id, item_id", 1, d / "toy.inter")


def test_wrong_type_of_required_field(tmp_path):
    d = toy(tmp_path, inter_header="user_id:token\titem_id:token\trating:float\ttimestamp:token")
    expect_error(d, r"'timestamp' has type 'token'; expected 'timestamp:float'", 1)


def test_unknown_type(tmp_path):
    d = toy(tmp_path, inter_header="user_id:token\titem_id:token\trating:int\ttimestamp:float")
    expect_error(d, r"'rating:int' has unknown type 'int'; expected one of token, token_seq", 1)


def test_header_column_without_type(tmp_path):
    d = toy(tmp_path, inter_header="user_id\titem_id:token\trating:float\ttimestamp:float")
    expect_error(d, r"'user_id' is not 'field:type'", 1)


def test_duplicate_header_field(tmp_path):
    d = toy(tmp_path, inter_header="user_id:token\titem_id:token\titem_id:token\ttimestamp:float")
    expect_error(d, r"names field 'item_id' twice", 1)


@pytest.mark.parametrize("sep, word", [(",", "commas"), (" ", "spaces"), (";", "semicolons")])
def test_header_not_tab_separated(tmp_path, sep, word):
    d = toy(tmp_path, inter_header=INTER_HEADER.replace("\t", sep))
    expect_error(d, rf"not tab-separated; the line has no tab but {word}", 1, d / "toy.inter")


@pytest.mark.parametrize("sep, word", [(",", "commas"), (" ", "spaces")])
def test_data_line_not_tab_separated(tmp_path, sep, word):
    d = toy(tmp_path, ["u1\ti1\t4\t30", sep.join(["u1", "i2", "3", "10"])])
    expect_error(d, rf"expected 4 tab-separated columns \(user_id, item_id, rating, timestamp\), "
                    rf"found 1; the line has no tab but {word}", 3)


def test_wrong_column_count(tmp_path):
    d = toy(tmp_path, ["u1\ti1\t4\t30", "u1\ti2\t3\t10\textra"])
    expect_error(d, r"expected 4 tab-separated columns .* found 5$", 3)


def test_non_numeric_timestamp(tmp_path):
    d = toy(tmp_path, ["u1\ti1\t4\t30", "u1\ti2\t3\t10", "u1\ti3\t3\tyesterday"])
    expect_error(d, r"timestamp 'yesterday' is not a number", 4)


def test_nan_timestamp(tmp_path):
    d = toy(tmp_path, ["u1\ti1\t4\tnan"])
    expect_error(d, r"timestamp 'nan' is not a number", 2)


def test_empty_user_id(tmp_path):
    d = toy(tmp_path, ["u1\ti1\t4\t30", "\ti2\t3\t10"])
    expect_error(d, r"user_id is empty", 3)


def test_blank_lines_keep_line_numbers(tmp_path):
    d = toy(tmp_path, ["u1\ti1\t4\t30", "", "u1\ti2\t3\tx"])
    expect_error(d, r"timestamp 'x'", 4)


def test_empty_and_header_only_files(tmp_path):
    d = toy(tmp_path)
    (d / "toy.inter").write_text("")
    expect_error(d, r"is empty; expected a header line", 1)
    write(d / "toy.inter", [INTER_HEADER])
    expect_error(d, r"holds a header but no interactions", 2)


def test_invalid_utf8(tmp_path):
    d = toy(tmp_path)
    (d / "toy.item").write_bytes(ITEM_HEADER.encode() + b"\ni1\tCaf\xe9\t1990\tDrama\n")
    expect_error(d, r"is not valid UTF-8", 2, d / "toy.item", kcore=0)


def test_duplicate_item_in_item_file(tmp_path):
    d = toy(tmp_path, item_rows=["i1\tA\t1\tX", "i2\tB\t2\tY", "i1\tC\t3\tZ"])
    expect_error(d, r"item 'i1' appears twice \(first at line 2\)", 4, d / "toy.item", kcore=0)


def test_item_file_lacks_item_id(tmp_path):
    d = toy(tmp_path, item_header="id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq")
    expect_error(d, r"lacks the required field 'item_id:token'", 1, d / "toy.item", kcore=0)


def test_unknown_text_field(tmp_path):
    d = toy(tmp_path)
    expect_error(d, r"text field 'genre' is not in the header \(it has: item_id, movie_title", 1,
                 d / "toy.item", text_fields=["genre"])


def test_text_fields_need_an_item_file(tmp_path):
    d = toy(tmp_path)
    (d / "toy.item").unlink()
    expect_error(d, r"needed for the requested text fields", None, d / "toy.item", text_fields=["x"])


def test_directory_without_or_with_several_inter_files(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    expect_error(empty, r"holds no RecBole .inter file", None, empty)
    d = tmp_path / "many"
    d.mkdir()
    write(d / "a.inter", [INTER_HEADER])
    write(d / "b.inter", [INTER_HEADER])
    expect_error(d, r"several .inter files \(a.inter, b.inter\); give the one to import", None, d)


def test_directory_named_file_preferred(tmp_path):
    d = toy(tmp_path)
    write(d / "other.inter", ["garbage"])
    ds = import_recbole([d], ImportOptions(kcore=0))
    assert ds.n_users == 2


def test_unsupported_source(tmp_path):
    f = write(tmp_path / "ratings.csv", ["a,b"])
    expect_error(f, r"expected a directory, a RecBole .inter file", None, f)
