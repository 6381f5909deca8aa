"""Raw Amazon Review 2018 import on small dumps written here, broken lines included."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from missrec.cli import main
from missrec.data.importers import ImportOptions, get_importer
from missrec.data.importers.amazon import import_amazon, item_text
from missrec.data.store import SPLIT_TEST, SPLIT_TRAIN, SPLIT_VALID
from missrec.errors import InputFormatError, MissrecError


def review(user: str, asin: str, t: int) -> str:
    return json.dumps({"reviewerID": user, "asin": asin, "unixReviewTime": t, "overall": 5.0,
                       "reviewText": "fine"})


def reviews_lines() -> list[str]:
    """u1..u3 each review i1..i3 (u3 also i4, which only it reviews); one exact duplicate,
    one Python-literal line, one review of an item without metadata."""
    lines = [
        review("u1", "i1", 300), review("u1", "i2", 100), review("u1", "i3", 200),
        review("u2", "i2", 10), review("u2", "i3", 20), review("u2", "i1", 30),
        review("u2", "i1", 30),  # exact duplicate: dropped
        "{'reviewerID': 'u3', 'asin': 'i3', 'unixReviewTime': 5, 'verified': True}",
        review("u3", "i1", 6), review("u3", "i2", 7), review("u3", "i4", 8),
        review("u3", "nometa", 9),  # no metadata record: dropped
        "",
    ]
    return lines


def meta_lines() -> list[str]:
    return [
        json.dumps({"asin": "i1", "title": "Gorilla Glue &amp; Tape <b>8 oz</b>",
                    "category": ["Industrial &amp; Scientific", "Tapes, Adhesives &amp; Sealants"],
                    "brand": "Gorilla", "imageURLHighRes": ["https://img/i1-hi.jpg"],
                    "imageURL": ["https://img/i1.jpg"]}),
        json.dumps({"asin": "i2", "title": "Sanding Roll.", "category": [], "brand": "",
                    "imageURL": ["https://img/i2.jpg"]}),
        # The loose Python-literal style of real dumps.
        "{'asin': 'i3', 'title': '', 'category': ['Lab', 'Lab'], 'brand': 'Acme', 'imageURL': []}",
        json.dumps({"asin": "i4", "title": "Only u3 has it"}),
        json.dumps({"asin": "i1", "title": "later duplicate record, ignored"}),
    ]


def write(path: Path, lines: list[str], gz: bool = False) -> Path:
    data = "".join(line + "\n" for line in lines).encode()
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


@pytest.fixture
def dump(tmp_path: Path) -> tuple[Path, Path]:
    return write(tmp_path / "Sci.json", reviews_lines()), write(tmp_path / "meta_Sci.json", meta_lines())


def test_import_sample(dump: tuple[Path, Path]) -> None:
    ds = import_amazon(list(dump), ImportOptions(kcore=3))
    assert ds.name == "Sci"
    # i4 (1 review) and 'nometa' go; u3 keeps 3 interactions.
    assert sorted(ds.items.ids[1:]) == ["i1", "i2", "i3"] and ds.n_users == 3
    seqs = ds.sequences()
    splits = ds.split_sequences()
    ext = lambda u: [ds.items.ids[i] for i in seqs[ds.users.index(u)]]  # noqa: E731
    assert ext("u1") == ["i2", "i3", "i1"]      # chronological
    assert ext("u2") == ["i2", "i3", "i1"]      # duplicate dropped
    assert ext("u3") == ["i3", "i1", "i2"]      # the Python-literal line counts
    for s in splits[1:]:
        assert s.tolist() == [SPLIT_TRAIN, SPLIT_VALID, SPLIT_TEST]
    text = dict(zip(ds.items.ids, ds.item_text))
    assert text["i1"] == "Gorilla Glue & Tape 8 oz. Industrial & Scientific Tapes, Adhesives & Sealants. Gorilla."
    assert text["i2"] == "Sanding Roll."
    assert text["i3"] == "Lab. Acme."
    image = dict(zip(ds.items.ids, ds.item_image))
    assert image["i1"] == "https://img/i1-hi.jpg" and image["i2"] == "https://img/i2.jpg" and image["i3"] is None
    p = ds.provenance
    assert p["duplicate_reviews_dropped"] == 1 and p["reviews_without_meta_dropped"] == 1
    assert p["reviews_read"] == 12


def test_gzip_and_images_dir(tmp_path: Path) -> None:
    rev = write(tmp_path / "r.json.gz", reviews_lines(), gz=True)
    meta = write(tmp_path / "m.json.gz", meta_lines(), gz=True)
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    (imgs / "i3.png").write_bytes(b"png")
    (imgs / "i2.txt").write_bytes(b"not an image extension")
    ds = get_importer("amazon")([rev, meta], ImportOptions(kcore=3, images_dir=imgs))
    assert ds.name == "r"
    image = dict(zip(ds.items.ids, ds.item_image))
    assert image["i3"] == str((imgs / "i3.png").resolve())
    assert image["i2"] == "https://img/i2.jpg"


@pytest.mark.parametrize("which, line, bad, message", [
    ("reviews", 3, '{"reviewerID": "u1", "asin": "i3", ', r"not a JSON object or Python dict literal"),
    ("reviews", 2, json.dumps({"reviewerID": "u1", "asin": "i2"}), r"missing field 'unixReviewTime'"),
    ("reviews", 1, json.dumps({"reviewerID": "u1", "asin": "i2", "unixReviewTime": "soon"}), r"Unix timestamp"),
    ("reviews", 2, "[1, 2, 3]", r"expected an object"),
    ("meta", 2, json.dumps({"title": "no asin"}), r"missing field 'asin'"),
    ("meta", 4, "<html>", r"not a JSON object"),
])
def test_broken_lines_name_file_and_line(tmp_path: Path, which: str, line: int, bad: str, message: str) -> None:
    rev_lines, m_lines = reviews_lines(), meta_lines()
    target = rev_lines if which == "reviews" else m_lines
    target[line - 1] = bad
    rev = write(tmp_path / "r.json", rev_lines)
    meta = write(tmp_path / "m.json", m_lines)
    path = rev if which == "reviews" else meta
    with pytest.raises(InputFormatError, match=message) as err:
        import_amazon([rev, meta], ImportOptions(kcore=3))
    assert err.value.path == str(path) and err.value.line == line
    assert str(err.value).startswith(f"{path}:{line}: ")


def test_invalid_utf8_and_corrupt_gzip(tmp_path: Path) -> None:
    rev = tmp_path / "r.json"
    rev.write_bytes(("\n".join(reviews_lines()[:2]) + "\n").encode() + b'{"reviewerID": "\xff"}\n')
    meta = write(tmp_path / "m.json", meta_lines())
    with pytest.raises(InputFormatError, match=r"r\.json:3: is not valid UTF-8"):
        import_amazon([rev, meta], ImportOptions(kcore=1))
    gz = tmp_path / "cut.json.gz"
    gz.write_bytes(gzip.compress(("\n".join(reviews_lines()) + "\n").encode())[:-20])
    with pytest.raises(InputFormatError, match="truncated or corrupt gzip"):
        import_amazon([gz, meta], ImportOptions(kcore=1))


def test_skip_bad_lines_option(tmp_path: Path) -> None:
    lines = reviews_lines()
    lines[3] = "garbage"
    rev = write(tmp_path / "r.json", lines)
    meta = write(tmp_path / "m.json", meta_lines() + ["{broken"])
    opts = ImportOptions(kcore=2)
    opts.skip_bad_lines = True  # type: ignore[attr-defined]  # not (yet) an ImportOptions field
    ds = import_amazon([rev, meta], opts)
    assert ds.provenance["bad_lines_skipped"] == {str(rev): 1, str(meta): 1}


def test_files_in_wrong_order(dump: tuple[Path, Path]) -> None:
    rev, meta = dump
    with pytest.raises(InputFormatError, match="looks like a metadata file"):
        import_amazon([meta, rev], ImportOptions())
    with pytest.raises(MissrecError, match="two files"):
        import_amazon([rev], ImportOptions())


def test_kcore_too_strict(dump: tuple[Path, Path]) -> None:
    with pytest.raises(MissrecError, match="nothing left after 10-core"):
        import_amazon(list(dump), ImportOptions(kcore=10))


def test_item_text_cleaning() -> None:
    assert item_text({"title": "  A&amp;B  ", "category": ["X", "", "X", "Y"], "brand": None}) == "A&B. X Y."
    assert item_text({"title": "x" * 3000, "categories": [["Lab"]], "brand": "Z"}) == "Lab. Z."
    assert item_text({}) == ""


def test_cli_import_writes_nothing_on_error(tmp_path: Path, dump: tuple[Path, Path]) -> None:
    rev, meta = dump
    dest = tmp_path / "store"
    res = CliRunner().invoke(main, ["data", "import", "--format", "amazon", "--kcore", "3",
                                    str(rev), str(meta), str(dest)])
    assert res.exit_code == 0, res.output
    assert "items          3" in res.output
    broken = write(tmp_path / "broken.json", reviews_lines()[:4] + ["{oops"])
    dest2 = tmp_path / "store2"
    res = CliRunner().invoke(main, ["data", "import", "--format", "amazon", str(broken), str(meta), str(dest2)])
    assert res.exit_code == 1
    assert f"error: {broken}:5: not a JSON object" in res.output
    assert not dest2.exists()
    assert not list(tmp_path.glob(".store2*")), "no temporary store left behind"
