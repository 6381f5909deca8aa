"""ReChorus importer: real amazon-office-2014 figures, the given split kept, malformed inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from missrec.data.importers import ImportOptions, get_importer
from missrec.data.importers.rechorus import import_rechorus
from missrec.data.store import SPLIT_TEST, SPLIT_TRAIN, SPLIT_VALID, read_store, write_store
from missrec.errors import InputFormatError

from support import DATASETS

OFFICE = DATASETS / "amazon-office-2014"

HEADER = "user_id\titem_id\ttime"
EVAL_HEADER = "user_id\titem_id\ttime\tneg_items"


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def toy(tmp_path: Path, train=None, dev=None, test=None, index=None, text=None,
        header: str = HEADER, eval_header: str = EVAL_HEADER) -> Path:
    """Two users, items 1..4 (``Shop.item2index`` maps them to A1..A4)."""
    d = tmp_path / "shop"
    d.mkdir(exist_ok=True)
    train = train if train is not None else ["1\t1\t10", "1\t2\t20", "2\t2\t5", "2\t3\t5"]
    dev = dev if dev is not None else ["1\t3\t20\t[4, 2]", "2\t4\t6\t[1]"]
    test = test if test is not None else ["1\t4\t20\t[1, 2]", "2\t1\t7\t[3]"]
    index = index if index is not None else ["A1\t1", "A2\t2", "A3\t3", "A4\t4"]
    text = text if text is not None else ["id\ttext", "A2\tBeta pen", "A1\tAlpha  paper ", "ZZ\tnot sold"]
    write(d / "train.csv", [header, *train])
    write(d / "dev.csv", [eval_header, *dev])
    write(d / "test.csv", [eval_header, *test])
    write(d / "Shop.item2index", index)
    write(d / "Shop.text", text)
    return d


def labelled(ds) -> dict[str, list[tuple[str, int]]]:
    return {ds.users.ids[u]: [(ds.items.ids[i], int(s)) for i, s in zip(seq, lab)]
            for u, (seq, lab) in enumerate(zip(ds.sequences(), ds.split_sequences())) if u > 0}


def expect_error(src, match: str, line: int | None, path: Path | None = None) -> InputFormatError:
    with pytest.raises(InputFormatError, match=match) as err:
        import_rechorus(src if isinstance(src, list) else [src], ImportOptions())
    assert err.value.line == line
    if path is not None:
        assert Path(err.value.path) == path
    return err.value


# ----------------------------------------------------------------------------- real data

@pytest.fixture(scope="module")
def office():
    if not (OFFICE / "train.csv").exists():
        pytest.skip("amazon-office-2014 not available")
    return import_rechorus([OFFICE], ImportOptions())


def test_office_figures(office):
    assert office.name == "Office"
    assert (office.n_users, office.n_items, len(office.interactions)) == (4905, 2420, 53_258)
    counts = np.bincount(office.interactions.split, minlength=3)
    assert counts[SPLIT_VALID] == counts[SPLIT_TEST] == 4905
    assert np.bincount(office.interactions.user)[1:].min() >= 5


def test_office_ids_and_text(office):
    asins = [line.split("\t")[0] for line in (OFFICE / "Office.item2index").read_text().splitlines()]
    assert sorted(office.items.ids[1:]) == sorted(asins)
    assert all(office.item_text[1:])
    text = {}
    for line in (OFFICE / "Office.text").read_text(encoding="utf-8").splitlines()[1:]:
        asin, t = line.split("\t", 1)
        text[asin] = " ".join(t.split())
    assert all(text[a] == t for a, t in zip(office.items.ids[1:], office.item_text[1:]))


def test_office_split_matches_files(office):
    index = {}
    for line in (OFFICE / "Office.item2index").read_text().splitlines():
        asin, i = line.split("\t")
        index[i] = asin
    inter = office.interactions
    for code, name in ((SPLIT_VALID, "dev.csv"), (SPLIT_TEST, "test.csv")):
        rows = [line.split("\t")[:3] for line in (OFFICE / name).read_text().splitlines()[1:]]
        want = {(u, index[i], float(t)) for u, i, t in rows}
        m = inter.split == code
        got = {(office.users.ids[u], office.items.ids[i], t)
               for u, i, t in zip(inter.user[m].tolist(), inter.item[m].tolist(), inter.timestamp[m].tolist())}
        assert got == want
    assert "21" in office.users  # user ids are the files' strings


# ----------------------------------------------------------------------------- behaviour

def test_toy_ties_follow_the_files(tmp_path):
    ds = import_rechorus([toy(tmp_path)], ImportOptions(kcore=5))  # kcore does not apply
    assert ds.name == "Shop"
    # user 1: train(20) before dev(20) before test(20); user 2: train rows tie at 5, file order
    assert labelled(ds) == {
        "1": [("A1", SPLIT_TRAIN), ("A2", SPLIT_TRAIN), ("A3", SPLIT_VALID), ("A4", SPLIT_TEST)],
        "2": [("A2", SPLIT_TRAIN), ("A3", SPLIT_TRAIN), ("A4", SPLIT_VALID), ("A1", SPLIT_TEST)],
    }
    text = dict(zip(ds.items.ids, ds.item_text))
    assert text == {"[PAD]": "", "A1": "Alpha paper", "A2": "Beta pen", "A3": "", "A4": ""}
    back = read_store(write_store(ds, tmp_path / "store"))
    assert back.fingerprint() == ds.fingerprint()


def test_toy_from_files_without_index_or_text(tmp_path):
    d = toy(tmp_path)
    ds = get_importer("rechorus")([d / "train.csv", d / "dev.csv", d / "test.csv"], ImportOptions())
    assert ds.name == "shop"
    assert sorted(ds.items.ids[1:]) == ["1", "2", "3", "4"]


def test_text_file_without_header_and_extra_columns(tmp_path):
    d = toy(tmp_path, train=["1\t1\t10\tx", "1\t2\t20\ty", "2\t2\t5\tz", "2\t3\t5\tw"],
            header="user_id\titem_id\ttime\tc_extra", text=["A1\tAlpha"])
    ds = import_rechorus([d], ImportOptions(name="custom"))
    assert ds.name == "custom"
    assert dict(zip(ds.items.ids, ds.item_text))["A1"] == "Alpha"


# ----------------------------------------------------------------------------- malformed input

def test_dev_row_not_second_last(tmp_path):
    d = toy(tmp_path, train=["1\t1\t10", "1\t2\t30", "2\t2\t5", "2\t3\t5"], test=["1\t4\t40\t[]", "2\t1\t7\t[]"])
    expect_error(d, r"the row of user '1' \(time 20\) is not their second-last interaction: train.csv:3 is later "
                    r"\(time 30\); the files are not a chronological leave-one-out split", 2, d / "dev.csv")


def test_test_row_before_dev_row(tmp_path):
    # a test row that is not last always leaves the dev row out of place too, so dev is named
    d = toy(tmp_path, test=["1\t4\t20\t[]", "2\t1\t3\t[]"])
    expect_error(d, r"the row of user '2' \(time 6\) is not their second-last interaction: "
                    r"test.csv:3 is earlier \(time 3\)", 3, d / "dev.csv")


def test_item_not_in_item2index(tmp_path):
    d = toy(tmp_path, train=["1\t1\t10", "1\t9\t20", "2\t2\t5", "2\t3\t5"])
    expect_error(d, r"item_id 9 is not in Shop.item2index", 3, d / "train.csv")


@pytest.mark.parametrize("sep, word", [(",", "commas"), (" ", "spaces")])
def test_header_not_tab_separated(tmp_path, sep, word):
    d = toy(tmp_path, header=HEADER.replace("\t", sep))
    expect_error(d, rf"not tab-separated; the line has no tab but {word}.*expected user_id<TAB>item_id<TAB>time",
                 1, d / "train.csv")


@pytest.mark.parametrize("sep, word", [(",", "commas"), (" ", "spaces")])
def test_row_not_tab_separated(tmp_path, sep, word):
    d = toy(tmp_path, train=["1\t1\t10", sep.join(["1", "2", "20"]), "2\t2\t5", "2\t3\t5"])
    expect_error(d, rf"expected 3 tab-separated columns \(user_id, item_id, time\), found 1; "
                    rf"the line has no tab but {word}", 3, d / "train.csv")


def test_missing_column(tmp_path):
    d = toy(tmp_path, eval_header="user_id\titem_id\ttimestamp\tneg_items")
    expect_error(d, r"header lacks column 'time' \(it has: user_id, item_id, timestamp, neg_items\)",
                 1, d / "dev.csv")


def test_wrong_column_count(tmp_path):
    d = toy(tmp_path, dev=["1\t3\t20\t[4, 2]", "2\t4\t6"])
    expect_error(d, r"expected 4 tab-separated columns \(user_id, item_id, time, neg_items\), found 3$",
                 3, d / "dev.csv")


def test_non_numeric_time_and_item(tmp_path):
    d = toy(tmp_path, train=["1\t1\t10", "1\t2\tnoon", "2\t2\t5", "2\t3\t5"])
    expect_error(d, r"time 'noon' is not a number", 3, d / "train.csv")
    d = toy(tmp_path, train=["1\t1\t10", "1\tA2\t20", "2\t2\t5", "2\t3\t5"])
    expect_error(d, r"item_id 'A2' is not an integer", 3, d / "train.csv")


def test_user_with_two_dev_rows(tmp_path):
    d = toy(tmp_path, dev=["1\t3\t20\t[]", "2\t4\t6\t[]", "1\t2\t21\t[]"])
    expect_error(d, r"user '1' has a second row \(the first is line 2\)", 4, d / "dev.csv")


def test_user_missing_from_test(tmp_path):
    d = toy(tmp_path, test=["1\t4\t20\t[]"])
    expect_error(d, r"has no row for user '2' \(who is at dev.csv:3\)", None, d / "test.csv")


def test_user_without_training_rows(tmp_path):
    d = toy(tmp_path, train=["1\t1\t10", "1\t2\t20"])
    expect_error(d, r"user '2' has no rows in train.csv", 3, d / "dev.csv")


def test_item2index_errors(tmp_path):
    d = toy(tmp_path, index=["A1\t1", "A2\t2", "A3\t3", "A4\t2"])
    expect_error(d, r"index 2 is given twice \(also to 'A2'\)", 4, d / "Shop.item2index")
    d = toy(tmp_path, index=["A1\t1", "A2,2"])
    expect_error(d, r"expected 2 tab-separated columns \(id, index\), found 1; the line has no tab but commas",
                 2, d / "Shop.item2index")
    d = toy(tmp_path, index=["A1\tone"])
    expect_error(d, r"index 'one' is not an integer", 1, d / "Shop.item2index")


def test_text_file_errors(tmp_path):
    d = toy(tmp_path, text=["id\ttext", "A1\tAlpha", "A1\tAgain"])
    expect_error(d, r"id 'A1' appears twice \(first at line 2\)", 3, d / "Shop.text")
    d = toy(tmp_path, text=["id\ttext", "A1 Alpha paper"])
    expect_error(d, r"expected 'id<TAB>text'; the line has no tab but spaces", 2, d / "Shop.text")


def test_missing_split_file_and_empty_file(tmp_path):
    d = toy(tmp_path)
    (d / "test.csv").unlink()
    expect_error(d, r"no such file; the rechorus format needs train.csv, dev.csv and test.csv", None,
                 d / "test.csv")
    d = toy(tmp_path)
    write(d / "dev.csv", [EVAL_HEADER])
    expect_error(d, r"holds a header but no interactions", 2, d / "dev.csv")
    (d / "dev.csv").write_text("")
    expect_error(d, r"is empty; expected a header", 1, d / "dev.csv")
