"""``butler ingest-targets``: parse arguments, call `spherex.script.ingest.targets`."""

from __future__ import annotations

__all__ = ["ingest_targets"]

import click
from lsst.daf.butler.cli.opt import repo_argument
from lsst.daf.butler.cli.utils import ButlerCommand

from ... import script


@click.command(cls=ButlerCommand, short_help="Ingest a target catalogue for forced spectrophotometry.")
@repo_argument(required=True)
@click.argument("catalogue", type=click.Path(dir_okay=False))
@click.option(
    "--run",
    default=script.TARGET_RUN,
    show_default=True,
    help="RUN collection of the target catalogues.",
)
def ingest_targets(repo: str, catalogue: str, run: str) -> None:
    """Ingest CATALOGUE (CSV: name, ra, dec in degrees, optional kind) into REPO.

    Targets are stored one catalogue per common sky pixel (healpix7), dataset type spectroTargets, so
    that the Spectrophotometry pipeline measures them on every Level-2 image that overlaps them.  A bad
    row is reported with the file and row number and nothing is registered.
    """
    try:
        report = script.ingest_targets(repo, catalogue, run=run)
    except (ValueError, OSError) as err:
        raise click.ClickException(str(err)) from None
    click.echo(report.summary())
