"""Cold start: ranking items no model was trained on, with models trained to convergence.

A seeded fraction of the catalogue is held out of training: those items leave every
training sequence and the catalogue the models train with. Each model trains with early
stopping on validation (no fixed budget), for several seeds. After training, the held-out
items are added through the same :meth:`Recommender.add_items` path the HTTP service uses,
with all their modalities or with their text only (``text_only``), and every test user of
the full dataset is ranked over all items (or every validation user, ``split='valid'``, to
choose a setting for new items without reading the test split), optionally with the added
items' exposure calibrated first (``calibrate``). Metrics are reported apart for the users
whose target is a held-out item and for the rest, as mean ± std over seeds, and MISSRec is
compared with the best content baseline on the held-out targets by a paired bootstrap.

MISSRec trains at its default (ids: an added item has none and is scored by its content),
UniSRec and SASRec over text inductive; SASRec on ids and popularity cannot score an added item.

Layout under ``OUT/<store>/``::

    stores/train-without-held-out/           the training store
    runs/<model>/seed-<s>/                   training runs (resumed when interrupted)
    ranks/<variant>/<targets>/<model>/seed-<s>/   test ranks of the held-out or the other
                                                  targets (``missrec compare`` reads them)
    coldstart-<variant>.json, and the same under <variant>-valid / <variant>-calibrated
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from ..data.batching import build_examples
from ..data.store import Dataset, Interactions, ModalityFeatures, read_store, write_store
from ..data.vocab import Vocab
from ..errors import MissrecError
from ..eval.metrics import metrics_from_ranks
from ..report.paired import paired_comparison
from ..report.runs import find_runs, group_cells
from ..serve.recommender import Recommender
from ..train.loop import train
from ..train.resolve import resolve_configs
from ..workers import worker_pool
from .coldstart_ranks import MISS, TOP, Ranked, popularity_ranks, target_ranks
from .overrides import applying, model_sections, override_field
from .stores import default_data_root, ensure_store, get_recipe

MODELS = ("missrec", "unisrec", "sasrec-text", "sasrec", "popularity")
CONTENT_MODELS = ("missrec", "unisrec", "sasrec-text")
"""The models that embed the held-out items from their features after training (and that
are trained over every seed)."""
MODEL_SETS = {"unisrec": ("model.mode=inductive",)}
"""Settings a model trains with here, before the user's ``--set`` overrides."""
STORES = ("amazon-scientific-mm", "scientific-mixed")
"""The full-modality subset (CLIP text and images) and full Scientific (MiniLM text for
every item, CLIP images for the 36% that have one)."""
VARIANTS = {"all": "held-out items added with all their modalities",
            "text": "held-out items added with their text only"}
PARTS = {"held-out": "held-out targets", "other": "other targets"}
HELD_ABOVE = "held_out_above.npy"
"""Per target, how many held-out items rank above it (beside ``test_ranks.npy``)."""
HELD_TOP = "held_out_in_top.npy"
"""Per user, how many held-out items are in the top :data:`TOP` (-1: no ranking)."""
KS = [10, 50]


@dataclass
class ColdStartOptions:
    fraction: float = 0.1
    """Share of the catalogue held out of training."""
    seed: int = 0
    """Seed of the held-out draw."""
    seeds: int = 3
    """Training seeds (2023, 2024, ...) of the content models; SASRec on ids trains once."""
    text_only: bool = False
    """Add the held-out items with their text only (else with all their modalities)."""
    models: list[str] = field(default_factory=lambda: list(MODELS))
    sets: list[str] = field(default_factory=list)
    """``--set`` overrides, each given to the trained models whose configs have its field."""
    jobs: int = 1
    """Training runs at once, one process each."""
    split: Literal["test", "valid"] = "test"
    """Whose targets are ranked: the test users', or the validation users' (to choose a
    setting for new items without reading the test split)."""
    calibrate: bool = False
    """Before ranking, give the added items of every content model their share of the top
    :data:`TOP` over the validation users' histories (one offset on their scores,
    :mod:`missrec.serve.calibration`; no targets read)."""
    dry_run: bool = False
    """List the training runs still to do, with their overrides; train and rank nothing."""

    @property
    def variant(self) -> str:
        return "text" if self.text_only else "all"

    @property
    def tag(self) -> str:
        """The variant, then the split when it is not the test split and whether added items
        were calibrated: names its folder and file."""
        return "-".join([self.variant] + ([self.split] if self.split != "test" else [])
                        + (["calibrated"] if self.calibrate else []))


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


def seeds_of(model: str, options: ColdStartOptions) -> list[int]:
    return [2023 + i for i in range(options.seeds if model in CONTENT_MODELS else 1)]


@dataclass
class Setting:
    """One store's cold-start set-up: the full dataset, the training store, the test users."""

    name: str
    out: Path
    ds: Dataset
    reduced: Dataset
    train_store: Path
    held: set[str]
    histories: list[list[str]]
    targets: list[str]
    calibration: list[list[str]]
    """The validation users' histories that added items are calibrated over (``calibrate``)."""

    @classmethod
    def prepare(cls, name: str, store: Path, out: Path, options: ColdStartOptions) -> "Setting":
        ds = read_store(store)
        reduced, held = hold_out(ds, options.fraction, options.seed)
        train_store = out / "stores" / "train-without-held-out"
        if not (train_store / "schema.json").exists():
            write_store(reduced, train_store)
        examples = build_examples(ds, options.split)
        histories = [[ds.items.external(int(i)) for i in examples.history(u)] for u in range(len(examples))]
        targets = [ds.items.external(int(t)) for t in examples.targets]
        calibration = []
        if options.calibrate:
            valid = build_examples(ds, "valid")
            calibration = [[ds.items.external(int(i)) for i in valid.history(u)] for u in range(len(valid))]
        return cls(name, out, ds, reduced, train_store, held, histories, targets, calibration)

    @property
    def cold(self) -> np.ndarray:
        return np.asarray([t in self.held for t in self.targets])


def trained_models(options: ColdStartOptions) -> list[str]:
    """The models of ``options`` that train (popularity only counts)."""
    return [m for m in options.models if m != "popularity"]


def run_dir(out: Path, model: str, seed: int) -> Path:
    """Where one training run of a setting lives."""
    return out / "runs" / model / f"seed-{seed}"


def model_sets(model: str, options: ColdStartOptions, seed: int) -> list[str]:
    """The ``--set`` overrides of one training run: the user's that apply to ``model``, and the seed."""
    return [*applying(options.sets, model_sections(model)), f"seed={seed}"]


def check_sets(options: ColdStartOptions) -> None:
    """Refuse an override that no trained model has (a typo would otherwise change nothing)."""
    trained = trained_models(options)
    for item in options.sets:
        if not any(applying([item], model_sections(m)) for m in trained):
            raise MissrecError(f"--set {item.split('=', 1)[0]}: not a setting of any model trained here "
                               f"({', '.join(trained) or 'none'})")


def pending_runs(outs: list[Path], options: ColdStartOptions) -> list[tuple[str, Path, list[str]]]:
    """(model, run folder, overrides) of every training run under ``outs`` not finished yet."""
    return [(model, run_dir(out, model, seed), model_sets(model, options, seed))
            for out in outs for model in trained_models(options) for seed in seeds_of(model, options)
            if not (run_dir(out, model, seed) / "results.json").exists()]


def _train_one(model: str, store: Path, run: Path, sets: list[str]) -> Path:
    # the store fits the modalities nobody chose, so a text-only catalogue needs no flag
    train_cfg, model_cfg = resolve_configs(model, None, (*MODEL_SETS.get(model, ()), *sets), store=store)
    if not (run / "results.json").exists():
        train(model, store, run, train_cfg, model_cfg, log=lambda s: None, resume=True, test=False)
    return run


def train_all(settings: list[Setting], options: ColdStartOptions, log: Callable[[str], None]) -> None:
    """Train every (store, model, seed) run that has not finished, ``options.jobs`` at once."""
    tasks = [(model, s.train_store, run, sets) for s in settings
             for model, run, sets in pending_runs([s.out], options)]
    log(f"coldstart: {len(tasks)} training run(s) to do")
    if options.jobs <= 1:
        for t in tasks:
            log(f"coldstart: training {t[2]}")
            _train_one(*t)
        return
    # one thread per process unless the user said otherwise (spawned, not forked: no
    # half-initialised thread pool of this process is copied into the workers)
    tasks = [(m, st, r, sets if any(override_field(x) == "threads" for x in sets) else [*sets, "threads=1"])
             for m, st, r, sets in tasks]
    with worker_pool(options.jobs) as pool:
        for run in pool.map(_train_one, *zip(*tasks)) if tasks else []:
            log(f"coldstart: trained {run}")


def _raw_item(ds: Dataset, item_id: str, modalities: list[str], text_only: bool) -> dict | None:
    """The item's text and its features in the ``modalities`` the model reads (text only:
    its text features alone); None when it has none of them."""
    i = ds.items.index(item_id)
    use = [m for m in modalities if ds.features[m].present[i] and (m == "text" or not text_only)]
    if not use:
        return None
    return {"id": item_id, "text": ds.item_text[i], "features": {m: ds.features[m].matrix[i].tolist() for m in use}}


def ranks_of(s: Setting, model: str, seed: int, options: ColdStartOptions) -> Ranked:
    """Every test user's target rank for one trained run (or popularity, which ranks the
    held-out items last: no counts of them)."""
    if model == "popularity":
        return Ranked(popularity_ranks(s.reduced, s.targets, s.ds.n_items), None, None)
    rec = Recommender(run_dir(s.out, model, seed))
    if model in CONTENT_MODELS:
        reads = list(rec.catalogue.modalities)
        items = [_raw_item(s.ds, e, reads, options.text_only) for e in sorted(s.held)]
        rec.add_items([it for it in items if it is not None])
        if options.calibrate:
            found = rec.calibrate_added(s.calibration, TOP).to_json()
            return target_ranks(rec, s.histories, s.targets, s.held)._replace(calibration=found)
    return target_ranks(rec, s.histories, s.targets, s.held)


def write_ranks(s: Setting, model: str, seed: int, ranked: Ranked, options: ColdStartOptions) -> None:
    """The ranks of the held-out and of the other targets, each as a run folder that the
    report and ``missrec compare`` read; with the held-out items above each target and in
    each user's top list."""
    ranks, held_above, held_top, calibration = ranked
    cold = s.cold
    target_index = np.asarray([s.ds.items.index(t) for t in s.targets])
    run = run_dir(s.out, model, seed) / "results.json"  # what it read, for the labels of reports
    trained = json.loads(run.read_text())["config"]["model"] if model != "popularity" else {}
    for part, chosen in (("held-out", cold), ("other", ~cold)):
        folder = s.out / "ranks" / options.tag / part / model / f"seed-{seed}"
        folder.mkdir(parents=True, exist_ok=True)
        r = np.minimum(ranks[chosen], MISS)
        np.save(folder / "test_ranks.npy", r)
        np.save(folder / "test_targets.npy", target_index[chosen])
        if held_above is not None:
            np.save(folder / HELD_ABOVE, held_above[chosen])
            np.save(folder / HELD_TOP, held_top[chosen])
        if calibration is not None:
            (folder / "calibration.json").write_text(json.dumps(calibration, indent=2))
        results = {"model": model, "seed": seed, "kind": "coldstart", "test": metrics_from_ranks(r, KS),
                   "dataset": {"name": f"{s.name} ({PARTS[part]}, {VARIANTS[options.variant]})"},
                   "config": {"model": {**trained, "cold_start": f"{options.variant}/{part}"}}}
        (folder / "results.json").write_text(json.dumps(results, indent=2))


def run_coldstart(store: Path, out: Path, options: ColdStartOptions, log: Callable[[str], None] = print,
                  name: str | None = None) -> dict:
    """Train each model without the held-out items, add them back, rank every test user."""
    return run_settings({name or Path(store).name: (store, out)}, options, log)[name or Path(store).name]


def run_settings(stores: dict[str, tuple[Path, Path]], options: ColdStartOptions,
                 log: Callable[[str], None] = print) -> dict[str, dict]:
    unknown = sorted(set(options.models) - set(MODELS))
    if unknown:
        raise MissrecError(f"coldstart: unknown model(s) {unknown}; expected some of {list(MODELS)}")
    check_sets(options)
    settings = [Setting.prepare(n, store, out, options) for n, (store, out) in stores.items()]
    train_all(settings, options, log)
    results = {}
    for s in settings:
        for model in options.models:
            for seed in seeds_of(model, options):
                write_ranks(s, model, seed, ranks_of(s, model, seed, options), options)
        results[s.name] = summarise(s, options)
        (s.out / f"coldstart-{options.tag}.json").write_text(json.dumps(results[s.name], indent=2))
    return results


def summarise(s: Setting, options: ColdStartOptions) -> dict:
    """Mean ± std per model and part, and MISSRec against the best content baseline on the
    held-out targets (paired bootstrap over those users). Every model ranked in this
    setting and variant so far is in it, not only ``options.models``: an ``--only`` run
    adds its models to the table instead of replacing it."""
    root = s.out / "ranks" / options.tag
    cells = {(c.first.path.parent.parent.name, c.model): c
             for c in group_cells(find_runs([root]))}
    shown = [m for m in MODELS if all((part, m) in cells for part in PARTS)]
    table = {}
    for model in shown:
        table[model] = {}
        for part in PARTS:
            cell = cells[(part, model)]
            table[model][PARTS[part]] = {"users": int(len(cell.first.ranks()[0])), "seeds": len(cell.runs),
                                         **{k: [st.mean, st.std] for k in _metric_names()
                                            if (st := cell.metric(k)) is not None},
                                         **scale_of([r.path for r in cell.runs], part, s)}
    result = {"store": s.name, "held_out_items": len(s.held), "catalogue_items": s.ds.n_items,
              "fraction": options.fraction, "seed": options.seed,
              "variant": options.variant, "split": options.split, "calibrate": options.calibrate,
              "sets": options.sets, "results": table}
    baselines = [m for m in ("unisrec", "sasrec-text") if m in shown]
    if "missrec" in shown and baselines:
        best = max(baselines, key=lambda m: table[m][PARTS["held-out"]]["recall@10"][0])
        paired = paired_comparison(cells[("held-out", "missrec")], cells[("held-out", best)],
                                   ("recall@10", "ndcg@10", "recall@50", "ndcg@50"))
        result["missrec_vs_best_baseline"] = {"baseline": best, "targets": "held-out",
                                              "compare": [p.as_dict() for p in paired]}
    return result


def scale_of(folders: list[Path], part: str, s: Setting) -> dict:
    """Whether added items are scored on the trained items' scale: the median (over the
    targets, averaged over seeds) share of the trained items ranked above a target, and of
    the held-out items (the target left out). For a held-out target the two are equal when
    new items are neither pushed down nor lifted as a group. Also the mean share of
    held-out items in a user's top :data:`TOP` (averaged over seeds): how much a model shows
    new items, which the median does not see."""
    if not all((f / HELD_ABOVE).exists() for f in folders):
        return {}
    n_trained, n_held = s.reduced.n_items, len(s.held) - (part == "held-out")
    shares = []
    for f in folders:
        ranks, held = np.load(f / "test_ranks.npy"), np.load(f / HELD_ABOVE)
        found = ranks < MISS
        if found.any():  # a model that cannot add items ranks no held-out target
            shares.append((np.median((ranks - held)[found] / n_trained), np.median(held[found] / max(n_held, 1))))
    if not shares:
        return {}
    out = {"share_above": [float(np.mean([a for a, _ in shares])), float(np.mean([b for _, b in shares]))]}
    if all((f / HELD_TOP).exists() for f in folders):
        tops = [np.load(f / HELD_TOP) for f in folders]
        out[f"held_out_in_top{TOP}"] = float(np.mean([t[t >= 0].mean() / TOP for t in tops if (t >= 0).any()]))
    if all((f / "calibration.json").exists() for f in folders):
        out["added_offset"] = float(np.mean([json.loads((f / "calibration.json").read_text())["offset"]
                                             for f in folders]))
    return out


def _metric_names() -> list[str]:
    return [f"{m}@{k}" for k in KS for m in ("recall", "ndcg")]


def coldstart_experiment(out: Path, data_root: Path | None, store: Path | None, options: ColdStartOptions,
                         log: Callable[[str], None] = print) -> dict:
    """``missrec experiment coldstart``: every store of :data:`STORES` (or ``store``), each
    model of :data:`MODELS`; writes OUT/<store>/coldstart-<variant>.json and OUT/coldstart.md
    (the tables of every variant run so far)."""
    if options.dry_run:
        plan(out, store, options, log)
        return {}
    if store is not None:
        stores = {Path(store).name: (Path(store), out / Path(store).name)}
    else:
        root = data_root or default_data_root()
        stores = {name: (ensure_store(get_recipe(name), out / "stores", root, log), out / name) for name in STORES}
    results = run_settings(stores, options, log)
    (out / "coldstart.md").write_text(report(out))
    return results


def plan(out: Path, store: Path | None, options: ColdStartOptions, log: Callable[[str], None] = print) -> None:
    """``--dry-run``: the training runs still to do (nothing is built, trained or ranked)."""
    check_sets(options)
    outs = [out / Path(store).name] if store is not None else [out / name for name in STORES]
    runs = pending_runs(outs, options)
    for model, run, sets in runs:
        log(f"  {model:12s} {run}  --set {' '.join(sets)}")
    log(f"coldstart: {len(runs)} training run(s) to do; then the held-out items are added and "
        f"{options.split} targets ranked ({VARIANTS[options.variant]})")


NAMES = {"missrec": "MISSRec", "unisrec": "UniSRec (inductive)", "sasrec-text": "SASRec over text",
         "sasrec": "SASRec (ids)", "popularity": "popularity"}


def report(out: Path) -> str:
    """The cold-start tables of every ``coldstart-*.json`` under ``out``."""
    lines = ["# Cold start: items held out of training, added after it", ""]
    for path in sorted(out.glob("*/coldstart-*.json")):
        res = json.loads(path.read_text())
        split = ("" if res.get("split", "test") == "test" else ", validation targets") \
            + (", added items calibrated to their share of the top 10" if res.get("calibrate") else "")
        lines += [f"## {res['store']}: {res['held_out_items']} items held out ({res['fraction']:.0%}, seed "
                  f"{res['seed']}), {VARIANTS[res['variant']]}{split}; "
                  f"overrides: {' '.join(res['sets']) or 'none'}",
                  "",
                  "| model | targets | users | seeds | R@10 | N@10 | R@50 | N@50 |", "|---|---|---|---|---|---|---|---|"]
        for model, parts in res["results"].items():
            for part, m in parts.items():
                cells = " | ".join(_pm(m.get(k)) for k in ("recall@10", "ndcg@10", "recall@50", "ndcg@50"))
                lines.append(f"| {NAMES.get(model, model)} | {part} | {m['users']:,} | {m['seeds']} | {cells} |")
        scale = [(model, parts) for model, parts in res["results"].items()
                 if "share_above" in parts.get(PARTS["held-out"], {})]
        if scale:
            top = f"held_out_in_top{TOP}"
            share = res["held_out_items"] / res["catalogue_items"] if res.get("catalogue_items") else None
            lines += ["", "Held-out targets: median share of the trained items, and of the other held-out "
                          "items, ranked above the target (equal shares: added items are scored on the "
                          f"trained items' scale). Then the share of held-out items in a top {TOP}, for the "
                          "users whose target is held out and for the others"
                          + (f" (their share of the catalogue: {share:.3f})" if share else "") + ":", "",
                      "| model | trained items above | held-out items above | held-out in top 10, held-out targets "
                      "| the same, other targets | offset on added items |", "|---|---|---|---|---|---|"]
            for model, parts in scale:
                held_part = parts[PARTS["held-out"]]
                (a, b), held, other, offset = (held_part["share_above"], held_part.get(top),
                                               parts.get(PARTS["other"], {}).get(top), held_part.get("added_offset"))
                cells = [f"{a:.3f}", f"{b:.3f}", "-" if held is None else f"{held:.3f}",
                         "-" if other is None else f"{other:.3f}", "-" if offset is None else f"{offset:+.4f}"]
                lines.append(f"| {NAMES.get(model, model)} | " + " | ".join(cells) + " |")
        cmp = res.get("missrec_vs_best_baseline")
        if cmp:
            lines += ["", f"MISSRec − {NAMES[cmp['baseline']]} on the held-out targets (paired bootstrap over "
                          "those users, each averaged over seeds):", "",
                      "| metric | MISSRec − baseline | 95% interval | p |", "|---|---|---|---|"]
            lines += [f"| {c['metric']} | {c['diff']:+.4f} | [{c['ci_low']:+.4f}, {c['ci_high']:+.4f}] | {c['p']:.4f} |"
                      for c in cmp["compare"]]
        lines.append("")
    return "\n".join(lines)


def _pm(value: list[float] | None) -> str:
    if value is None:
        return "-"
    mean, std = value
    return f"{mean:.4f} ± {std:.4f}" if std == std and std > 0 else f"{mean:.4f}"
