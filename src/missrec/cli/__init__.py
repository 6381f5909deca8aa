"""The ``missrec`` command. It parses arguments and calls the library; nothing more.

Each subcommand lives in its own module of this package and is registered below.
"""

from __future__ import annotations

import os
import sys

# Before torch loads: idle OpenMP threads sleep instead of spinning. On a busy machine
# spinning threads take the cores other threads (and other runs) need, and stall each other.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import click  # noqa: E402

from ..errors import MissrecError  # noqa: E402
from . import bench_cluster, data, experiment, features, pretrain, report, serve, train, tune  # noqa: E402
from .common import quiet_option  # noqa: E402,F401  (re-exported for subcommand modules)


class _Group(click.Group):
    """Turns library errors into one line on stderr and a non-zero exit."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except MissrecError as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(1)
        except click.UsageError as e:  # a bad option value: one line too, not click's usage block
            where = f" (see `{e.ctx.command_path} --help`)" if e.ctx is not None else ""
            click.echo(f"error: {e.format_message()}{where}", err=True)
            sys.exit(1)
        except FileNotFoundError as e:
            click.echo(f"error: {e.filename or e}: no such file or directory", err=True)
            sys.exit(1)
        except (MemoryError, RuntimeError) as e:
            # sizes come from the user (model.max_len=1e11 asks for terabytes): say so in one line
            message = str(e) or type(e).__name__
            if not isinstance(e, MemoryError) and "allocate memory" not in message and "out of memory" not in message:
                raise
            click.echo(f"error: out of memory ({message.splitlines()[0][:200]}); lower the sizes in the "
                       "configuration (e.g. model.max_len, the model's width, train.batch_size)", err=True)
            sys.exit(1)


@click.group(cls=_Group)
@click.version_option(package_name="missrec")
def main() -> None:
    """MISSRec: multi-modal interest-aware sequential recommendation."""


main.add_command(data.data)
for _module in (train, bench_cluster, features, pretrain, report, experiment, serve, tune):
    for _command in _module.COMMANDS:
        main.add_command(_command)
