"""Error types whose messages name the file, line or field at fault."""

from __future__ import annotations

from pathlib import Path


class MissrecError(Exception):
    """Base class: the CLI prints these as one line and exits non-zero."""


class InputFormatError(MissrecError):
    """A malformed input file: names the file, the line (1-based) and what was expected."""

    def __init__(self, path: str | Path, message: str, line: int | None = None):
        self.path = str(path)
        self.line = line
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {message}")


class ConfigError(MissrecError):
    """An unknown or ill-typed configuration key."""


class ModelConfigError(ConfigError, ValueError):
    """A model setting outside its allowed values: a ConfigError for the CLI (one line),
    a ValueError for library callers."""
