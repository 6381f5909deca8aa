"""`missrec items add`: a JSON-lines file loaded in chunks, resumable by id, one line per
bad line, and refused (in one line) while a server holds the bundle."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from missrec.cli import main
from missrec.errors import MissrecError
from missrec.serve.bulk import add_file
from missrec.serve.catalogue import NewItem
from missrec.serve.recommender import Recommender


def write_lines(path: Path, items: list[dict]) -> Path:
    path.write_text("".join(json.dumps(it) + "\n" for it in items))
    return path


def items(n: int, prefix: str = "bulk") -> list[dict]:
    return [{"id": f"{prefix}-{j}", "text": f"item {j}", "features": {"text": [0.01 * j] * 16}}
            for j in range(n)]


def test_a_file_is_added_in_chunks_with_a_progress_bar(toy_bundle, tmp_path, capsys):
    f = write_lines(tmp_path / "items.jsonl", items(7) + [{"id": "i1", "text": "a trained item"}])
    report = add_file(toy_bundle, f, chunk=3, progress=True)
    assert (report.lines, report.added, report.present, report.chunks) == (8, 7, 1, 3)
    assert report.catalogue_size == 57
    assert "items add" in capsys.readouterr().err  # the tqdm bar
    rec = Recommender(toy_bundle)
    assert rec.get_item("bulk-6")["text"] == "item 6" and rec.get_item("i1")["text"] != "a trained item"
    assert rec.journal.generation == 1 and not rec.journal.path.exists()  # compacted at the end
    rec.close()


def test_replace_puts_changed_items_again_and_skips_unchanged_ones(toy_bundle, tmp_path):
    add_file(toy_bundle, write_lines(tmp_path / "first.jsonl", items(4)))
    fresh = items(6)
    fresh[1]["text"] = "item 1, renamed"
    fresh[2]["features"] = {"text": [0.5] * 16}
    f = write_lines(tmp_path / "refresh.jsonl", fresh + [{"id": "i1", "text": "a trained item",
                                                          "features": {"text": [0.25] * 16}}])
    report = add_file(toy_bundle, f, chunk=4, replace=True)
    # bulk-0 and bulk-3 as first put: skipped; a trained item's first content is unknown: put
    assert (report.lines, report.added, report.replaced, report.unchanged, report.present) == (7, 2, 3, 2, 0)
    rec = Recommender(toy_bundle, writable=False)
    assert rec.get_item("bulk-1")["text"] == "item 1, renamed" and rec.get_item("i1")["text"] == "a trained item"
    assert (rec.catalogue.state.raw["text"][rec.catalogue.index["bulk-2"]] == 0.5).all()
    assert rec.n_items == 56  # 50 trained + 6: nothing added twice
    rec.close()
    # the same refresh again (the digests read back from the compacted bundle): nothing to embed
    again = add_file(toy_bundle, f, replace=True)
    assert (again.added, again.replaced, again.unchanged, again.chunks) == (0, 0, 7, 0)
    # without --replace the same file changes nothing either
    plain = add_file(toy_bundle, f)
    assert (plain.added, plain.replaced, plain.present) == (0, 0, 7)


def test_item_digests_survive_the_log_and_a_new_generation(toy_bundle):
    rec = Recommender(toy_bundle)
    put = NewItem.parse({"id": "new", "text": "a new item", "features": {"text": [0.1] * 16}}, "item")
    rec.add_items([put])
    rec.close()  # the change is in the log only
    rec = Recommender(toy_bundle)
    row = rec.catalogue.index["new"]
    assert rec.catalogue.state.digest[row] == put.digest() and rec.catalogue.state.digest[1] == ""
    rec.compact()
    rec.close()
    rec = Recommender(toy_bundle, writable=False)
    assert rec.catalogue.state.digest[rec.catalogue.index["new"]] == put.digest()
    rec.close()
    assert put.digest() != NewItem.parse({"id": "new", "text": "another text", "features": {"text": [0.1] * 16}},
                                         "item").digest()
    assert put.digest() == NewItem.parse({"id": "other id", "text": "a new item", "features": {"text": [0.1] * 16}},
                                         "item").digest()


def test_a_load_stopped_midway_resumes_by_id(toy_bundle, tmp_path, monkeypatch):
    f = write_lines(tmp_path / "items.jsonl", items(8))
    calls = []
    original = Recommender.add_items

    def dies_on_the_second_chunk(self, batch):
        calls.append([it.id for it in batch])
        if len(calls) == 2:
            raise KeyboardInterrupt  # as if killed while embedding the second chunk
        return original(self, batch)

    monkeypatch.setattr(Recommender, "add_items", dies_on_the_second_chunk)
    with pytest.raises(KeyboardInterrupt):
        add_file(toy_bundle, f, chunk=3)
    monkeypatch.setattr(Recommender, "add_items", original)
    rec = Recommender(toy_bundle)
    assert rec.n_items == 53  # the first chunk, whole; nothing of the second
    rec.close()
    report = add_file(toy_bundle, f, chunk=3)
    assert (report.present, report.added, report.catalogue_size) == (3, 5, 58)


@pytest.mark.parametrize("line,message", [
    ('{"id": "x", "text": "t"', "not valid JSON"),
    ('["x"]', "expected an object"),
    ('{"id": "", "text": "t"}', "id: expected a non-empty string"),
    ('{"id": "x", "features": {"text": [1, 2]}}', "features.text: expected a list of 16 numbers"),
    ('{"id": "x", "features": {"smell": [1]}}', "features.smell: unknown modality"),
    ('{"id": "x", "colour": "red"}', "colour: unknown field"),
    ('{"id": "x"}', "the item has no content"),
    ('{"id": "bulk-1", "text": "again"}', "id 'bulk-1' is on line 2 already"),
])
def test_a_bad_line_is_one_line_naming_it_and_nothing_is_added(toy_bundle, tmp_path, line, message):
    f = tmp_path / "items.jsonl"
    f.write_text("".join(json.dumps(it) + "\n" for it in items(3)) + "\n" + line + "\n")
    res = CliRunner().invoke(main, ["items", "add", str(toy_bundle), str(f), "-q"])
    lines = res.output.strip().splitlines()
    assert res.exit_code == 1 and len(lines) == 1, res.output
    assert lines[0].startswith(f"error: {f}:5: ") and message in lines[0]
    rec = Recommender(toy_bundle, writable=False)
    assert rec.n_items == 50
    rec.close()


def test_an_item_that_cannot_be_embedded_names_its_line(toy_bundle, tmp_path):
    # the toy bundle's image features come from 'synthetic': an image alone gives no modality
    f = write_lines(tmp_path / "items.jsonl", items(2) + [{"id": "pic", "image": "aGVsbG8="}])
    with pytest.raises(MissrecError, match=r"items.jsonl:3: has no modality"):
        add_file(toy_bundle, f, chunk=10)


def test_the_cli_prints_a_summary_and_refuses_a_served_bundle(toy_bundle, tmp_path):
    f = write_lines(tmp_path / "items.jsonl", items(4))
    server = Recommender(toy_bundle)  # holds the bundle's write lock, as a server does
    res = CliRunner().invoke(main, ["items", "add", str(toy_bundle), str(f)])
    assert res.exit_code == 1 and "PUT /items" in res.output and len(res.output.strip().splitlines()) == 1
    server.close()
    res = CliRunner().invoke(main, ["items", "add", str(toy_bundle), str(f), "--chunk", "2", "-q"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert (out["added"], out["chunks"], out["catalogue_size"], out["warnings"]) == (4, 2, 54, 0)
