"""Ingest simulated SPHEREx raws and dark calibrations into a Butler repository.

The work is shared with ``ingest-spherex``: `~spherex.script.ingest.sources` finds the files,
`~spherex.script.ingest.metadata` reads them one by one, `~spherex.script.ingest.exposures` writes whole
exposures, `~spherex.script.ingest.transfer` moves files, `~spherex.script.ingest.report` says what
happened.
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_REGEX",
    "INGEST_TYPES",
    "FailedFile",
    "IngestReport",
    "check_run_name",
    "database_problem",
    "ingest_simulated",
    "repository_errors",
    "writeable_butler",
]

import re
from collections.abc import Sequence

from lsst.daf.butler import Butler, CollectionType
from lsst.daf.butler.progress import Progress
from lsst.resources import ResourcePath

from ...instrument import FileMetadataError, ObservationMetadata, SimulatorInstrument
from ...instrument.raw_file_check import check_raw_file
from .darks import ingest_darks
from .exposures import ingest_exposures
from .metadata import read_observations
from .report import FailedFile, IngestReport
from .repository import (
    check_run_name,
    compile_regex,
    database_problem,
    open_for_ingest,
    repository_errors,
    writeable_butler,
)
from .sources import find_files

DEFAULT_REGEX = r"sim_exposure_(\d+)_array_(\d).fits"
"""Selects simulated raw files; the groups are the exposure and detector ids."""

INGEST_TYPES = ("rawexp", "dark")
"""Dataset types ``ingest-simulated`` can ingest."""

RAW_DIMENSIONS = ("instrument", "exposure", "detector")
DARK_DIMENSIONS = ("instrument", "detector")
STORAGE_CLASS = "SPHERExImage"


def ingest_simulated(
    repo: str | Butler,
    locations: Sequence[str],
    regex: str = DEFAULT_REGEX,
    ingest_type: str = "rawexp",
    run: str | None = None,
    transfer: str | None = "auto",
) -> IngestReport:
    """Ingest simulated SPHEREx files into a repository.

    Parameters
    ----------
    repo : `str` or `lsst.daf.butler.Butler`
        Repository (path or URI) or a writeable Butler.
    locations : `~collections.abc.Sequence` [`str`]
        Files and directories (searched recursively) to ingest; local paths or URIs.
    regex : `str`, optional
        Regular expression searched for in each file name; files that do not match are ignored.  If it
        has two groups they are the exposure and detector ids (otherwise the headers' EXPID and DETECTOR
        are used).
    ingest_type : `str`, optional
        ``rawexp`` (raw science exposures) or ``dark`` (dark-current calibrations).
    run : `str`, optional
        Collection to ingest into; default ``{ingest_type}r``.  For raws it is a RUN collection.  For darks
        it is the CALIBRATION collection the darks are certified in, each with a validity range from its
        DATE-OBS to the next dark's; the files themselves go to RUN collections ``{run}/{obs_id}``.
    transfer : `str` or `None`, optional
        Transfer mode: ``auto``, ``copy``, ``symlink``, ``relsymlink``, ``hardlink``, ``move`` or
        ``direct``.  With ``move`` a source file is removed only after its dataset is committed.

    Returns
    -------
    report : `IngestReport`
        What landed, what was already there, and what failed with its reason.

    Raises
    ------
    ValueError
        Raised if ``ingest_type``, ``regex`` or ``run`` is invalid.
    FileNotFoundError
        Raised if there is no repository at ``repo``.
    PermissionError
        Raised if the repository (or the Butler given) is read-only.
    OSError
        Raised if the registry database cannot be written for another reason (e.g. locked).

    Notes
    -----
    The datasets of one exposure (raws) or one dark epoch land in one transaction with their dimension
    records, or not at all.  A file that cannot be read, is truncated, lacks a plane (see
    `spherex.instrument.check_raw_file`) or a required header keyword is reported by name and left out;
    the good files of its exposure land, as they would if it were missing (the exposure record from
    their headers), and ingesting it again once mended adds it to its exposure.  Files already ingested
    are skipped, so running the same ingest again adds nothing.

    A process killed at any moment leaves whole exposures or nothing in the registry, and every dataset
    in the registry has its file; files copied for exposures whose transaction never committed may be
    left in the datastore directory, unregistered, and are replaced when the ingest is run again.  With
    ``transfer="move"`` files are hard-linked (or copied, across file systems) into the datastore and the
    sources removed only after the transaction has committed, so a killed move loses nothing; running
    it again removes the sources of datasets that landed, once their stored copies are found identical.
    Where a hard link is refused (``fs.protected_hardlinks``), the move is a copy, with the same rule.

    Local paths are taken literally (a directory named ``%2E%2E`` is not ``..``); only regular files are
    read; directory links are followed only within their location; a directory that cannot be read, a
    location in which no file name matches ``regex``, and a source that changed between its check and
    its transfer are each reported as failures (`spherex.script.ingest.sources`).
    """
    if ingest_type not in INGEST_TYPES:
        raise ValueError(f"Unknown ingest type {ingest_type!r}; choose one of {', '.join(INGEST_TYPES)}.")
    pattern = compile_regex(regex)
    run = run or f"{ingest_type}r"
    # Before anything is registered: a refused name leaves no collection behind.
    check_run_name(run)
    instrument = SimulatorInstrument()
    butler, dataset_type = open_for_ingest(
        repo,
        instrument,
        ingest_type,
        RAW_DIMENSIONS if ingest_type == "rawexp" else DARK_DIMENSIONS,
        STORAGE_CLASS,
        is_calibration=ingest_type == "dark",
    )
    report = IngestReport(dataset_type=ingest_type, run=run)
    progress = Progress(__name__)
    on_sky = ingest_type == "rawexp"

    def identify(uri: ResourcePath, name: str) -> tuple[str, int | None]:
        ids = _ids_from_name(uri, pattern)
        return run, ids[0] if ids else None

    def read(uri: ResourcePath, name: str) -> ObservationMetadata:
        exposure, detector = _ids_from_name(uri, pattern) or (None, None)
        with uri.as_local() as local:
            # Structure first: a truncated file or a header claiming more pixels than the file holds
            # fails here, before anything reads its planes.
            primary, image = check_raw_file(local.ospath, name=name)
        return ObservationMetadata.from_headers(
            name, primary, image, exposure=exposure, detector=detector, on_sky=on_sky
        )

    files = find_files(locations, pattern, report)
    groups = read_observations(files, identify, read, progress, report)
    groups.prune(report)
    by_exposure = groups.by_run.get(run, {})
    formatter = instrument.getRawFormatter({})
    # Raws go into a RUN; darks into a CALIBRATION collection, certified by validity range.
    collection_type, ingest = (
        (CollectionType.RUN, ingest_exposures)
        if ingest_type == "rawexp"
        else (CollectionType.CALIBRATION, ingest_darks)
    )
    butler.collections.register(run, collection_type)
    ingest(
        butler,
        by_exposure,
        dataset_type,
        run,
        formatter,
        transfer,
        groups.sources,
        progress,
        report,
        instrument=instrument.getName(),
    )
    return report


def _ids_from_name(uri: ResourcePath, pattern: re.Pattern) -> tuple[int, int] | None:
    """Return the exposure and detector ids the regex's two groups find in a file name, if it has them."""
    match = pattern.search(uri.basename())
    if match is None or pattern.groups < 2:
        return None
    try:
        return int(match.group(1)), int(match.group(2))
    except ValueError:
        raise FileMetadataError(
            uri.basename(), f"--regex groups {match.group(1)!r}, {match.group(2)!r} are not integer ids"
        ) from None
