"""``butler`` subcommands of the spherex package: parse arguments, call `spherex.script`."""

from __future__ import annotations

__all__ = ["ingest_simulated", "ingest_spherex"]

import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import Any

import click
from lsst.daf.butler.cli.opt import locations_argument, regex_option, transfer_option
from lsst.daf.butler.cli.utils import ButlerCommand, MWArgumentDecorator

from ... import script

# daf_butler's shared ``repo_argument`` keeps the help text of the last command that passed one (pipe_base
# passes "Path or alias for the butler repository." and is loaded before us), so it would show up in our
# descriptions; this package's commands use their own REPO argument with daf_butler's wording.
_repo_argument = MWArgumentDecorator(
    "repo",
    help="REPO is the URI or path to an existing data repository root or configuration file.",
)

_IMPORT_LOGGER = "lsst.daf.butler.direct_butler._direct_butler"
"""daf_butler's logger that says "Importing N datasets into Butler(...)" on every ``butler.ingest``."""


def _enable_progress_logging() -> None:
    # Progress bars (butler --progress) show only for loggers enabled at INFO; "lsst" is set up by the
    # butler CLI, this package's logger is not.
    logger = logging.getLogger("spherex")
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)


@contextlib.contextmanager
def _quiet_dataset_import_log() -> Iterator[None]:
    """Hide daf_butler's internal "Importing N datasets" INFO line for the duration of an ingest.

    The summary line of the command says the same thing for the user.  A level set explicitly
    (``butler --log-level lsst.daf.butler.direct_butler=DEBUG``) is left alone.
    """
    logger = logging.getLogger(_IMPORT_LOGGER)
    if logger.level != logging.NOTSET:
        yield
        return
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(logging.NOTSET)


def _report(ingest: Callable[..., script.IngestReport], *args: Any, **kwargs: Any) -> None:
    """Run an ingest function; print each failed file, then the summary; exit 1 if any file failed.

    Errors that stop the whole ingest (bad option, missing or read-only repository) become one line.
    """
    _enable_progress_logging()
    try:
        with _quiet_dataset_import_log():
            report = ingest(*args, **kwargs)
    except (ValueError, OSError) as err:
        raise click.ClickException(str(err)) from None
    for failure in report.failed:
        click.echo(f"error: {failure}", err=True)
    click.echo(report.summary())
    if not report.ok:
        raise click.exceptions.Exit(1)


@click.command(cls=ButlerCommand, short_help="Ingest simulated SPHEREx raws or darks.")
@_repo_argument(required=True)
@locations_argument(help="LOCATIONS are files or directories (searched recursively) to ingest.")
@regex_option(
    default=script.DEFAULT_REGEX,
    show_default=True,
    help="Regular expression searched for in file names; two groups give the exposure and detector ids.",
)
@click.option(
    "--ingest-type",
    type=click.Choice(script.INGEST_TYPES),
    default="rawexp",
    show_default=True,
    help="rawexp: raw exposures into a RUN collection; dark: dark calibrations certified by validity range.",
)
@click.option(
    "--run",
    default=None,
    help="Collection to ingest into. Default: {ingest_type}r, i.e. rawexpr or darkr (CALIBRATION for darks).",
)
@transfer_option(default="auto", show_default=True)
def ingest_simulated(
    repo: str, locations: tuple[str, ...], regex: str, ingest_type: str, run: str | None, transfer: str
) -> None:
    """Ingest files made by ``spherex-simulate`` into REPO.

    Each exposure's files land together or not at all; bad files are named with the reason, and the
    command exits non-zero if any failed.  Files already ingested are skipped.
    """
    _report(
        script.ingest_simulated,
        repo,
        locations,
        regex=regex,
        ingest_type=ingest_type,
        run=run,
        transfer=transfer,
    )


@click.command(cls=ButlerCommand, short_help="Ingest SPHEREx Level-2 spectral images from IRSA.")
@_repo_argument(required=True)
@locations_argument(
    required=False, help="LOCATIONS are files or directories (searched recursively), local or URLs."
)
@regex_option(
    default=script.LEVEL2_REGEX,
    show_default=True,
    help="Regular expression selecting files by name; they must be named as IRSA names Level-2 images.",
)
@click.option(
    "--run",
    default=None,
    help="RUN collection for all files. Default: one per pipeline version, SPHEREx/l2b-v<N> from the names.",
)
@click.option(
    "--from-archive",
    "from_archive",
    type=click.Path(dir_okay=False, exists=True),
    default=None,
    help="CSV table with a 'url' column (spherex-archive find --format csv): register those files "
    "where they are (--transfer direct unless another is given).",
)
@transfer_option(default="auto", show_default=True)
def ingest_spherex(
    repo: str,
    locations: tuple[str, ...],
    regex: str,
    run: str | None,
    from_archive: str | None,
    transfer: str,
) -> None:
    """Ingest SPHEREx Level-2 spectral images (level2_<OBSID>D<n>_spx_l2b-v<N>-<date>.fits) into REPO.

    Exposure ids come from the OBSID; each exposure's files land together or not at all; bad files are
    named with the reason, and the command exits non-zero if any failed.  Files already ingested are
    skipped.  Archive files (https://, s3://) registered with ``--transfer direct`` stay where they are:
    only their headers are read, by byte ranges.
    """
    found = list(locations)
    if from_archive is not None:
        try:
            found += script.archive_urls(from_archive)
        except ValueError as err:
            raise click.ClickException(str(err)) from None
        if transfer == "auto":
            transfer = "direct"
    if not found:
        raise click.UsageError("give LOCATIONS or --from-archive")
    _report(script.ingest_spherex, repo, found, regex=regex, run=run, transfer=transfer)
