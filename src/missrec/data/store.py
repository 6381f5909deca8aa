"""The on-disk dataset store: one directory per dataset.

Layout::

    STORE/schema.json               name, counts, modalities, fingerprint, provenance
    STORE/items.parquet             index, item_id, text, image    (index 1..N; 0 is padding)
    STORE/users.parquet             index, user_id                 (index 1..U)
    STORE/interactions.parquet      user, item, position, timestamp, split (0 train, 1 valid, 2 test)
    STORE/features/<modality>.npy           float32 [N + 1, d]; row 0 is padding
    STORE/features/<modality>.present.npy   bool [N + 1]; False where the item lacks the modality

Writes are atomic: a new store is built in a sibling temporary directory and renamed into
place, so a crash leaves the old store (or none), never half of one.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import InputFormatError, MissrecError
from .nonfinite import check_store_matrix
from .vocab import Vocab

FORMAT = "missrec-store"
VERSION = 1
SPLIT_TRAIN, SPLIT_VALID, SPLIT_TEST = 0, 1, 2


@dataclass
class ModalityFeatures:
    """A float32 feature matrix for every item plus a presence mask (row 0 is padding)."""

    matrix: np.ndarray
    present: np.ndarray
    source: str = ""

    def __post_init__(self) -> None:
        self.matrix = np.ascontiguousarray(self.matrix, dtype=np.float32)
        self.present = np.asarray(self.present, dtype=bool)
        if self.matrix.ndim != 2 or self.present.shape != (self.matrix.shape[0],):
            raise ValueError(
                f"feature matrix {self.matrix.shape} and presence mask {self.present.shape} disagree"
            )

    @property
    def dim(self) -> int:
        return int(self.matrix.shape[1])

    @property
    def coverage(self) -> float:
        """Fraction of real items (padding excluded) that have this modality."""
        n = len(self.present) - 1
        return float(self.present[1:].sum() / n) if n else 0.0


@dataclass
class Interactions:
    """Column arrays, one row per interaction; ``position`` orders a user's sequence."""

    user: np.ndarray
    item: np.ndarray
    position: np.ndarray
    split: np.ndarray
    timestamp: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.user)


@dataclass
class Dataset:
    """A dataset in memory: vocabularies, item content, interactions, features."""

    name: str
    items: Vocab
    users: Vocab
    interactions: Interactions
    item_text: list[str] = field(default_factory=list)
    item_image: list[str | None] = field(default_factory=list)
    features: dict[str, ModalityFeatures] = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.items)
        if not self.item_text:
            self.item_text = [""] * n
        if not self.item_image:
            self.item_image = [None] * n
        if len(self.item_text) != n or len(self.item_image) != n:
            raise ValueError("item_text/item_image must have one entry per item index (padding included)")
        for name, feats in self.features.items():
            if feats.matrix.shape[0] != n:
                raise ValueError(f"features[{name!r}] has {feats.matrix.shape[0]} rows, expected {n}")

    @property
    def n_items(self) -> int:
        return self.items.size

    @property
    def n_users(self) -> int:
        return self.users.size

    def sequences(self) -> list[np.ndarray]:
        """Each user's item indexes in order, indexed by user index (entry 0 is empty)."""
        return _group(self.interactions, self.n_users, self.interactions.item)

    def split_sequences(self) -> list[np.ndarray]:
        """Each user's split labels aligned with :meth:`sequences`."""
        return _group(self.interactions, self.n_users, self.interactions.split)

    def fingerprint(self) -> str:
        h = hashlib.sha256()
        for arr in (self.interactions.user, self.interactions.item, self.interactions.position,
                    self.interactions.split):
            h.update(np.ascontiguousarray(arr, dtype=np.int64).tobytes())
        h.update("\x00".join(self.items.ids).encode())
        return h.hexdigest()[:16]


def _group(inter: Interactions, n_users: int, values: np.ndarray) -> list[np.ndarray]:
    order = np.lexsort((inter.position, inter.user))
    users = inter.user[order]
    vals = values[order]
    bounds = np.searchsorted(users, np.arange(n_users + 2))
    return [vals[bounds[u]:bounds[u + 1]] for u in range(n_users + 1)]


# ----------------------------------------------------------------------------- writing

def write_store(ds: Dataset, dest: str | Path) -> Path:
    """Write ``ds`` to ``dest`` atomically (replacing any store already there)."""
    dest = Path(dest)
    _check_destination(dest)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=dest.parent))
    except OSError as e:
        raise MissrecError(f"{dest}: cannot create the store here ({e.strerror or e})") from None
    try:
        _write_tables(ds, tmp)
        (tmp / "features").mkdir()
        for name, feats in ds.features.items():
            _save_npy(tmp / "features" / f"{name}.npy", feats.matrix)
            _save_npy(tmp / "features" / f"{name}.present.npy", feats.present)
        _write_json(tmp / "schema.json", _schema(ds))
        _swap_in(tmp, dest)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise MissrecError(f"{dest}: writing the store failed ({e.strerror or e}); nothing was written") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


def _check_destination(dest: Path) -> None:
    """Only a missing path, an empty folder or an existing store may become a store."""
    if dest.exists() and not dest.is_dir():
        raise MissrecError(f"{dest}: exists and is not a folder; expected a new or existing store folder")
    if dest.is_dir() and not (dest / "schema.json").exists() and any(dest.iterdir()):
        raise MissrecError(f"{dest}: exists and is not a missrec store; refusing to replace it")


def write_features(store: str | Path, name: str, feats: ModalityFeatures) -> None:
    """Add or replace one modality's features in an existing store, atomically per file.

    The schema is rewritten last, so a crash before it leaves the store describing its old
    (still complete) feature set.
    """
    store = Path(store)
    schema = read_schema(store)
    n = schema["n_items"] + 1
    if feats.matrix.shape[0] != n:
        raise MissrecError(f"{store}: features for {name!r} have {feats.matrix.shape[0]} rows, store has {n}")
    fdir = store / "features"
    try:
        fdir.mkdir(exist_ok=True)
        _save_npy(fdir / f"{name}.npy", feats.matrix)
        _save_npy(fdir / f"{name}.present.npy", feats.present)
        schema["modalities"][name] = {"dim": feats.dim, "coverage": feats.coverage, "source": feats.source}
        _write_json(store / "schema.json", schema)
    except OSError as e:
        raise MissrecError(f"{store}: writing the {name!r} features failed ({e.strerror or e})") from None


def _schema(ds: Dataset) -> dict:
    return {
        "format": FORMAT,
        "version": VERSION,
        "name": ds.name,
        "n_users": ds.n_users,
        "n_items": ds.n_items,
        "n_interactions": len(ds.interactions),
        "has_timestamps": ds.interactions.timestamp is not None,
        "modalities": {
            k: {"dim": f.dim, "coverage": f.coverage, "source": f.source} for k, f in ds.features.items()
        },
        "fingerprint": ds.fingerprint(),
        "provenance": ds.provenance,
    }


def _write_tables(ds: Dataset, d: Path) -> None:
    n = len(ds.items)
    pq.write_table(pa.table({
        "index": pa.array(np.arange(1, n, dtype=np.int32)),
        "item_id": pa.array(ds.items.ids[1:], pa.string()),
        "text": pa.array(ds.item_text[1:], pa.string()),
        "image": pa.array(ds.item_image[1:], pa.string()),
    }), d / "items.parquet")
    pq.write_table(pa.table({
        "index": pa.array(np.arange(1, len(ds.users), dtype=np.int32)),
        "user_id": pa.array(ds.users.ids[1:], pa.string()),
    }), d / "users.parquet")
    it = ds.interactions
    cols = {
        "user": pa.array(np.asarray(it.user, np.int32)),
        "item": pa.array(np.asarray(it.item, np.int32)),
        "position": pa.array(np.asarray(it.position, np.int32)),
        "split": pa.array(np.asarray(it.split, np.int8)),
    }
    if it.timestamp is not None:
        cols["timestamp"] = pa.array(np.asarray(it.timestamp, np.float64))
    pq.write_table(pa.table(cols), d / "interactions.parquet")


def _save_npy(path: Path, arr: np.ndarray) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        np.save(f, arr)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _write_json(path: Path, obj: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def _swap_in(tmp: Path, dest: Path) -> None:
    if dest.exists():
        _check_destination(dest)
        old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
        os.replace(dest, old)
        os.replace(tmp, dest)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, dest)


# ----------------------------------------------------------------------------- reading

def read_schema(store: str | Path) -> dict:
    store = Path(store)
    path = store / "schema.json"
    if not path.is_file():
        raise MissrecError(f"{store}: not a missrec dataset store (no schema.json); build one with `missrec data import`")
    try:
        schema = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise InputFormatError(path, f"invalid JSON ({e.msg})", e.lineno) from None
    except (OSError, UnicodeDecodeError) as e:
        raise InputFormatError(path, f"cannot be read ({e})") from None
    if not isinstance(schema, dict) or schema.get("format") != FORMAT:
        found = schema.get("format") if isinstance(schema, dict) else None
        raise InputFormatError(path, f"field 'format' is {found!r}, expected {FORMAT!r}")
    for key, typ in (("name", str), ("n_items", int), ("n_users", int), ("modalities", dict)):
        if not isinstance(schema.get(key), typ):
            raise InputFormatError(path, f"field {key!r} is {schema.get(key)!r}, expected a {typ.__name__}")
    return schema


def _read_table(path: Path, columns: dict[str, str]) -> pa.Table:
    """A parquet table that must hold ``columns`` (name -> what it is, for the message)."""
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as e:
        raise InputFormatError(path, f"unreadable parquet table ({str(e).splitlines()[0]})") from None
    for name, what in columns.items():
        if name not in table.column_names:
            raise InputFormatError(path, f"lacks column {name!r} ({what})")
    return table


def load_npy(path: Path, what: str) -> np.ndarray:
    """A ``.npy`` array, never unpickled (a file may come from anyone), or an error naming it."""
    try:
        return np.load(path, allow_pickle=False)
    except Exception as e:  # noqa: BLE001 -- numpy's header parser raises many types on damaged files
        detail = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise InputFormatError(path, f"unreadable {what} ({detail})") from None


def _load_array(path: Path, rows: int, ndim: int, what: str) -> np.ndarray:
    """A ``.npy`` array of ``rows`` rows and ``ndim`` dimensions."""
    arr = load_npy(path, what)
    if arr.ndim != ndim or arr.shape[0] != rows:
        raise InputFormatError(path, f"{what} has shape {arr.shape}, expected {rows} rows and {ndim} dimension(s)")
    return arr


def read_store(store: str | Path, modalities: list[str] | None = None) -> Dataset:
    """Load a store. ``modalities`` limits which feature matrices are read (default: all).

    A damaged store (unreadable table, wrong shapes, NaN or infinite features) is a
    :class:`MissrecError` naming the file or modality, never a half-loaded dataset.
    """
    store = Path(store)
    schema = read_schema(store)
    items = _read_table(store / "items.parquet", {"item_id": "external item ids", "text": "item text",
                                                  "image": "image references"}).to_pydict()
    users = _read_table(store / "users.parquet", {"user_id": "external user ids"}).to_pydict()
    inter = _read_table(store / "interactions.parquet", {c: "interaction column" for c in
                                                         ("user", "item", "position", "split")})
    ts = inter.column("timestamp").to_numpy() if "timestamp" in inter.column_names else None
    interactions = Interactions(
        user=inter.column("user").to_numpy().astype(np.int64),
        item=inter.column("item").to_numpy().astype(np.int64),
        position=inter.column("position").to_numpy().astype(np.int64),
        split=inter.column("split").to_numpy().astype(np.int8),
        timestamp=ts,
    )
    item_vocab = _vocab(store / "items.parquet", items["item_id"])
    _check_interactions(store, interactions, len(item_vocab) - 1, len(users["user_id"]))
    n = len(item_vocab)
    feats = {}
    wanted = schema["modalities"] if modalities is None else modalities
    for name in wanted:
        if name not in schema["modalities"]:
            raise MissrecError(
                f"{store}: no {name!r} features (has: {', '.join(schema['modalities']) or 'none'}); "
                "fill them with `missrec features`"
            )
        matrix = _load_array(store / "features" / f"{name}.npy", n, 2, "feature matrix")
        present = _load_array(store / "features" / f"{name}.present.npy", n, 1, "presence mask")
        if not np.issubdtype(matrix.dtype, np.floating) or present.dtype != np.bool_:
            raise InputFormatError(store / "features" / f"{name}.npy",
                                   f"dtypes {matrix.dtype}/{present.dtype}, expected float32 features and a bool mask")
        check_store_matrix(store, name, matrix, item_vocab.ids)
        feats[name] = ModalityFeatures(matrix=matrix, present=present,
                                       source=schema["modalities"][name].get("source", ""))
    return Dataset(
        name=schema["name"],
        items=item_vocab,
        users=_vocab(store / "users.parquet", users["user_id"]),
        interactions=interactions,
        item_text=[""] + list(items["text"]),
        item_image=[None] + list(items["image"]),
        features=feats,
        provenance=schema.get("provenance", {}),
    )


def _vocab(path: Path, ids: list) -> Vocab:
    try:
        return Vocab(ids)
    except ValueError as e:
        raise InputFormatError(path, str(e)) from None


def _check_interactions(store: Path, it: Interactions, n_items: int, n_users: int) -> None:
    """Indexes within the vocabularies and known split labels (a tampered store fails here)."""
    checks = (("item", it.item, 1, n_items), ("user", it.user, 1, n_users), ("split", it.split, 0, 2))
    for col, arr, lo, hi in checks:
        if len(arr) and (arr.min() < lo or arr.max() > hi):
            raise InputFormatError(store / "interactions.parquet",
                                   f"column {col!r} holds values outside {lo}..{hi}")
