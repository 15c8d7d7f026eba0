"""The ``spherex-simulate`` command: parse options, then call `spherex.simulator.simulate`."""

from __future__ import annotations

__all__ = ["main"]

import logging
from pathlib import Path
from typing import Any

import click

from ..instrument.detectors import ARRAY_SIZE, DETECTORS
from .simulate import MIN_SIZE, simulate


class _OneLineErrorCommand(click.Command):
    """A command whose usage errors print as the single line ``Error: ...``, without the usage text."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as err:
            err.ctx = None
            raise


def _usage_error(message: str) -> click.ClickException:
    """Return a usage error found after parsing: one line ``Error: ...``, exit status 2 as click's own."""
    error = click.ClickException(message)
    error.exit_code = 2
    return error


def _parse_detectors(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> list[int] | None:
    """Turn ``--detectors 1,4 --detectors 5`` into ``[1, 4, 5]``."""
    if not value:
        return None
    valid = {info.id for info in DETECTORS}
    ids = []
    for part in ",".join(value).split(","):
        try:
            ids.append(int(part))
        except ValueError:
            raise click.BadParameter(f"{part.strip()!r} is not a detector id (1-6)", ctx, param) from None
        if ids[-1] not in valid:
            raise click.BadParameter(f"{ids[-1]} is not a detector id (1-6)", ctx, param)
    return ids


@click.command(cls=_OneLineErrorCommand, context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("outdir", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--exposures", type=click.IntRange(min=1), default=2, show_default=True, help="Number of exposures."
)
@click.option(
    "--start-exposure",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Id of the first exposure.",
)
@click.option(
    "--size",
    type=click.IntRange(min=MIN_SIZE),
    default=ARRAY_SIZE,
    show_default=True,
    help="Pixels per side of each array; an array always covers ~3.5 deg (smaller arrays, coarser pixels).",
)
@click.option(
    "--seed",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Survey seed: the same seed gives the same sky, pointings and bit-identical pixels.",
)
@click.option(
    "--workers", "-j", type=click.IntRange(min=1), default=1, show_default=True, help="Worker processes."
)
@click.option(
    "--detectors",
    multiple=True,
    callback=_parse_detectors,
    metavar="IDS",
    help="Detector arrays to simulate, comma-separated (e.g. 1,4); all six by default.",
)
@click.option(
    "--format",
    "file_format",
    type=click.Choice(["simulated", "level2"]),
    default="simulated",
    show_default=True,
    help="simulated: raws and darks for ingest-simulated; level2: calibrated Level-2 spectral images in "
    "IRSA's layout and names (level2_<OBSID>D<n>_spx_l2b-v20-<date>.fits) for ingest-spherex.",
)
@click.option(
    "--deep-field",
    nargs=2,
    type=float,
    metavar="RA DEC",
    default=None,
    help="Level-2 only: point 3 x --deep-field-steps exposures over a patch of sources of known spectra "
    "at RA DEC (ICRS degrees), so that each source is seen through every band of every array "
    "(0.75-5 micron).",
)
@click.option(
    "--deep-field-steps",
    type=click.IntRange(min=1),
    default=16,
    show_default=True,
    help="Pointings along the wavelength axis of each array in the deep field.",
)
@click.option(
    "--deep-field-sources",
    type=click.IntRange(min=1),
    default=8,
    show_default=True,
    help="Sources of known spectra in the deep field (continua, 3.05 micron ice, 3.3 micron PAH).",
)
@click.option(
    "--deep-field-neighbours",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Extra sources 0.5, 1, 1.5, 2 and 3 pixels (in turn) from the deep-field sources: blends.",
)
@click.option(
    "--neighbour-flux-ratio",
    nargs=2,
    type=click.FloatRange(min=0, min_open=True),
    default=(0.3, 1.0),
    show_default=True,
    metavar="LOW HIGH",
    help="Flux of a neighbour over its deep-field source's, log-uniform between LOW and HIGH.",
)
@click.option(
    "--targets-without-neighbours",
    is_flag=True,
    help="With --targets: list the deep-field sources only, not their neighbours (--truth has all).",
)
@click.option(
    "--truth",
    type=click.Path(dir_okay=False, path_type=Path),
    help="With --deep-field: write the true flux density of each source on each image (ECSV).",
)
@click.option(
    "--targets",
    type=click.Path(dir_okay=False, path_type=Path),
    help="With --deep-field: write the source list (name, ra, dec, kind; CSV) for butler ingest-targets.",
)
@click.option("--progress", is_flag=True, help="Show a progress bar.")
@click.pass_context
def main(ctx: click.Context, outdir: Path, progress: bool, file_format: str, **kwargs: Any) -> None:
    """Write simulated SPHEREx exposures and dark frames to OUTDIR.

    For each exposure and detector array: sim_exposure_{exposure:06d}_array_{detector}.fits (sky, stars,
    dark current and noise, in electron/s, with variance, flags and WCS) and
    sim_exposure_{exposure:06d}_array_{detector}_dark_current.fits (the matching dark frame).
    """
    deep_field = kwargs.pop("deep_field")
    deep_options = {
        "steps": kwargs.pop("deep_field_steps"),
        "sources": kwargs.pop("deep_field_sources"),
        "truth": kwargs.pop("truth"),
        "targets": kwargs.pop("targets"),
        "neighbours": kwargs.pop("deep_field_neighbours"),
        "neighbour_flux_ratio": tuple(kwargs.pop("neighbour_flux_ratio")),
        "targets_with_neighbours": not kwargs.pop("targets_without_neighbours"),
    }
    given = {
        name
        for name in (
            "deep_field_steps",
            "deep_field_sources",
            "deep_field_neighbours",
            "neighbour_flux_ratio",
            "targets_without_neighbours",
            "truth",
            "targets",
            "exposures",
        )  # fmt: skip
        if ctx.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT
    }
    if deep_field is None and given - {"exposures"}:
        option = "--" + sorted(given - {"exposures"})[0].replace("_", "-")
        raise _usage_error(f"{option} needs --deep-field RA DEC")
    if deep_field is not None and file_format != "level2":
        raise _usage_error("--deep-field needs --format level2")
    if deep_field is not None and "exposures" in given:
        raise _usage_error("--exposures does not apply to --deep-field; set --deep-field-steps")
    if progress:
        from lsst.daf.butler.cli.progress import ClickProgressHandler
        from lsst.daf.butler.progress import Progress

        # Progress bars show for loggers enabled at INFO (see lsst.daf.butler.progress.Progress).
        Progress.set_handler(ClickProgressHandler())
        logging.getLogger("spherex.simulator").setLevel(logging.INFO)
    try:
        if deep_field is not None:
            from .deep_field import simulate_deep_field

            kwargs.pop("workers")
            kwargs.pop("exposures")
            paths = simulate_deep_field(outdir, *deep_field, **deep_options, **kwargs)
        elif file_format == "level2":
            from .level2 import simulate_level2

            kwargs.pop("workers")
            paths = simulate_level2(outdir, **kwargs)
        else:
            paths = simulate(outdir, **kwargs)
    except (ValueError, LookupError, OSError) as err:
        raise click.ClickException(str(err)) from err
    click.echo(f"Wrote {len(paths)} simulated files to {paths[0].parent}")
    for option in ("truth", "targets"):
        if deep_options[option] is not None:
            click.echo(f"Wrote the {option} to {deep_options[option]}")
