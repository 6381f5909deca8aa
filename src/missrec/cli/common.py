"""Options and helpers shared by subcommands."""

from __future__ import annotations

import json
import sys

import click

quiet_option = click.option("--quiet", "-q", is_flag=True, help="No progress bars or per-epoch lines.")


def echo_json(obj) -> None:
    click.echo(json.dumps(obj, indent=2, sort_keys=False))


def show_progress(quiet: bool) -> bool:
    """Progress bars only on a terminal and when not asked to be quiet."""
    return not quiet and sys.stderr.isatty()
