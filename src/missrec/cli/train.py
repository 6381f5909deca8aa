"""``missrec train``, ``missrec evaluate`` and ``missrec bench``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..eval.modalities import Drop
from ..model.registry import MODELS
from ..train.bench import bench_training
from ..train.loop import evaluate_checkpoint, train
from ..train.resolve import resolve_configs
from .common import echo_json, quiet_option, show_progress


model_option = click.option("--model", "model", required=True, type=click.Choice(sorted(MODELS)),
                            help="Which recommender.")
data_option = click.option("--data", "store", required=True,
                           type=click.Path(exists=True, file_okay=False, path_type=Path),
                           help="Dataset store (from `missrec data import`).")
config_option = click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                             default=None, help="YAML file with `train:` and `model:` sections.")
set_option = click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
                          help="Override a config field (repeatable), e.g. --set epochs=5 --set lr=3e-3.")
preset_option = click.option("--preset", default=None, help="Named model preset, e.g. 'released' for missrec.")
resume_option = click.option("--resume", is_flag=True,
                             help="Continue the interrupted run in --out from its last complete epoch, with the "
                                  "same settings; it finishes as an uninterrupted run would.")
overwrite_option = click.option("--overwrite", is_flag=True, help="Replace the run in --out, finished or not.")


@click.command("train")
@model_option
@data_option
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Run directory for results.json, config.yaml, history.jsonl, model.pt.")
@config_option
@set_option
@preset_option
@click.option("--from", "init_from", type=click.Path(exists=True, path_type=Path), default=None,
              help="Pre-trained model (a model.pt, a run directory or a bundle from `missrec export`): transfer it "
                   "with its architecture, tuning only what paper §3.6 says; on a store without some of its "
                   "modalities it fine-tunes on those the store has.")
@resume_option
@overwrite_option
@quiet_option
def train_cmd(model: str, store: Path, out_dir: Path, config_file: Path | None, sets: tuple[str, ...],
              preset: str | None, init_from: Path | None, resume: bool, overwrite: bool, quiet: bool) -> None:
    """Train a model, early-stop on validation, evaluate the best epoch on test."""
    train_cfg, model_cfg = resolve_configs(model, config_file, sets, preset, init_from, store)
    log = (lambda s: None) if quiet else (lambda s: click.echo(s, err=True))
    result = train(model, store, out_dir, train_cfg, model_cfg, init_from=init_from,
                   progress=show_progress(quiet), log=log, resume=resume, overwrite=overwrite)
    r = result.results
    if not r:  # a data-parallel process other than rank 0
        return
    click.echo(json.dumps({"model": r["model"], "best_epoch": r["best_epoch"], "epochs": r["epochs"],
                           "valid": r["valid"], "test": r.get("test", {}),
                           "results": str(out_dir / "results.json")}, indent=2))


@click.command("evaluate")
@click.argument("run", metavar="RUN_OR_BUNDLE", type=click.Path(exists=True, path_type=Path))
@data_option
@click.option("--split", type=click.Choice(["valid", "test"]), default="test", show_default=True)
@click.option("--mask-history/--no-mask-history", default=None, help="Exclude history items from the ranking.")
@click.option("--ties", type=click.Choice(["pessimistic", "optimistic", "random"]), default=None,
              help="Where a target tied with other items ranks (default: the run's setting).")
@click.option("--k", "ks", type=click.IntRange(min=1), multiple=True,
              help="Cutoff K of recall@K / ndcg@K / mrr@K (repeatable; default: the run's). "
                   "The official MISSRec code prints metric@K+1 under the name @K (README).")
@click.option("--drop", "drops", multiple=True, metavar="MODALITY:WHICH",
              help="Remove a modality from chosen items before ranking (repeatable): WHICH is 'targets' "
                   "(the split's targets), 'all', or a fraction of the items (seeded), e.g. image:targets.")
@click.option("--twins", "twins", multiple=True, metavar="MODALITY",
              help="Also rank, for every target, a twin without MODALITY; prints the median of "
                   "(twin rank + 1) / (target rank + 1) (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@quiet_option
def evaluate_cmd(run: Path, store: Path, split: str, mask_history: bool | None, ties: str | None,
                 ks: tuple[int, ...], drops: tuple[str, ...], twins: tuple[str, ...], as_json: bool,
                 quiet: bool) -> None:
    """Re-evaluate a saved model (a run directory, its model.pt, or a bundle) on a store.

    On the store it was trained on it scores as trained. On any other store (zero-shot) an
    inductive model is rebuilt on that store's catalogue, reading the modalities it has, and
    MISSRec re-clusters its interests there; a model that needs item ids (SASRec,
    transductive mode) is refused."""
    overrides = {k: v for k, v in (("mask_history", mask_history), ("ties", ties),
                                   ("ks", sorted(set(ks)) or None)) if v is not None}
    res = evaluate_checkpoint(run, store, split, overrides, progress=show_progress(quiet),
                              drops=[Drop.parse(d) for d in drops], twins=list(twins))
    if as_json:
        echo_json(res)
    else:
        click.echo(f"{res['model']} on {split} ({res['users']:,} users; {res['protocol']})")
        if "zero_shot" in res:
            z = res["zero_shot"]
            click.echo(f"  zero-shot on {z['store']}'s catalogue ({z['items']:,} items; {', '.join(z['modalities'])})")
        for k, v in res.items():
            if "@" in k:
                click.echo(f"  {k:<10} {v:.4f}")
        for what, n in res.get("dropped", {}).items():
            click.echo(f"  dropped {what}: {n:,} items")
        for m, t in res.get("twins", {}).items():
            click.echo(f"  twins without {m}: median rank ratio {t['median_ratio']:.3f}, twin above target "
                       f"for {t['twin_above_original']:.1%} of {t['users']:,} users")


@click.group("bench")
def bench() -> None:
    """Speed and memory measurements (not tests)."""


@bench.command("train")
@model_option
@data_option
@config_option
@set_option
@preset_option
@click.option("--epochs", default=2, show_default=True, help="Epochs to time (the first is also timed).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def bench_train(model: str, store: Path, config_file: Path | None, sets: tuple[str, ...], preset: str | None,
                epochs: int, as_json: bool) -> None:
    """Time training and evaluation: sequences/s, s/epoch, eval users/s, peak memory."""
    train_cfg, model_cfg = resolve_configs(model, config_file, sets, preset, store=store)
    res = bench_training(model, store, train_cfg, model_cfg, epochs)
    if as_json:
        echo_json(res)
    else:
        for k, v in res.items():
            click.echo(f"{k:<28} {v}")


COMMANDS = [train_cmd, evaluate_cmd, bench]
