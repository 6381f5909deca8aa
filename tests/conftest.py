"""Fixtures shared by every test folder (helpers live in ``support.py``)."""

from __future__ import annotations

import pytest

from missrec.data.store import Dataset
from support import make_dataset


@pytest.fixture
def toy_dataset() -> Dataset:
    return make_dataset()
