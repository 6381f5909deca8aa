"""The ``missrec`` command. It parses arguments and calls the library; nothing more.

Each subcommand lives in its own module of this package and is registered below.
"""

from __future__ import annotations

import os
import sys

# Before torch loads: idle OpenMP threads sleep instead of spinning. On a busy 2-core
# machine spinning threads stall each other (an epoch measured 95-111 s spinning, 17.5 s
# passive); on an idle one the difference is small.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import click

from ..errors import MissrecError
from .common import quiet_option  # noqa: F401  (re-exported for subcommand modules)


class _Group(click.Group):
    """Turns library errors into one line on stderr and a non-zero exit."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except MissrecError as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(1)
        except FileNotFoundError as e:
            click.echo(f"error: {e.filename or e}: no such file or directory", err=True)
            sys.exit(1)


@click.group(cls=_Group)
@click.version_option(package_name="missrec")
def main() -> None:
    """MISSRec: multi-modal interest-aware sequential recommendation."""


def _register() -> None:
    from . import data

    main.add_command(data.data)
    # Optional command modules: each is added when present.
    import importlib

    for mod_name in ("train", "features", "pretrain", "report", "experiment", "serve"):
        try:
            mod = importlib.import_module(f"{__name__}.{mod_name}")
        except ModuleNotFoundError as e:
            if e.name != f"{__name__}.{mod_name}":
                raise
            continue
        for cmd in getattr(mod, "COMMANDS", []):
            main.add_command(cmd)


_register()
