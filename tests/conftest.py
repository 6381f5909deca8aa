"""Fixtures shared by every test folder (helpers live in ``support.py``)."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads; see missrec.cli

import pytest

from missrec.data.store import Dataset
from support import make_dataset


@pytest.fixture
def toy_dataset() -> Dataset:
    return make_dataset()
