"""The ``spherex-spectrum`` command: parse options, then call `spherex.script.spectrum.measure_spectra`."""

from __future__ import annotations

__all__ = ["main"]

import logging
from pathlib import Path

import click


class _OneLineErrorCommand(click.Command):
    """A command whose usage errors print as the single line ``Error: ...``, without the usage text."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as err:
            err.ctx = None
            raise


@click.command(cls=_OneLineErrorCommand, context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("repo")
@click.option("--ra", type=float, default=None, help="Right ascension of one position (ICRS degrees).")
@click.option("--dec", type=float, default=None, help="Declination of one position (ICRS degrees).")
@click.option("--name", default=None, help="Name of that position's target (files <name>.ecsv/.png).")
@click.option(
    "--targets",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="CSV catalogue of targets (name, ra, dec, optional kind), instead of --ra/--dec.",
)
@click.option(
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("spectra"),
    show_default=True,
    help="Directory for <name>.ecsv and <name>.png.",
)
@click.option(
    "--collections",
    default="SPHEREx/*",
    show_default=True,
    help="Collections (comma-separated, globs allowed) holding the Level-2 images.",
)
@click.option(
    "--truth",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Truth table of spherex-simulate (--truth), overlaid on the plots and added as flux_true.",
)
def main(
    repo: str,
    ra: float | None,
    dec: float | None,
    name: str | None,
    targets: Path | None,
    output: Path,
    collections: str,
    truth: Path | None,
) -> None:
    """Measure the spectrum of a position (--ra, --dec) or of every target of a catalogue in REPO.

    The targets are stored in REPO (RUN spectra/targets/<time>), the Spectrophotometry pipeline runs on
    every Level-2 image that covers them (RUN spectra/<time>), and each target's spectrum is written to
    OUTPUT as <name>.ecsv (micron, microJy; flagged measurements kept with used=False) and <name>.png.
    Once finished, both runs go to the front of the CHAINED collection spectra, which so shows the
    latest spectra; the runs of a call that was killed are removed by the next call.
    """
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # Harmless here: no EUPS (package versions come from pip), no pandas (tables are astropy's); an
    # empty quantum graph is reported below in one line, not as the graph builder's debugging recipe.
    for logger in (
        "lsst.utils.packages",
        "lsst.daf.butler._storage_class",
        "lsst.pipe.base.quantum_graph_builder",
    ):
        logging.getLogger(logger).setLevel(logging.CRITICAL)
    from ..script.spectrum import measure_spectra

    try:
        result = measure_spectra(
            repo,
            ra=ra,
            dec=dec,
            name=name,
            targets=targets,
            output=output,
            collections=[c.strip() for c in collections.split(",") if c.strip()],
            truth=truth,
        )
    except (ValueError, LookupError, OSError) as err:
        raise click.ClickException(str(err)) from None
    for target, spectrum in sorted(result.spectra.items()):
        used = int(spectrum["used"].sum())
        click.echo(f"{target}: {len(spectrum)} measurements ({used} used) -> {output / (target + '.ecsv')}")
    click.echo(f"Spectra of {len(result.spectra)} target(s) in run {result.output_run}; files in {output}")
