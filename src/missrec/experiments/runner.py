"""Run an experiment: plan its cells, build the stores it needs, train each (cell, seed)
with skip-if-done (one at a time, or several at once: :mod:`.parallel`), then write the report.

Folder layout under ``DIR``::

    stores/NAME/               dataset stores built from the data root (recipe.json = complete)
    pretrain/CELL/seed-S/      pre-training runs (model.pt, results.json, history.jsonl)
    runs/CELL/seed-S/          training runs (results.json, history.jsonl, test ranks, cell.json)
    report.md, report.html, *.png

A (cell, seed) whose ``results.json`` exists is not run again, so an interrupted experiment
resumes where it stopped, and two analyses sharing a folder share their runs. A (cell, seed)
that repeats a finished run exactly (same model, resolved config, seed, data and starting
checkpoint), in this folder or in a ``reuse`` folder, adopts that run instead of training
again (:mod:`missrec.experiments.reuse`); ready stores of the same recipe are used in place.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..config import TrainConfig, parse_overrides
from ..errors import MissrecError
from .catalog import EXPERIMENTS
from .spec import CellSpec, Experiment
from .stores import RECIPES, default_data_root, ensure_store, recipe_problems, store_ready, train_rows_of

Log = Callable[[str], None]
BASE_SEED = 2023
"""Seeds are BASE_SEED, BASE_SEED + 1, ... (TrainConfig's default seed first)."""

# Training cost in milliseconds per training sequence per epoch (evaluation and clustering
# included), measured with two runs sharing a 2-core CPU at one thread each, default configs,
# for the --dry-run estimate only. Finished runs of the same model in the folder replace these
# figures. Pre-training encodes two views of every sequence and re-clusters a larger catalogue.
MS_PER_SEQUENCE = {"sasrec": 0.5, "sasrec-text": 0.8, "unisrec": 1.0, "missrec": 2.2}
PRETRAIN_FACTOR = 8.0
ENCODE_MS_PER_ITEM = 60.0
"""MiniLM text encoding on a shared 2-core CPU (store building)."""
TYPICAL_EPOCHS = 25
"""Epochs a run usually lasts with early stopping (patience 10) when its cap is higher."""


def get_experiment(name: str) -> Experiment:
    if name not in EXPERIMENTS:
        visible = sorted(n for n, e in EXPERIMENTS.items() if not e.hidden)
        raise MissrecError(f"unknown experiment {name!r}; expected one of {', '.join(visible)}")
    return EXPERIMENTS[name]


@dataclass
class Job:
    """One (cell, seed) to run."""

    cell: CellSpec
    seed: int
    run_dir: Path
    store: Path | None
    sets: list[str]
    estimate_s: float = 0.0
    reuse_from: Path | None = None
    """A finished run this job repeats exactly (found when planning)."""
    preset: str | None = None
    """The model preset the run starts from (``missrec train --preset``), if any."""

    @property
    def done(self) -> bool:
        return (self.run_dir / "results.json").exists()

    def stale(self) -> bool:
        """Done, but with other overrides than the plan's (it is still skipped)."""
        meta = self.run_dir / "cell.json"
        if not (self.done and meta.exists()):
            return False
        try:
            recorded = json.loads(meta.read_text())
        except (OSError, json.JSONDecodeError):
            return False
        return (_effective(recorded.get("sets") or []) != _effective(self.sets)
                or recorded.get("preset") != self.preset)


def override_field(item: str) -> str:
    """The config field a ``key=value`` override sets (``train.threads=1`` -> ``threads``)."""
    return item.split("=", 1)[0].rsplit(".", 1)[-1]


def job_head(plan: Plan, index: int, job: Job) -> str:
    """How progress lines name a job: ``[i/n] CELL seed S``."""
    return f"[{index}/{len(plan.jobs)}] {job.cell.name} seed {job.seed}"


def _effective(sets: list[str]) -> list[str]:
    """Overrides that change what a run computes (speed settings such as threads dropped)."""
    from .reuse import VOLATILE_TRAIN_KEYS

    return [s for s in sets if override_field(s) not in VOLATILE_TRAIN_KEYS]


@dataclass
class Plan:
    experiment: Experiment
    out: Path
    data_root: Path
    jobs: list[Job]
    stores: dict[str, Path]
    problems: list[str]
    reuse: list[Path] = dataclasses.field(default_factory=list)
    """Other experiment folders whose finished runs may be adopted."""
    preset: str | None = None
    """The ``--preset`` of the from-scratch cells (their tables are told apart by it)."""
    sets: list[str] = dataclasses.field(default_factory=list)
    """The user's ``--set`` overrides that change results (not threads, device, ...)."""

    @property
    def search_folders(self) -> list[Path]:
        return [self.out, *self.reuse]

    @property
    def estimate_s(self) -> float:
        return sum(j.estimate_s for j in self.jobs if not j.done and j.reuse_from is None) + self.store_estimate_s

    @property
    def store_estimate_s(self) -> float:
        """Text encoding of the stores still to build."""
        return sum(RECIPES[n].n_items * ENCODE_MS_PER_ITEM / 1000 for n, p in self.stores.items()
                   if n in RECIPES and RECIPES[n].text and not store_ready(p))


# ----------------------------------------------------------------------------- overrides

def _sections(cell: CellSpec) -> dict[str, type]:
    from ..model.registry import get_model_spec

    return {"train": TrainConfig, "model": get_model_spec(cell.model).config_cls}


def _applies(key: str, sections: dict[str, type]) -> bool:
    if "." in key:
        sec, name = key.split(".", 1)
        return sec in sections and name in {f.name for f in dataclasses.fields(sections[sec])}
    return any(key in {f.name for f in dataclasses.fields(cls)} for cls in sections.values())


def cell_overrides(exp: Experiment, cell: CellSpec, user_sets: list[str], seed: int) -> list[str]:
    """The cell's ``--set`` list: experiment defaults < cell < user (those that apply) < seed.

    A user key ``pretrain.K=V`` applies to pre-training cells only (as ``K=V``); ``finetune.K=V``
    to training cells only; other keys apply to every cell whose configs have that field.
    """
    sections = _sections(cell)
    out = [s for s in exp.defaults if _applies(s.split("=", 1)[0], sections)]
    out += list(cell.sets)
    for key, value in parse_overrides(user_sets).items():
        scope, _, rest = key.partition(".")
        if scope in ("pretrain", "finetune"):
            if (scope == "pretrain") != (cell.kind == "pretrain"):
                continue
            key = rest
        if _applies(key, sections):
            out.append(f"{key}={value}")
    out.append(f"train.seed={seed}")
    # one entry per key, the last one winning, so the list reads as the effective overrides
    last: dict[str, str] = {}
    for item in out:
        k, _, v = item.partition("=")
        last.pop(k, None)
        last[k] = v
    return [f"{k}={v}" for k, v in last.items()]


def _check_user_sets(exp: Experiment, user_sets: list[str]) -> None:
    """Every user override must apply to at least one cell (catches typos)."""
    for key in parse_overrides(user_sets):
        scope, _, rest = key.partition(".")
        k = rest if scope in ("pretrain", "finetune") else key
        if not any(_applies(k, _sections(c)) for c in exp.cells):
            raise MissrecError(f"--set {key}: no cell of experiment {exp.name!r} has a config field {k!r}")


# ----------------------------------------------------------------------------- planning

def plan_experiment(name: str, out: str | Path, seeds: int = 1, data_root: str | Path | None = None,
                    sets: list[str] | None = None, data: str | Path | None = None,
                    max_per_domain: int | None = None, only: list[str] | None = None,
                    reuse: list[Path] | None = None, preset: str | None = None) -> Plan:
    """Resolve every (cell, seed) of experiment ``name``: folders, stores, configs, estimates.

    ``preset``: a model preset (e.g. 'released') for every from-scratch training cell whose
    model has it; pre-training and fine-tuning cells keep their configs.

    ``data`` replaces every cell's store with one existing store (debugging / tests).
    ``reuse``: other experiment folders whose finished runs and built stores may be adopted.
    """
    from ..train.resolve import resolve_configs

    exp = get_experiment(name)
    if max_per_domain is not None:
        exp = dataclasses.replace(exp, cells=tuple(
            dataclasses.replace(c, max_per_domain=max_per_domain) if c.kind == "pretrain" else c
            for c in exp.cells))
    if only:
        unknown = set(only) - {c.name for c in exp.cells}
        if unknown:
            raise MissrecError(f"experiment {exp.name} has no cell(s) {sorted(unknown)}; "
                               f"cells: {', '.join(c.name for c in exp.cells)}")
        # a chosen cell's pre-training cell stays in the plan (it is skipped once done)
        keep = set(only) | {c.init_from for c in exp.cells if c.name in only and c.init_from}
        exp = dataclasses.replace(exp, cells=tuple(c for c in exp.cells if c.name in keep))
    if seeds < 1:
        raise MissrecError(f"--seeds must be >= 1, got {seeds}")
    out = Path(out)
    root = Path(data_root) if data_root is not None else default_data_root()
    user_sets = list(sets or [])
    _check_user_sets(exp, user_sets)
    stores: dict[str, Path] = {}
    problems: list[str] = []
    reuse = [Path(r) for r in (reuse or [])]
    for r in reuse:
        if not r.is_dir():
            raise MissrecError(f"--reuse {r}: no such folder")
    for s in exp.stores():
        stores[s] = Path(data) if data is not None else _store_path(s, out, reuse)
        if data is None and not store_ready(stores[s]):
            problems += recipe_problems(RECIPES[s], root)
    if data is not None and not (Path(data) / "schema.json").exists():
        raise MissrecError(f"--data {data}: not a dataset store (no schema.json)")
    jobs = []
    # pre-training cells first: the cells that fine-tune from them need their checkpoints
    for cell in sorted(exp.cells, key=lambda c: c.kind != "pretrain"):
        if cell.init_from is not None and not any(c.name == cell.init_from and c.kind == "pretrain"
                                                  for c in exp.cells):
            raise MissrecError(f"experiment {exp.name}: cell {cell.name} fine-tunes from unknown "
                               f"pre-training cell {cell.init_from!r}")
        for i in range(seeds):
            seed = BASE_SEED + i
            sub = "pretrain" if cell.kind == "pretrain" else "runs"
            job_sets = cell_overrides(exp, cell, user_sets, seed)
            job_preset = preset if preset and _takes_preset(cell) else None
            try:
                train_cfg, _ = resolve_configs(cell.model, None, tuple(job_sets), job_preset)
            except Exception as e:  # a bad override: name the cell
                raise MissrecError(f"experiment {exp.name}, cell {cell.name}: {e}") from None
            store = None if cell.kind == "pretrain" else stores[cell.store]
            job = Job(cell, seed, out / sub / cell.name / f"seed-{seed}", store, job_sets, preset=job_preset)
            jobs.append((job, train_cfg))
    if preset and not any(j.preset for j, _ in jobs):
        raise MissrecError(f"--preset {preset}: no from-scratch cell of experiment {exp.name!r} has a model "
                           "with presets")
    measured = _measured_costs([j for j, _ in jobs], stores)
    for job, train_cfg in jobs:
        job.estimate_s = _estimate(job.cell, train_cfg, stores, measured)
    plan = Plan(exp, out, root, [j for j, _ in jobs], stores, problems, reuse, preset, _effective(user_sets))
    by_name = {(j.cell.name, j.seed): j for j in plan.jobs}
    for job in plan.jobs:  # pre-training jobs come first, so fine-tuning jobs can see theirs
        if not job.done:
            init = None
            if job.cell.init_from:
                pre = by_name[(job.cell.init_from, job.seed)]
                init = _checkpoint_of(pre)
                if init is None:
                    continue
            job.reuse_from = _find_reusable(plan, job, init)
    return plan


def _takes_preset(cell: CellSpec) -> bool:
    from ..model.registry import get_model_spec

    return (cell.kind == "train" and not cell.init_from
            and hasattr(get_model_spec(cell.model).config_cls, "preset"))


def _store_path(name: str, out: Path, reuse: list[Path]) -> Path:
    """``out/stores/NAME``, unless only a reuse folder has it built from the same recipe."""
    own = out / "stores" / name
    if store_ready(own) or name not in RECIPES:
        return own
    want = json.loads(json.dumps(dataclasses.asdict(RECIPES[name]), default=str))
    for r in reuse:
        other = r / "stores" / name
        if store_ready(other):
            try:
                if json.loads((other / "recipe.json").read_text()).get("recipe") == want:
                    return other
            except (OSError, json.JSONDecodeError):
                continue
    return own


def _checkpoint_of(pretrain_job: Job) -> Path | None:
    """The checkpoint a pre-training job has made, or the one it will adopt."""
    for d in (pretrain_job.run_dir, pretrain_job.reuse_from):
        if d is not None and (d / "model.pt").exists() and (d / "results.json").exists():
            return d / "model.pt"
    return None


def _find_reusable(plan: Plan, job: Job, init: Path | None) -> Path | None:
    """A finished run (in this folder or a reuse folder) that ``job`` would repeat exactly."""
    from ..config import TrainConfig, to_dict
    from ..data.store import read_schema
    from ..model.registry import get_model_spec
    from ..train.resolve import resolve_configs
    from .reuse import find_pretraining_run, find_training_run, store_features

    cell = job.cell
    defaults = {"model": to_dict(get_model_spec(cell.model).config_cls()), "train": to_dict(TrainConfig())}
    if cell.kind == "pretrain":
        domains = []
        for s in cell.pretrain_stores:
            path = plan.stores[s]
            if not (path / "schema.json").exists():
                return None
            rows = train_rows_of(path, RECIPES.get(s))
            domains.append((read_schema(path).get("fingerprint", ""),
                            min(rows, cell.max_per_domain) if cell.max_per_domain else rows, store_features(path)))
        train_cfg, model_cfg = resolve_configs(cell.model, None, tuple(job.sets))
        if hasattr(model_cfg, "modalities"):  # pre-training keeps the modalities some domain has
            have = {m for _, _, feats in domains for m in feats}
            model_cfg = dataclasses.replace(model_cfg, modalities=[m for m in model_cfg.modalities if m in have])
        config = {"model": to_dict(model_cfg), "train": to_dict(train_cfg)}
        return find_pretraining_run(plan.search_folders, model=cell.model, config=config, domains=domains,
                                    exclude=job.run_dir, defaults=defaults)
    if job.store is None or not (job.store / "schema.json").exists():
        return None
    train_cfg, model_cfg = resolve_configs(cell.model, None, tuple(job.sets), job.preset, init)
    config = {"model": to_dict(model_cfg), "train": to_dict(train_cfg)}
    return find_training_run(plan.search_folders, model=cell.model, config=config,
                             fingerprint=read_schema(job.store).get("fingerprint", ""),
                             features=store_features(job.store) or {}, init=init,
                             exclude=job.run_dir, defaults=defaults)


def _measured_costs(jobs: list[Job], stores: dict[str, Path]) -> dict[tuple[str, str], float]:
    """ms per training sequence per epoch of finished runs, by (kind, model) (median)."""
    seen: dict[tuple[str, str], list[float]] = {}
    for j in jobs:
        if not j.done:
            continue
        try:
            res = json.loads((j.run_dir / "results.json").read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if j.cell.kind == "pretrain":
            rows, spe = res.get("train_sequences", 0), res.get("train_seconds", 0) / max(res.get("epochs", 1), 1)
        else:
            rows = train_rows_of(stores[j.cell.store], RECIPES.get(j.cell.store))
            spe = res.get("train_seconds", 0) / max(res.get("epochs", 1), 1)
        if rows and spe:
            seen.setdefault((j.cell.kind, j.cell.model), []).append(1000 * spe / rows)
    return {k: float(sorted(v)[len(v) // 2]) for k, v in seen.items()}


def _estimate(cell: CellSpec, cfg: TrainConfig, stores: dict[str, Path],
              measured: dict[tuple[str, str], float] | None = None) -> float:
    measured = measured or {}
    if (cell.kind, cell.model) in measured:
        ms = measured[(cell.kind, cell.model)]
        if cell.kind == "pretrain":
            ms /= PRETRAIN_FACTOR  # measured figures already include both views
    else:
        ms = MS_PER_SEQUENCE.get(cell.model, 5.0)
    if cell.kind == "pretrain":
        rows = sum(train_rows_of(stores[s], RECIPES.get(s)) for s in cell.pretrain_stores)
        if cell.max_per_domain:
            rows = min(rows, cell.max_per_domain * len(cell.pretrain_stores))
        return cfg.epochs * rows * ms * PRETRAIN_FACTOR / 1000
    rows = train_rows_of(stores[cell.store], RECIPES.get(cell.store))
    return min(cfg.epochs, TYPICAL_EPOCHS) * rows * ms / 1000


def _hms(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


def describe_plan(plan: Plan, processes: int = 1) -> str:
    """The planned cells, their state and the estimated time (what --dry-run prints)."""
    exp = plan.experiment
    lines = [f"experiment {exp.name}: {exp.description}",
             f"output: {plan.out}   data root: {plan.data_root}", ""]
    lines.append("stores:")
    for name, path in plan.stores.items():
        state = "ready" if store_ready(path) or (path / "schema.json").exists() else "to build"
        recipe = RECIPES.get(name)
        lines.append(f"  {name:<22} {state:<9} {recipe.description if recipe else path}")
    lines += ["", f"cells ({len({j.cell.name for j in plan.jobs})} settings x "
                  f"{len({j.seed for j in plan.jobs})} seed(s) = {len(plan.jobs)} runs):"]
    for i, j in enumerate(plan.jobs, 1):
        c = j.cell
        what = (f"pretrain {c.model} on {'+'.join(c.pretrain_stores)}" if c.kind == "pretrain"
                else f"{c.model} on {c.store}" + (f" from {c.init_from}" if c.init_from else ""))
        state = (("done*" if j.stale() else "done") if j.done else "reuse" if j.reuse_from is not None
                 else f"~{_hms(j.estimate_s)}")
        sets = " ".join(s for s in j.sets if not s.startswith("train.seed="))
        lines.append(f"  [{i:>2}/{len(plan.jobs)}] {c.name:<28} seed {j.seed}  {state:<9} {what}"
                     + (f"  ({c.label})" if c.label else "") + (f"  --preset {j.preset}" if j.preset else "")
                     + (f"  --set {sets}" if sets else ""))
    n_todo = sum(not j.done and j.reuse_from is None for j in plan.jobs)
    reused = [j for j in plan.jobs if not j.done and j.reuse_from is not None]
    lines += ["", f"to run: {n_todo} of {len(plan.jobs)}"
                  + (f" ({len(reused)} adopted from finished runs)" if reused else "") + f"; estimated time ~{_hms(plan.estimate_s)} "
                  + (f"of run time, ~{_hms(plan.estimate_s / processes)} elapsed with {processes} processes "
                     if processes > 1 else "")
                  + f"(rough, for a 2-core CPU; early stopping after ~{TYPICAL_EPOCHS} epochs; "
                  f"building stores ~{_hms(plan.store_estimate_s)})"]
    for j in reused:
        lines.append(f"reuse: {j.cell.name} seed {j.seed} repeats {j.reuse_from}")
    if any(j.stale() for j in plan.jobs):
        lines.append("done*: finished earlier with other overrides; it is kept (delete its folder to re-run)")
    for p in plan.problems:
        lines.append(f"warning: {p}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- running

def run_experiment(name: str, out: str | Path, seeds: int = 1, data_root: str | Path | None = None,
                   sets: list[str] | None = None, dry_run: bool = False, data: str | Path | None = None,
                   plots: bool = True, log: Log = print, train_log: Log | None = None,
                   progress: bool = False, max_per_domain: int | None = None,
                   only: list[str] | None = None, reuse: list[Path] | None = None,
                   preset: str | None = None, processes: int = 1) -> Plan:
    """Plan, (unless ``dry_run``) run every pending (cell, seed) and write the report to ``out``.

    ``processes`` > 1 trains that many (cell, seed) runs at once, each in its own process
    with the CPU's cores shared out among them (:mod:`missrec.experiments.parallel`); their
    per-epoch lines go to ``RUN_DIR/train.log`` instead of ``train_log``."""
    if processes < 1:
        raise MissrecError(f"--jobs must be >= 1, got {processes}")
    plan = plan_experiment(name, out, seeds, data_root, sets, data, max_per_domain, only, reuse, preset)
    log(describe_plan(plan, processes))
    if dry_run:
        return plan
    if plan.problems:
        raise MissrecError("cannot run experiment " + name + ": " + "; ".join(plan.problems))
    train_log = train_log if train_log is not None else log
    exp = plan.experiment
    for s, path in plan.stores.items():
        if data is None and not store_ready(path):
            ensure_store(RECIPES[s], path.parent, plan.data_root, log)
    t0 = time.perf_counter()
    if processes > 1:
        from .parallel import run_jobs_in_parallel

        run_jobs_in_parallel(exp, plan, processes, log)
    else:
        cache: dict[tuple, Any] = {}
        for i, job in enumerate(plan.jobs, 1):
            head = job_head(plan, i, job)
            if settle_job(exp, plan, job, head, log):
                continue
            log(f"{head}: running ({job.cell.label or job.cell.kind})")
            start = time.perf_counter()
            res = run_job(exp, plan, job, cache, train_log, progress)
            log(finished_line(head, res, time.perf_counter() - start, time.perf_counter() - t0))
    from ..report import write_report

    sources = [p for p in (plan.out / "runs", plan.out / "pretrain") if p.exists()]
    files = write_report(sources, plan.out, title=f"missrec experiment {exp.name}", plots=plots)
    log(f"report: {files.markdown} and {files.html}")
    return plan


def settle_job(exp: Experiment, plan: Plan, job: Job, head: str, log: Log) -> bool:
    """True when ``job`` needs no training: it is done, or it adopts a finished run it repeats."""
    if job.done:
        log(f"{head}: done, skipped ({job.run_dir / 'results.json'})")
        return True
    source = _find_reusable(plan, job, _init_checkpoint(plan, job))
    if source is None:
        return False
    from .reuse import adopt_run

    adopt_run(source, job.run_dir, _cell_meta(exp, job, plan))
    log(f"{head}: repeats the finished run {source}; adopting its results")
    return True


def finished_line(head: str, results: dict, took_s: float, elapsed_s: float) -> str:
    score = (results.get("test") or {}).get("ndcg@10")
    return (f"{head}: finished in {_hms(took_s)}" + (f", test ndcg@10 {score:.4f}" if score is not None else "")
            + f" (elapsed {_hms(elapsed_s)})")


def run_job(exp: Experiment, plan: Plan, job: Job, cache: dict, log: Log, progress: bool) -> dict:
    from ..train.resolve import resolve_configs

    cell = job.cell
    job.run_dir.parent.mkdir(parents=True, exist_ok=True)
    init = _init_checkpoint(plan, job)
    if cell.kind == "pretrain":
        from ..train.pretrain import pretrain

        train_cfg, model_cfg = resolve_configs(cell.model, None, tuple(job.sets))
        stores = [plan.stores[s] for s in cell.pretrain_stores]
        job.run_dir.mkdir(parents=True, exist_ok=True)
        (job.run_dir / "cell.json").write_text(json.dumps(_cell_meta(exp, job, plan), indent=2) + "\n")
        return pretrain(stores, job.run_dir, train_cfg, model_cfg, model_name=cell.model,
                        max_examples_per_domain=cell.max_per_domain, progress=progress, log=log)
    from ..model.registry import required_modalities
    from ..train.loop import RunData, max_len_of, train

    train_cfg, model_cfg = resolve_configs(cell.model, None, tuple(job.sets), job.preset, init)
    key = (str(job.store), tuple(sorted(required_modalities(model_cfg))), max_len_of(model_cfg))
    if key not in cache:
        cache.clear()  # keep one store in memory at a time
        cache[key] = RunData.load(job.store.resolve(), list(key[1]), key[2])
    job.run_dir.mkdir(parents=True, exist_ok=True)
    (job.run_dir / "cell.json").write_text(json.dumps(_cell_meta(exp, job, plan), indent=2) + "\n")
    result = train(cell.model, job.store.resolve(), job.run_dir, train_cfg, model_cfg, init_from=init,
                   data=cache[key], progress=progress, log=log)
    return result.results


def _init_checkpoint(plan: Plan, job: Job) -> Path | None:
    """The pre-trained checkpoint a fine-tuning job starts from (None: from scratch)."""
    if not job.cell.init_from:
        return None
    init = plan.out / "pretrain" / job.cell.init_from / f"seed-{job.seed}" / "model.pt"
    if not init.exists():
        raise MissrecError(f"{job.cell.name}: pre-trained checkpoint {init} is missing (its pre-training cell "
                           "should have run first)")
    return init


def _cell_meta(exp: Experiment, job: Job, plan: Plan) -> dict[str, Any]:
    cell = job.cell
    table = exp.tables.get(cell.table)
    n_items = None
    schema = job.store / "schema.json" if job.store else None
    if schema is not None and schema.exists():
        n_items = json.loads(schema.read_text()).get("n_items")
    table_id = cell.table or exp.name
    title = table.title if table else table_id
    if plan.preset and cell.kind == "train" and not cell.init_from:
        # the same analysis under another preset (and overrides) is another table, not more
        # seeds of this one
        table_id, title = f"{table_id}-{plan.preset}", f"{title}; MISSRec with --preset {plan.preset}"
        if plan.sets:
            digest = hashlib.sha1(" ".join(plan.sets).encode()).hexdigest()[:8]
            table_id, title = f"{table_id}-{digest}", title + "".join(f" --set {s}" for s in plan.sets)
    return {
        "experiment": exp.run_group, "cell": cell.name, "label": cell.label or cell.name,
        "table": table_id, "table_title": title,
        "table_note": table.note if table else "",
        "order": cell.order, "note": cell.note,
        "paper": {"table": cell.paper[0], "row": cell.paper[1]} if cell.paper else None,
        "store_recipe": cell.store, "sets": job.sets, "preset": job.preset, "seed": job.seed, "n_items": n_items,
        "pretrain_cell": cell.init_from,
    }
