"""``missrec bench cluster``: interest discovery (DPC-KNN, eqs. 3-4) on a synthetic mixture.

It adds itself to the ``bench`` group of :mod:`missrec.cli.train`; nothing new at the top.
"""

from __future__ import annotations

import click

from ..model.cell_index import CellParams
from ..model.interests_bench import bench_cluster
from .common import echo_json
from .train import bench

_CELLS = CellParams()


@bench.command("cluster")
@click.option("--tokens", type=click.IntRange(min=2), required=True, help="Tokens to cluster (N).")
@click.option("--dim", type=click.IntRange(min=1), required=True, help="Token dimension (d).")
@click.option("--ratio", type=float, default=0.02, show_default=True,
              help="K_c: a ratio of the tokens (< 1, 0.02 pre-training, 0.5 fine-tuning) or a count.")
@click.option("--approximate", is_flag=True,
              help="Cell-index search for every step (the 'approximate' cluster backend).")
@click.option("--compare-exact", is_flag=True,
              help="Also run the exact backend and report the agreement.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the mixture.")
@click.option("--knn-k", type=click.IntRange(min=1), default=5, show_default=True, help="k of eq. 3.")
@click.option("--components", type=click.IntRange(min=1), default=None,
              help="Mixture components (default: one per 50 tokens).")
@click.option("--probe", type=click.IntRange(min=1), default=_CELLS.n_probe, show_default=True,
              help="Cells probed per token (--approximate).")
@click.option("--union", type=click.IntRange(min=1), default=_CELLS.max_union, show_default=True,
              help="Most cells scanned for the tokens of one cell (--approximate).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def bench_cluster_cmd(tokens: int, dim: int, ratio: float, approximate: bool, compare_exact: bool,
                      seed: int, knn_k: int, components: int | None, probe: int, union: int,
                      as_json: bool) -> None:
    """Time DPC-KNN per step on a seeded Gaussian mixture: seconds, peak memory, agreement."""
    cells = CellParams(n_probe=probe, max_union=union)
    res = bench_cluster(tokens, dim, ratio, approximate, compare_exact, seed, knn_k, components,
                        cells)
    if as_json:
        echo_json(res)
    else:
        for key, value in res.items():
            click.echo(f"{key:<24} {value}")


COMMANDS: list[click.Command] = []
