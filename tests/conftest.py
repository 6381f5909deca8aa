"""Fixtures shared by every test folder (helpers live in ``support.py``)."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads; see missrec.cli

import pytest

from missrec.data.store import Dataset, write_store
from support import make_dataset

try:  # the fuzz tests' fixed profile: repeatable examples, sized for the suite's time budget
    from hypothesis import HealthCheck, settings

    settings.register_profile("missrec", max_examples=50, deadline=None, derandomize=True, database=None,
                              suppress_health_check=[HealthCheck.too_slow])
    settings.register_profile("missrec-long", parent=settings.get_profile("missrec"), max_examples=1000)
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "missrec"))
except ImportError:  # hypothesis is a dev extra; tests/fuzz skips itself without it
    pass


@pytest.fixture
def toy_dataset() -> Dataset:
    return make_dataset()


@pytest.fixture(scope="session")
def toy_store(tmp_path_factory) -> Path:
    """A small generated store (60 users, 50 items, text and image features), shared."""
    return write_store(make_dataset(n_users=60, n_items=50), tmp_path_factory.mktemp("serve") / "toy")
