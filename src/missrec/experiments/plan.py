"""Plan an experiment: every (cell, seed) as a :class:`Job` with its folder, store, overrides,
resolved configuration, time estimate and the finished run it may adopt."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import TrainConfig, load_sections, to_dict
from ..data.store import read_schema
from ..errors import MissrecError
from ..model.registry import get_model_spec
from ..train.pretrain import domain_train_examples
from ..train.pretrained import model_digest
from ..train.resolve import resolve_configs
from .catalog import get_experiment
from .estimate import measured_costs, measured_epochs, run_estimate, store_estimate
from .options import ExperimentOptions
from .overrides import cell_overrides, check_user_sets, effective
from .reuse import comparable_config, find_pretraining_run, find_training_run, init_checkpoint_of, store_features
from .spec import BASE_SEED, CellSpec, Experiment
from .stores import RECIPES, default_data_root, recipe_problems, store_ready


@dataclass
class Job:
    """One (cell, seed) to run."""

    cell: CellSpec
    seed: int
    run_dir: Path
    store: Path | None
    sets: list[str]
    train_cfg: TrainConfig
    model_cfg: Any
    """The configs the run trains with, resolved once from the overrides (and, for a
    fine-tuning job, from its starting checkpoint once that exists: see :func:`resolve_job`)."""
    preset: str | None = None
    """The model preset the run starts from (``missrec train --preset``), if any."""
    from_checkpoint: bool = False
    """``model_cfg`` was resolved from the starting checkpoint."""
    estimate_s: float = 0.0
    reuse_from: Path | None = None
    """A finished run this job repeats exactly (found when planning)."""

    @property
    def done(self) -> bool:
        return (self.run_dir / "results.json").exists()

    def stale(self) -> str | None:
        """Why a done run is not the run the plan would make now (it is still skipped), or
        None: its cell.json records other overrides or another preset; a run from scratch
        trained with another configuration than the plan's (a model's defaults changed since);
        a fine-tuned or zero-shot run started from a model its pre-training cell has since
        replaced."""
        if not self.done:
            return None
        recorded = _read_json(self.run_dir / "cell.json")
        if recorded is not None and (effective(recorded.get("sets") or []) != effective(self.sets)
                                     or recorded.get("preset") != self.preset):
            return "it ran with other overrides or another preset than the plan's"
        results = _read_json(self.run_dir / "results.json")
        if results is None:
            return None
        if self.cell.init_from:
            had, init = results.get("transfer_from_sha256"), init_checkpoint_of(self.run_dir, results)
            if had is not None and init is not None and model_digest(init) != had:
                return "its pre-training cell has made another model since this run started from it"
            return None
        if self.cell.kind != "train" or "config" not in results:
            return None  # pre-training configs depend on their data
        planned = {"model": to_dict(self.model_cfg), "train": to_dict(self.train_cfg)}
        if comparable_config(results["config"], self.cell.model) != comparable_config(planned, self.cell.model):
            return "it trained with another configuration than the plan's"
        return None


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


@dataclass
class Plan:
    experiment: Experiment
    out: Path
    data_root: Path
    jobs: list[Job]
    stores: dict[str, Path]
    problems: list[str]
    reuse: list[Path] = field(default_factory=list)
    """Other experiment folders whose finished runs may be adopted."""
    preset: str | None = None
    """The ``--preset`` of the from-scratch cells (their tables are told apart by it)."""
    sets: list[str] = field(default_factory=list)
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
        return sum(store_estimate(n) for n, p in self.stores.items() if not store_ready(p))

    def job_of(self, cell_name: str, seed: int) -> Job:
        return next(j for j in self.jobs if j.cell.name == cell_name and j.seed == seed)

    def source_of(self, job: Job) -> Job | None:
        """The pre-training job ``job`` starts from: of the same seed, or the one run of a
        pre-training cell with a fixed seed (None: ``job`` starts from scratch)."""
        if not job.cell.init_from:
            return None
        source = next(c for c in self.experiment.cells if c.name == job.cell.init_from)
        return self.job_of(source.name, source.seed if source.seed is not None else job.seed)


def plan_experiment(options: ExperimentOptions) -> Plan:
    """Resolve every (cell, seed) of the experiment: folders, stores, configs, estimates, reuse."""
    exp = _chosen_cells(get_experiment(options.name, tuple(options.targets), tuple(options.fractions),
                                        options.tuned), options)
    check_user_sets(exp, options.sets)
    for r in options.reuse:
        if not r.is_dir():
            raise MissrecError(f"--reuse {r}: no such folder")
    root = options.data_root if options.data_root is not None else default_data_root()
    stores, problems = _stores(exp, options, root)
    jobs = _jobs(exp, options, stores)
    finished = [(j.cell, j.run_dir) for j in jobs if j.done]
    measured, epochs_taken = measured_costs(finished, stores), measured_epochs(finished)
    for job in jobs:
        job.estimate_s = run_estimate(job.cell, job.train_cfg, stores, measured, epochs_taken)
    plan = Plan(exp, options.out, root, jobs, stores, problems, options.reuse, options.preset,
                effective(options.sets))
    for job in plan.jobs:  # pre-training jobs come first, so fine-tuning jobs can see theirs
        if not job.done:
            source = plan.source_of(job)
            init = _checkpoint_of(source) if source is not None else None
            if job.cell.init_from and init is None:
                continue
            job.reuse_from = find_reusable(plan, job, init)
    return plan


def _chosen_cells(exp: Experiment, options: ExperimentOptions) -> Experiment:
    """``exp`` with ``--max-per-domain`` applied and only the ``--only`` cells (and what they need)."""
    if options.max_per_domain is not None:
        exp = dataclasses.replace(exp, cells=tuple(
            dataclasses.replace(c, max_per_domain=options.max_per_domain) if c.kind == "pretrain" else c
            for c in exp.cells))
    for cell in exp.cells:
        if cell.init_from is not None and not any(c.name == cell.init_from and c.kind == "pretrain"
                                                  for c in exp.cells):
            raise MissrecError(f"experiment {exp.name}: cell {cell.name} fine-tunes from unknown "
                               f"pre-training cell {cell.init_from!r}")
    if options.only:
        unknown = set(options.only) - {c.name for c in exp.cells}
        if unknown:
            raise MissrecError(f"experiment {exp.name} has no cell(s) {sorted(unknown)}; "
                               f"cells: {', '.join(c.name for c in exp.cells)}")
        # a chosen cell's pre-training cell stays in the plan (it is skipped once done)
        keep = set(options.only) | {c.init_from for c in exp.cells if c.name in options.only and c.init_from}
        exp = dataclasses.replace(exp, cells=tuple(c for c in exp.cells if c.name in keep))
    return exp


def _stores(exp: Experiment, options: ExperimentOptions, root: Path) -> tuple[dict[str, Path], list[str]]:
    """Where each store of ``exp`` is (or will be built), and what would stop building one."""
    if options.data is not None:
        if not (options.data / "schema.json").exists():
            raise MissrecError(f"--data {options.data}: not a dataset store (no schema.json)")
        return {s: options.data for s in exp.stores()}, []
    stores: dict[str, Path] = {}
    problems: list[str] = []
    for s in exp.stores():
        stores[s] = _store_path(s, options.out, options.reuse)
        if not store_ready(stores[s]):
            problems += recipe_problems(RECIPES[s], root)
    return stores, problems


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


def _jobs(exp: Experiment, options: ExperimentOptions, stores: dict[str, Path]) -> list[Job]:
    """One job per (cell, seed), pre-training cells first (fine-tuning cells need their checkpoints)."""
    if options.preset and exp.preset_refused:
        raise MissrecError(f"--preset {options.preset}: {exp.preset_refused}")
    jobs = []
    for cell in sorted(exp.cells, key=lambda c: c.kind != "pretrain"):
        preset = options.preset if options.preset and _takes_preset(cell) else cell.preset
        seeds = [cell.seed] if cell.seed is not None else range(BASE_SEED, BASE_SEED + options.seeds)
        for seed in seeds:
            sets = cell_overrides(exp, cell, options.sets, seed)
            try:
                train_cfg, model_cfg = _resolve(cell, sets, preset)
            except Exception as e:  # a bad override: name the cell
                raise MissrecError(f"experiment {exp.name}, cell {cell.name}: {e}") from None
            sub = "pretrain" if cell.kind == "pretrain" else "runs"
            jobs.append(Job(cell, seed, options.out / sub / cell.name / f"seed-{seed}",
                            None if cell.kind == "pretrain" else stores[cell.store], sets, train_cfg, model_cfg,
                            preset))
    if options.preset and not any(j.preset == options.preset for j in jobs):
        raise MissrecError(f"--preset {options.preset}: no from-scratch cell of experiment {exp.name!r} has a "
                           "model with presets")
    return jobs


def _resolve(cell: CellSpec, sets: list[str], preset: str | None) -> tuple[TrainConfig, Any]:
    """A job's (train config, model config); a popularity cell has no model (None)."""
    if not cell.has_model:
        return load_sections({"train": TrainConfig}, None, sets)["train"], None
    return resolve_configs(cell.model, None, tuple(sets), preset, pretraining=cell.kind == "pretrain")


def _takes_preset(cell: CellSpec) -> bool:
    return (cell.kind == "train" and not cell.init_from
            and hasattr(get_model_spec(cell.model).config_cls, "preset"))


def resolve_job(job: Job, init: Path | None) -> Job:
    """Give a fine-tuning job the configs it trains with: the architecture is the starting
    checkpoint's, so they are resolved again, once, when the checkpoint first exists."""
    if init is not None and not job.from_checkpoint:
        job.train_cfg, job.model_cfg = resolve_configs(job.cell.model, None, tuple(job.sets), job.preset, init)
        job.from_checkpoint = True
    return job


def _checkpoint_of(pretrain_job: Job) -> Path | None:
    """The checkpoint a pre-training job has made, or the one it will adopt."""
    for d in (pretrain_job.run_dir, pretrain_job.reuse_from):
        if d is not None and (d / "model.pt").exists() and (d / "results.json").exists():
            return d / "model.pt"
    return None


def find_reusable(plan: Plan, job: Job, init: Path | None) -> Path | None:
    """A finished run (in this folder or a reuse folder) that ``job`` would repeat exactly."""
    cell = job.cell
    if cell.kind not in ("train", "pretrain"):
        return None  # evaluation-only runs take seconds: they are made, not looked for
    if cell.kind == "pretrain":
        domains = []
        for s in cell.pretrain_stores:
            path = plan.stores[s]
            if not (path / "schema.json").exists():
                return None
            rows = domain_train_examples(path, cell.max_per_domain, job.train_cfg.heldout_share, job.train_cfg.seed)
            domains.append((read_schema(path).get("fingerprint", ""), rows, store_features(path)))
        model_cfg = job.model_cfg
        if hasattr(model_cfg, "modalities"):  # pre-training keeps the modalities some domain has
            have = {m for _, _, feats in domains for m in feats}
            model_cfg = dataclasses.replace(model_cfg, modalities=[m for m in model_cfg.modalities if m in have])
        config = {"model": to_dict(model_cfg), "train": to_dict(job.train_cfg)}
        return find_pretraining_run(plan.search_folders, model=cell.model, config=config, domains=domains,
                                    exclude=job.run_dir)
    if job.store is None or not (job.store / "schema.json").exists():
        return None
    resolve_job(job, init)
    config = {"model": to_dict(job.model_cfg), "train": to_dict(job.train_cfg)}
    return find_training_run(plan.search_folders, model=cell.model, config=config,
                             fingerprint=read_schema(job.store).get("fingerprint", ""),
                             features=store_features(job.store) or {}, init=init,
                             exclude=job.run_dir)
