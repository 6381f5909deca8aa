"""``missrec pretrain``: multi-domain pre-training (paper §3.5)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..train.pretrain import pretrain
from ..train.resolve import resolve_configs
from .common import quiet_option, show_progress
from .train import bench, config_option, overwrite_option, preset_option, resume_option, set_option


@click.command("pretrain")
@click.option("--data", "stores", multiple=True, required=True,
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="A pre-training domain's store (repeat for several domains).")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--model", default="missrec", show_default=True)
@click.option("--max-per-domain", default=0, show_default=True, type=click.IntRange(min=0),
              help="Sample at most this many training sequences per domain (0: all).")
@config_option
@set_option
@preset_option
@resume_option
@overwrite_option
@quiet_option
def pretrain_cmd(stores: tuple[Path, ...], out_dir: Path, model: str, max_per_domain: int,
                 config_file: Path | None, sets: tuple[str, ...], preset: str | None, resume: bool,
                 overwrite: bool, quiet: bool) -> None:
    """Pre-train one model on several domains; writes OUT/model.pt for `train --from`.

    A seeded share of each domain's users is held out (--set heldout_share=S, default 0.05;
    0: none, the last epoch is kept): after every epoch the pre-training loss of their
    sequences is computed, the epoch with the lowest is kept, and --set patience=N epochs
    without a lower one end the run."""
    train_cfg, model_cfg = resolve_configs(model, config_file, sets, preset, pretraining=True)
    log = (lambda s: None) if quiet else (lambda s: click.echo(s, err=True))
    res = pretrain(list(stores), out_dir, train_cfg, model_cfg, model_name=model,
                   max_examples_per_domain=max_per_domain, progress=show_progress(quiet), log=log,
                   resume=resume, overwrite=overwrite)
    if not res:  # a data-parallel process other than rank 0
        return
    shown = ("model", "epochs", "best_epoch", "train_seconds", "sequences_per_second")
    click.echo(json.dumps({k: res[k] for k in shown} | {"checkpoint": str(out_dir / "model.pt")}, indent=2))


@bench.command("pretrain")
@click.option("--data", "stores", multiple=True, required=True,
              type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--max-per-domain", default=0, show_default=True)
@click.option("--epochs", default=1, show_default=True)
@config_option
@set_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def bench_pretrain(stores: tuple[Path, ...], max_per_domain: int, epochs: int, config_file: Path | None,
                   sets: tuple[str, ...], as_json: bool) -> None:
    """Pre-training throughput: sequences/s over the pooled domains."""
    # training throughput over every sequence: no held-out users unless --set asks for them
    train_cfg, model_cfg = resolve_configs("missrec", config_file, ("heldout_share=0",) + sets + (f"epochs={epochs}",),
                                           pretraining=True)
    res = pretrain(list(stores), None, train_cfg, model_cfg, max_examples_per_domain=max_per_domain,
                   log=lambda s: None)
    if not res:  # a data-parallel process other than rank 0
        return
    out = {k: res[k] for k in ("model", "epochs", "train_sequences", "sequences_per_second", "train_seconds",
                               "cluster_seconds_per_epoch", "load_seconds", "peak_memory_mb", "threads",
                               "processes")}
    click.echo(json.dumps(out, indent=2) if as_json else "\n".join(f"{k:<24} {v}" for k, v in out.items()))


COMMANDS = [pretrain_cmd]
