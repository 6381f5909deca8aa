"""Fixtures for tests/features: every test gets an isolated feature cache."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own $MISSREC_CACHE, so nothing leaks between tests or from ~/.cache."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("MISSREC_CACHE", str(cache))
    return cache
