"""The ``spherex-archive`` command: parse options, then call `spherex.script.archive_find`."""

from __future__ import annotations

__all__ = ["main"]

import sys
from pathlib import Path

import click

from .spectrum import _OneLineErrorCommand


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """SPHEREx files in IRSA's archive."""


@main.command(cls=_OneLineErrorCommand)
@click.option("--ra", type=float, default=None, help="Right ascension (ICRS degrees).")
@click.option("--dec", type=float, default=None, help="Declination (ICRS degrees).")
@click.option(
    "--targets",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="CSV catalogue of targets (name, ra, dec), instead of --ra/--dec.",
)
@click.option("--radius", type=float, default=None, help="Also files within this many arcsec (default: 0).")
@click.option("--band", type=click.Choice([f"D{n}" for n in range(1, 7)], case_sensitive=False), default=None)
@click.option("--release", default=None, help="Data release, e.g. qr2 (default: all).")
@click.option("--tap-url", default=None, help="TAP service (default: $SPHEREX_TAP_URL or IRSA's).")
@click.option("--s3", is_flag=True, help="URLs in IRSA's public S3 mirror (s3://nasa-irsa-spherex/...).")
@click.option(
    "--format", "output_format", type=click.Choice(["table", "csv"]), default="table", show_default=True
)
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write here.")
def find(
    ra: float | None,
    dec: float | None,
    targets: Path | None,
    radius: float | None,
    band: str | None,
    release: str | None,
    tap_url: str | None,
    s3: bool,
    output_format: str,
    output: Path | None,
) -> None:
    """List the Level-2 files covering a position or each target of a catalogue."""
    from astropy.table import Table

    from ..script.archive_find import ArchiveQueryError, find_level2_files

    if (targets is None) == (ra is None or dec is None):
        raise click.UsageError("give --ra and --dec, or --targets")
    try:
        if targets is not None:
            table = Table.read(targets, format="ascii.csv")
            missing = {"name", "ra", "dec"} - set(table.colnames)
            if missing:
                raise click.UsageError(f"{targets}: no column {', '.join(sorted(missing))}")
            positions = [(str(r["name"]), float(r["ra"]), float(r["dec"])) for r in table]
        else:
            positions = [(f"{ra:.5f}{dec:+.5f}", float(ra), float(dec))]
        files = find_level2_files(
            positions,
            radius=None if radius is None else radius / 3600.0,
            band=band,
            release=release,
            tap_url=tap_url,
            s3=s3,
        )
    except (ArchiveQueryError, ValueError, OSError) as err:
        raise click.ClickException(str(err)) from None
    if output_format == "csv":
        files.write(output if output is not None else sys.stdout, format="ascii.csv", overwrite=True)
    else:
        lines = files.pformat(max_lines=-1, max_width=-1)
        if output is not None:
            output.write_text("\n".join(lines) + "\n")
        else:
            click.echo("\n".join(lines))
