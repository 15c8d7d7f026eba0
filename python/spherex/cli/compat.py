"""Options of the 2020 ``butler`` command line that daf_butler has since renamed.

The original README, which this package keeps working as written, runs
``butler query-collections DATA --flatten-chains subtractr``.  daf_butler replaced ``--flatten-chains``
with ``--chains FLATTEN``.  Plugins cannot redefine a daf_butler command (the ``butler`` loader refuses
duplicate names), so the old flag is added, hidden, to daf_butler's own command, as an alias.
"""

from __future__ import annotations

__all__ = ["add_flatten_chains_alias"]

import functools
from typing import Any

import click


def add_flatten_chains_alias() -> None:
    """Make ``butler query-collections --flatten-chains`` mean ``--chains FLATTEN`` (idempotent)."""
    from lsst.daf.butler.cli.cmd import query_collections

    if any(param.name == "flatten_chains" for param in query_collections.params):
        return
    original = query_collections.callback

    @functools.wraps(original)
    def callback(*args: Any, flatten_chains: bool = False, **kwargs: Any) -> Any:
        if flatten_chains:
            kwargs["chains"] = "FLATTEN"
        return original(*args, **kwargs)

    query_collections.params.append(
        click.Option(["--flatten-chains"], is_flag=True, hidden=True, help="Same as --chains FLATTEN.")
    )
    query_collections.callback = callback
