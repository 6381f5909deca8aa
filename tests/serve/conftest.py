"""Serving tests share small trained runs and their bundles (built once per session)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from missrec.cli import main


def cli(*args) -> str:
    res = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return res.output


def train_run(store: Path, out: Path, model: str = "missrec", *sets: str) -> Path:
    small = ["d=16", "ffn_dim=32"] if model == "missrec" else ["model.hidden=16"]
    args = ["train", "--model", model, "--data", store, "--out", out, "-q", "--set", "epochs=1",
            "--set", "batch_size=64"]
    for s in (*small, *sets):
        args += ["--set", s]
    cli(*args)
    return out


@pytest.fixture(scope="session")
def toy_run(toy_store, tmp_path_factory) -> Path:
    return train_run(toy_store, tmp_path_factory.mktemp("runs") / "mr")


@pytest.fixture(scope="session")
def toy_bundle_master(toy_run, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bundles") / "b"
    cli("export", toy_run, out)
    return out


@pytest.fixture
def toy_bundle(toy_bundle_master, tmp_path) -> Path:
    """A fresh copy per test, since tests change its catalogue."""
    return Path(shutil.copytree(toy_bundle_master, tmp_path / "bundle"))
