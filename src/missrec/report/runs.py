"""Reading run directories and grouping them into cells (one cell = one setting, many seeds).

A run directory is what ``missrec train`` writes (``results.json``, ``history.jsonl``,
``test_ranks.npy``, ``test_targets.npy``). An experiment may add ``cell.json`` with where
the run belongs in a report (table, row label, paper reference); without it, the report
derives a label from the model config and one table per dataset. Pre-training runs
(``results.json`` with ``"kind": "pretrain"``) are listed but not tabulated.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..config import SPEED_ONLY_TRAIN_KEYS
from ..errors import MissrecError
from ..model.registry import recorded_config
from .paper import default_reference, paper_dataset

CELL_FILE = "cell.json"
"""Optional per-run file written by ``missrec experiment``: the run's place in a report."""

NOT_A_SETTING = ("seed", *SPEED_ONLY_TRAIN_KEYS)
"""Training fields that do not tell cells apart: a cell is one setting over several seeds."""

DISPLAY = {"sasrec": "SASRec", "sasrec-text": "SASRec", "unisrec": "UniSRec", "missrec": "MISSRec"}
MODALITY_ABBR = {"text": "T", "image": "V"}


@dataclass
class Run:
    """One run directory."""

    path: Path
    results: dict[str, Any]
    history: list[dict[str, Any]]
    meta: dict[str, Any]

    @property
    def kind(self) -> str:
        return self.results.get("kind", "train")

    @property
    def model(self) -> str:
        return self.results.get("model", "?")

    @property
    def seed(self) -> Any:
        return self.results.get("seed")

    @property
    def dataset(self) -> dict[str, Any]:
        return self.results.get("dataset") or {}

    @property
    def fingerprint(self) -> str:
        return self.dataset.get("fingerprint", "")

    @property
    def model_config(self) -> dict[str, Any]:
        return (self.results.get("config") or {}).get("model") or {}

    @property
    def pretrained(self) -> bool:
        return bool(self.results.get("transfer_from"))

    @property
    def test(self) -> dict[str, float]:
        return self.results.get("test") or {}

    def ranks(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(0-based test ranks, target item indexes), or None when not saved."""
        r, t = self.path / "test_ranks.npy", self.path / "test_targets.npy"
        if not (r.exists() and t.exists()):
            return None
        return np.load(r), np.load(t)


def load_run(path: str | Path) -> Run:
    """Read one run directory (``results.json`` required, the rest optional)."""
    path = Path(path)
    res_file = path / "results.json"
    try:
        results = json.loads(res_file.read_text())
    except FileNotFoundError:
        raise MissrecError(f"{path}: not a run directory (no results.json)") from None
    except json.JSONDecodeError as e:
        raise MissrecError(f"{res_file}:{e.lineno}: invalid JSON ({e.msg})") from None
    history = []
    hist_file = path / "history.jsonl"
    if hist_file.exists():
        for lineno, line in enumerate(hist_file.read_text().splitlines(), 1):
            if line.strip():
                try:
                    history.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise MissrecError(f"{hist_file}:{lineno}: invalid JSON ({e.msg})") from None
    meta = {}
    if (path / CELL_FILE).exists():
        meta = json.loads((path / CELL_FILE).read_text())
    return Run(path, results, history, meta)


def find_runs(paths: list[str | Path]) -> list[Run]:
    """Every run directory at or below ``paths`` (recursively), in sorted path order."""
    found: dict[Path, None] = {}
    for p in paths:
        p = Path(p)
        if not p.exists():
            raise MissrecError(f"{p}: no such file or directory")
        if p.is_file():
            p = p.parent
        if (p / "results.json").exists():
            found[p.resolve()] = None
        for f in sorted(p.rglob("results.json")):
            found[f.parent.resolve()] = None
    return [load_run(p) for p in sorted(found)]


def inputs_of(model: str, model_config: dict[str, Any]) -> str:
    """The paper's input-type notation, canonical order T+V+ID (e.g. ``"T+V+ID"``); none for
    popularity, which reads no input."""
    if model == "popularity":
        return ""
    mods = [MODALITY_ABBR.get(m, m) for m in (model_config.get("modalities") or [])]
    parts = [a for a in ("T", "V") if a in mods] + [m for m in mods if m not in ("T", "V")]
    if model == "sasrec" or model_config.get("mode") == "transductive":
        parts.append("ID")
    return "+".join(parts) or "ID"


def default_label(run: Run) -> str:
    """``"<Model> <inputs>"`` as the paper writes it, e.g. ``"MISSRec T+V+ID"``."""
    return f"{DISPLAY.get(run.model, run.model)} {inputs_of(run.model, run.model_config)}".rstrip()


def cell_key(run: Run) -> str:
    """Runs with the same key differ only in the seed (and speed-only settings)."""
    # in today's layout with every field: runs from before and after a config change (a field
    # added, fields regrouped) stay one setting
    full = recorded_config(run.model, run.results.get("config") or {})
    train = {k: v for k, v in full["train"].items() if k not in NOT_A_SETTING}
    model_cfg = full["model"]
    ident = {"model": run.model, "dataset": run.fingerprint or run.dataset.get("name"),
             "model_config": model_cfg, "train": train, "pretrained": run.pretrained,
             "pretrain": run.meta.get("pretrain_cell"), "experiment": run.meta.get("experiment")}
    return hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()[:12]


@dataclass
class Stat:
    """Mean ± sample standard deviation over seeds."""

    mean: float
    std: float
    n: int

    @classmethod
    def of(cls, values: list[float]) -> "Stat | None":
        vals = [float(v) for v in values if v is not None and not math.isnan(float(v))]
        if not vals:
            return None
        std = float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0
        return cls(float(np.mean(vals)), std, len(vals))


@dataclass
class Placement:
    """Where a cell appears: a table, a row label, an order and a paper reference."""

    table: str
    table_title: str
    label: str
    order: float = 0.0
    paper_table: str | None = None
    paper_row: str | None = None
    note: str = ""
    table_note: str = ""


@dataclass
class Cell:
    """All seeds of one setting."""

    key: str
    runs: list[Run]
    placements: list[Placement] = field(default_factory=list)

    @property
    def first(self) -> Run:
        return self.runs[0]

    @property
    def model(self) -> str:
        return self.first.model

    @property
    def seeds(self) -> list[Any]:
        return [r.seed for r in self.runs]

    @property
    def label(self) -> str:
        return self.placements[0].label if self.placements else default_label(self.first)

    @property
    def facets(self) -> dict[str, str]:
        """The (name, value) pairs an analysis lays the cell out by (``cell.json``'s facets)."""
        return dict(self.first.meta.get("facets") or {})

    def metric(self, name: str, split: str = "test") -> Stat | None:
        return Stat.of([(r.results.get(split) or {}).get(name) for r in self.runs
                        if (r.results.get(split) or {}).get(name) is not None])

    def field_stat(self, name: str) -> Stat | None:
        return Stat.of([r.results.get(name) for r in self.runs if r.results.get(name) is not None])


def dataset_kind(run: Run) -> str | None:
    """'scientific' / 'scientific-mm' when the run's store is one of the paper's Scientific
    sets (recognised by its fingerprint or its store name), else None."""
    return paper_dataset(run.fingerprint, str(run.dataset.get("name", "")))


def group_cells(runs: list[Run]) -> list[Cell]:
    """Group training runs into cells and decide every cell's placements."""
    by_key: dict[str, Cell] = {}
    for r in runs:
        if r.kind == "pretrain":
            continue
        by_key.setdefault(cell_key(r), Cell(cell_key(r), [])).runs.append(r)
    cells = list(by_key.values())
    for c in cells:
        c.runs.sort(key=lambda r: (str(r.seed), str(r.path)))
        seen = set()
        for r in c.runs:
            m = r.meta
            if not m.get("table"):
                continue
            p = Placement(m["table"], m.get("table_title", m["table"]), m.get("label") or default_label(r),
                          float(m.get("order", 0)), (m.get("paper") or {}).get("table"),
                          (m.get("paper") or {}).get("row"), m.get("note", ""), m.get("table_note", ""))
            ident = (p.table, p.label)
            if ident not in seen:
                seen.add(ident)
                c.placements.append(p)
        if not c.placements:
            c.placements.append(_default_placement(c))
    _disambiguate(cells)
    return cells


def _default_placement(cell: Cell) -> Placement:
    r = cell.first
    name = r.dataset.get("name", "?")
    fp = r.fingerprint
    label = default_label(r) + (" pre-trained" if r.pretrained else "")
    ref = default_reference(dataset_kind(r), default_label(r), r.model, r.pretrained)
    return Placement(f"dataset-{fp or name}", f"Results on {name} (fingerprint {fp or 'unknown'})", label,
                     paper_table=ref[0] if ref else None, paper_row=ref[1] if ref else None)


def _disambiguate(cells: list[Cell]) -> None:
    """Rows of one table with the same label get the config fields that tell them apart."""
    groups: dict[tuple[str, str], list[tuple[Cell, Placement]]] = {}
    for c in cells:
        for p in c.placements:
            groups.setdefault((p.table, p.label), []).append((c, p))
    for members in groups.values():
        if len(members) < 2:
            continue
        flat = [_flatten(c.first.results.get("config") or {}) for c, _ in members]
        keys = sorted({k for f in flat for k in f if k.split(".")[-1] not in NOT_A_SETTING
                       and len({json.dumps(g.get(k), default=str) for g in flat}) > 1})
        for (c, p), f in zip(members, flat):
            diff = ", ".join(f"{k.split('.', 1)[-1]}={_short(f.get(k))}" for k in keys[:4])
            if diff:
                p.label = f"{p.label} [{diff}]"
        # identical configs that still differ (e.g. different pre-training): number them
        labels = [p.label for _, p in members]
        if len(set(labels)) < len(labels):
            for i, (_, p) in enumerate(members, 1):
                p.label = f"{p.label} #{i}"


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _short(v: Any) -> str:
    if isinstance(v, list):
        return ",".join(map(str, v))
    return str(v)
