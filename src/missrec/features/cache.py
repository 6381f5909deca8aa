"""An on-disk cache of encoder outputs, keyed by encoder identity and input content.

One SQLite file per encoder identity under ``<cache dir>/features/``. A row maps the SHA-256
of one input's content (the UTF-8 text, or an image file's bytes) to its float32 vector.
SQLite gives atomic commits and safe concurrent readers for free, so an interrupted run keeps
every batch it finished, and two runs sharing a cache cannot corrupt it.

The cache directory is ``$MISSREC_CACHE`` when set, else ``~/.cache/missrec``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from ..errors import MissrecError

ENV_VAR = "MISSREC_CACHE"
_SQL_CHUNK = 500  # stay well below SQLite's limit on bound parameters per statement


def default_cache_dir() -> Path:
    """``$MISSREC_CACHE`` if set, otherwise ``~/.cache/missrec``."""
    env = os.environ.get(ENV_VAR)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "missrec"


def text_key(text: str) -> str:
    """Content key of a text input."""
    return hashlib.sha256(b"text\x00" + text.encode("utf-8")).hexdigest()


def bytes_key(data: bytes) -> str:
    """Content key of an image given as the bytes of its file."""
    return hashlib.sha256(b"file\x00" + data).hexdigest()


def file_digest(path: str | Path, cache_dir: Path | None = None) -> str:
    """SHA-256 of a (possibly large) weights file, remembered by path, size and mtime.

    Encoder identities include a digest of their weights so that replacing a checkpoint
    invalidates its cached features; remembering it avoids re-reading hundreds of MB on
    every run.
    """
    path = Path(path).resolve()
    st = path.stat()
    memo_key = f"{path}|{st.st_size}|{st.st_mtime_ns}"
    memo_file = (cache_dir or default_cache_dir()) / "weights-digests.json"
    memo: dict[str, str] = {}
    try:
        memo = json.loads(memo_file.read_text())
    except (OSError, ValueError):
        pass
    if memo_key in memo:
        return memo[memo_key]
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    digest = h.hexdigest()
    memo[memo_key] = digest
    try:
        memo_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = memo_file.with_name(f"{memo_file.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(memo, indent=0, sort_keys=True))
        os.replace(tmp, memo_file)
    except OSError:
        pass  # a read-only cache dir only costs re-hashing next time
    return digest


class FeatureCache:
    """Vectors of one encoder identity, looked up by content key."""

    def __init__(self, identity: str, cache_dir: str | Path | None = None):
        self.identity = identity
        root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", identity)[:60]
        digest = hashlib.sha256(identity.encode()).hexdigest()[:12]
        self.path = root / "features" / f"{slug}-{digest}.sqlite"
        self._conn: sqlite3.Connection | None = None

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(self.path, timeout=60)
                conn.execute("CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, vec BLOB NOT NULL)")
                conn.execute("CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT)")
                conn.execute("INSERT OR IGNORE INTO meta VALUES ('identity', ?)", (self.identity,))
                conn.commit()
            except (OSError, sqlite3.Error) as e:
                raise MissrecError(f"{self.path}: feature cache unusable ({e}); point ${ENV_VAR} or "
                                   "--cache-dir elsewhere, or use --no-cache") from None
            self._conn = conn
        return self._conn

    def get_many(self, keys: Sequence[str]) -> dict[str, np.ndarray]:
        """The cached vectors among ``keys`` (missing keys are simply absent)."""
        found: dict[str, np.ndarray] = {}
        if not keys or not self.path.exists():
            return found
        db = self._db()
        uniq = list(dict.fromkeys(keys))
        for i in range(0, len(uniq), _SQL_CHUNK):
            chunk = uniq[i:i + _SQL_CHUNK]
            marks = ",".join("?" * len(chunk))
            for key, blob in db.execute(f"SELECT key, vec FROM vectors WHERE key IN ({marks})", chunk):
                found[key] = np.frombuffer(blob, dtype=np.float32)
        return found

    def put_many(self, items: Iterable[tuple[str, np.ndarray]]) -> None:
        """Store vectors and commit (one transaction per call)."""
        db = self._db()
        db.executemany(
            "INSERT OR REPLACE INTO vectors VALUES (?, ?)",
            ((k, np.ascontiguousarray(v, dtype=np.float32).tobytes()) for k, v in items),
        )
        db.commit()

    def __len__(self) -> int:
        if not self.path.exists():
            return 0
        return int(self._db().execute("SELECT COUNT(*) FROM vectors").fetchone()[0])

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
