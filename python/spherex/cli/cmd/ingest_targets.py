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
@click.option(
    "--role",
    type=click.Choice(["target", "reference"]),
    default=None,
    help="Role of every row (default: the catalogue's role column, else target).  References are "
    "fitted with the targets they are near, so that they do not bias them, but get no spectrum.",
)
def ingest_targets(repo: str, catalogue: str, run: str, role: str | None) -> None:
    """Ingest CATALOGUE (CSV: name, ra, dec in degrees; optional kind, role, pmra, pmdec, epoch, parallax).

    Targets are stored one catalogue per common sky pixel (healpix7), dataset type spectroTargets, so
    that the Spectrophotometry pipeline measures them on every Level-2 image that overlaps them.  A bad
    row is reported with the file and row number and nothing is registered.
    """
    try:
        report = script.ingest_targets(repo, catalogue, run=run, role=role)
    except (ValueError, OSError) as err:
        raise click.ClickException(str(err)) from None
    click.echo(report.summary())
