"""``butler`` subcommands provided by the spherex package (click layer only; the work is in ``script``)."""

from __future__ import annotations

__all__ = ["get_cli_subcommands"]

import click


def get_cli_subcommands() -> list[click.Command]:
    """Return this package's ``butler`` subcommands, for the ``butler.cli`` entry point.

    Returns
    -------
    commands : `list` [ `click.Command` ]
        The command-line subcommands provided by this package.
    """
    from . import cmd

    return [getattr(cmd, name) for name in cmd.__all__]
