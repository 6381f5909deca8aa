"""Cold-start experiment (issue 17, item 8): ranking items no model was trained on.

A seeded fraction of the catalogue is held out of training: those items leave every
training sequence and the catalogue the models train with. After training, the held-out
items are added through the same :meth:`Recommender.add_items` path the HTTP service uses
(their raw features, through the trained adapters), and every test user of the full
dataset is ranked over all items. Metrics are reported apart for the users whose test
target is a held-out item and for the rest. MISSRec and UniSRec train in inductive mode
(item vectors from features only); SASRec over text features is inductive by design. A
model that cannot add items (SASRec on ids) ranks a held-out target nowhere (a miss); the
popularity baseline counts training interactions, so a held-out item has none.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..data.batching import build_examples
from ..data.store import SPLIT_TRAIN, Dataset, Interactions, ModalityFeatures, read_store, write_store
from ..data.vocab import Vocab
from ..errors import MissrecError
from ..serve.recommender import Recommender
from ..train.loop import train
from ..train.resolve import resolve_configs
from .stores import default_data_root, ensure_store, get_recipe

MODELS = ("missrec", "unisrec", "sasrec-text", "sasrec", "popularity")
ADDS_ITEMS = ("missrec", "unisrec", "sasrec-text")
"""The models that embed the held-out items from their features after training."""
MODEL_SETS = {"unisrec": ("model.mode=inductive",)}
"""Settings a model trains with here, before the user's ``--set`` overrides."""
STORES = ("amazon-scientific-mm", "scientific-mixed")
"""The issue's datasets: the full-modality subset (CLIP) and full Scientific (MiniLM text)."""
MISS = 2**40
"""The rank of a target a model cannot rank: beyond every cutoff."""


@dataclass
class ColdStartOptions:
    fraction: float = 0.1
    """Share of the catalogue held out of training."""
    seed: int = 0
    """Seed of the held-out draw."""
    models: list[str] = field(default_factory=lambda: list(MODELS))
    ks: list[int] = field(default_factory=lambda: [10, 50])
    sets: list[str] = field(default_factory=list)
    """``--set`` overrides for every trained model (e.g. ``epochs=5``)."""


def hold_out(ds: Dataset, fraction: float, seed: int) -> tuple[Dataset, set[str]]:
    """``ds`` without a seeded ``fraction`` of its items (interactions, features, texts)."""
    rng = np.random.default_rng(seed)
    n = ds.n_items
    held_idx = rng.choice(np.arange(1, n + 1), size=max(1, int(round(fraction * n))), replace=False)
    keep = np.ones(n + 1, dtype=bool)
    keep[held_idx] = False
    kept = np.nonzero(keep[1:])[0] + 1
    remap = np.zeros(n + 1, dtype=np.int64)
    remap[kept] = np.arange(1, len(kept) + 1)
    it = ds.interactions
    rows = keep[it.item]
    inter = Interactions(it.user[rows], remap[it.item[rows]], it.position[rows], it.split[rows],
                         None if it.timestamp is None else it.timestamp[rows])
    order = np.r_[0, kept]
    feats = {m: ModalityFeatures(f.matrix[order], f.present[order], f.source) for m, f in ds.features.items()}
    reduced = Dataset(f"{ds.name}-coldstart", Vocab(ds.items.ids[i] for i in kept), ds.users, inter,
                      [ds.item_text[i] for i in order], [ds.item_image[i] for i in order], feats,
                      {**ds.provenance, "held_out": f"{fraction} of items, seed {seed}"})
    return reduced, {ds.items.ids[i] for i in held_idx}


def target_ranks(rec: Recommender, histories: list[list[str]], targets: list[str]) -> np.ndarray:
    """0-based rank of every target over the recommender's whole catalogue; :data:`MISS`
    for a target it does not hold or a history it knows nothing of."""
    miss = MISS
    ranks = np.full(len(targets), miss, dtype=np.int64)
    known = [[h for h in hist if h in rec.catalogue.index] for hist in histories]
    todo = [i for i, h in enumerate(known) if h]
    for start in range(0, len(todo), 256):
        chunk = todo[start:start + 256]
        for i, res in zip(chunk, rec.recommend([known[i] for i in chunk], rec.n_items, unknown="skip")):
            ranks[i] = res.items.index(targets[i]) if targets[i] in res.items else miss
    return ranks


def popularity_ranks(reduced: Dataset, targets: list[str], n_items: int) -> np.ndarray:
    """0-based rank by training interactions among ``n_items`` items (held-out ones have
    none), ties pessimistic (a target ranks after every item as popular as it)."""
    it = reduced.interactions
    counts = np.bincount(it.item[it.split == SPLIT_TRAIN], minlength=reduced.n_items + 1)
    count_of = {e: int(counts[i]) for i, e in enumerate(reduced.items.ids) if i > 0}
    universe = np.sort(np.r_[counts[1:], np.zeros(n_items - reduced.n_items, dtype=counts.dtype)])
    c = np.asarray([count_of.get(t, 0) for t in targets])
    higher = len(universe) - np.searchsorted(universe, c, "right")
    equal = np.searchsorted(universe, c, "right") - np.searchsorted(universe, c, "left")
    return (higher + equal - 1).astype(np.int64)


def metrics(ranks: np.ndarray, ks: list[int]) -> dict[str, float]:
    out: dict[str, float] = {"users": int(len(ranks))}
    for k in ks:
        hit = ranks < k
        out[f"recall@{k}"] = float(hit.mean()) if len(ranks) else float("nan")
        out[f"ndcg@{k}"] = float(np.where(hit, 1.0 / np.log2(ranks + 2.0), 0.0).mean()) if len(ranks) else float("nan")
    return out


def run_coldstart(store: Path, out: Path, options: ColdStartOptions,
                  log: Callable[[str], None] = print) -> dict:
    """Train each model without the held-out items, add them back, rank every test user."""
    unknown = sorted(set(options.models) - set(MODELS))
    if unknown:
        raise MissrecError(f"coldstart: unknown model(s) {unknown}; expected some of {list(MODELS)}")
    ds = read_store(store)
    reduced, held = hold_out(ds, options.fraction, options.seed)
    reduced_store = write_store(reduced, out / "stores" / "train-without-held-out")
    test = build_examples(ds, "test")
    histories = [[ds.items.external(int(i)) for i in test.flat[test.offsets[u]:test.offsets[u + 1]]]
                 for u in range(len(test))]
    targets = [ds.items.external(int(t)) for t in test.targets]
    cold = np.asarray([t in held for t in targets])
    table = {}
    for model in options.models:
        log(f"coldstart: {model}")
        if model == "popularity":
            ranks = popularity_ranks(reduced, targets, ds.n_items)
        else:
            train_cfg, model_cfg = resolve_configs(model, None, (*MODEL_SETS.get(model, ()), *options.sets))
            run = out / "runs" / model
            train(model, reduced_store, run, train_cfg, model_cfg, log=log, overwrite=True)
            rec = Recommender(run)
            if model in ADDS_ITEMS:
                reads = list(rec.catalogue.modalities)
                rec.add_items([_raw_item(ds, e, reads) for e in sorted(held) if _has_features(ds, e, reads)])
            ranks = target_ranks(rec, histories, targets)
        table[model] = {"held-out targets": metrics(ranks[cold], options.ks),
                        "other targets": metrics(ranks[~cold], options.ks)}
    result = {"store": str(store), "held_out_items": len(held), "fraction": options.fraction,
              "seed": options.seed, "sets": options.sets, "results": table}
    (out / "coldstart.json").write_text(json.dumps(result, indent=2))
    return result


def _has_features(ds: Dataset, item_id: str, modalities: list[str]) -> bool:
    i = ds.items.index(item_id)
    return any(ds.features[m].present[i] for m in modalities)


def _raw_item(ds: Dataset, item_id: str, modalities: list[str]) -> dict:
    """The item's text and its features in the ``modalities`` the model reads."""
    i = ds.items.index(item_id)
    return {"id": item_id, "text": ds.item_text[i],
            "features": {m: ds.features[m].matrix[i].tolist() for m in modalities if ds.features[m].present[i]}}


def coldstart_experiment(out: Path, data_root: Path | None, store: Path | None, sets: list[str],
                         log: Callable[[str], None] = print) -> dict:
    """``missrec experiment coldstart``: every store of :data:`STORES` (or ``store``), each
    model of :data:`MODELS`; writes OUT/<store>/coldstart.json and OUT/coldstart.md."""
    if store is not None:
        stores = {Path(store).name: Path(store)}
    else:
        root = data_root or default_data_root()
        stores = {name: ensure_store(get_recipe(name), out / "stores", root, log) for name in STORES}
    results = {name: run_coldstart(path, out / name, ColdStartOptions(sets=list(sets)), log)
               for name, path in stores.items()}
    (out / "coldstart.md").write_text(report(results))
    return results


def report(results: dict[str, dict]) -> str:
    lines = ["# Cold start: items held out of training, added after it", ""]
    for name, res in results.items():
        lines += [f"## {name}: {res['held_out_items']} items held out ({res['fraction']:.0%}, seed "
                  f"{res['seed']}); overrides: {' '.join(res['sets']) or 'none'}", "",
                  "| model | targets | users | R@10 | N@10 | R@50 | N@50 |", "|---|---|---|---|---|---|---|"]
        for model, parts in res["results"].items():
            for part, m in parts.items():
                lines.append(f"| {model} | {part} | {m['users']} | {m['recall@10']:.4f} | {m['ndcg@10']:.4f} "
                             f"| {m['recall@50']:.4f} | {m['ndcg@50']:.4f} |")
        lines.append("")
    return "\n".join(lines)
