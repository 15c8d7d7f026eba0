"""Ingest real SPHEREx Level-2 spectral images (as IRSA publishes them) into a Butler repository."""

from __future__ import annotations

__all__ = [
    "LEVEL2_DATASET_TYPE",
    "LEVEL2_REGEX",
    "LEVEL2_STORAGE_CLASS",
    "default_level2_run",
    "ingest_spherex",
]

from collections.abc import Sequence

from lsst.daf.butler import Butler, CollectionType
from lsst.daf.butler.progress import Progress
from lsst.resources import ResourcePath

from ...instrument import (
    LEVEL2_REGEX,
    FileMetadataError,
    Level2FileName,
    ObservationMetadata,
    SPHERExInstrument,
    read_level2_observation,
)
from .exposures import ingest_exposures
from .metadata import read_observations
from .report import IngestReport
from .repository import check_run_name, compile_regex, open_for_ingest
from .simulated import RAW_DIMENSIONS
from .sources import find_files

LEVEL2_DATASET_TYPE = "spectralImage"
"""Dataset type of Level-2 spectral images (dimensions instrument, exposure, detector)."""

LEVEL2_STORAGE_CLASS = "SPHERExLevel2Image"
"""Storage class of Level-2 spectral images."""


def default_level2_run(version: int) -> str:
    """Return the RUN collection of one pipeline version's files.

    Parameters
    ----------
    version : `int`
        Pipeline version from the file name (``l2b-v20`` -> 20).

    Returns
    -------
    run : `str`
        ``SPHEREx/l2b-v<version>``, e.g. ``SPHEREx/l2b-v20``.
    """
    return f"SPHEREx/l2b-v{version}"


def ingest_spherex(
    repo: str | Butler,
    locations: Sequence[str],
    regex: str = LEVEL2_REGEX,
    run: str | None = None,
    transfer: str | None = "auto",
) -> IngestReport:
    """Ingest SPHEREx Level-2 spectral images into a repository.

    Parameters
    ----------
    repo : `str` or `lsst.daf.butler.Butler`
        Repository (path or URI) or a writeable Butler.
    locations : `~collections.abc.Sequence` [`str`]
        Files and directories (searched recursively); local paths or URIs.
    regex : `str`, optional
        Selects files by name; the name must still be a Level-2 name (`Level2FileName`).
    run : `str`, optional
        RUN collection for every file; by default each pipeline version goes to its own RUN,
        `default_level2_run` (``SPHEREx/l2b-v20``), so that releases never collide.
    transfer : `str` or `None`, optional
        Transfer mode: ``auto``, ``copy``, ``symlink``, ``relsymlink``, ``hardlink``, ``move`` or
        ``direct``.

    Returns
    -------
    report : `IngestReport`
        What landed, what was already there, and what failed with its reason.

    Raises
    ------
    ValueError
        Raised if ``regex`` or ``run`` is invalid.
    FileNotFoundError
        Raised if there is no repository at ``repo``.
    PermissionError
        Raised if the repository (or the Butler given) is read-only.
    OSError
        Raised if the registry database cannot be written for another reason (e.g. locked).

    Notes
    -----
    Registers the ``SPHEREx`` instrument and the ``spectralImage`` dataset type.  Exposure ids come from
    the OBSID (`spherex.instrument.exposure_id_from_obsid`).  As for ``ingest-simulated``, an exposure's
    files (of one pipeline version) land in one transaction or not at all, files already ingested are
    skipped, and every bad file is reported by name with its problem.
    """
    pattern = compile_regex(regex)
    if run is not None:
        # Before anything is registered: a refused name leaves no collection behind.
        check_run_name(run)
    instrument = SPHERExInstrument()
    butler, dataset_type = open_for_ingest(
        repo, instrument, LEVEL2_DATASET_TYPE, RAW_DIMENSIONS, LEVEL2_STORAGE_CLASS
    )
    progress = Progress(__name__)
    formatter = instrument.getRawFormatter({})

    report = IngestReport(dataset_type=LEVEL2_DATASET_TYPE, run=run or "")
    files = find_files(locations, pattern, report)
    groups = read_observations(files, lambda uri, name: _identify(uri, name, run), _read, progress, report)
    groups.prune(report)
    runs = sorted(set(groups.by_run) | groups.failed_runs) or [run or default_level2_run(0)]
    report.run = ", ".join(runs)
    for run_name in sorted(groups.by_run):
        if not groups.by_run[run_name]:
            continue
        butler.collections.register(run_name, CollectionType.RUN)
        ingest_exposures(
            butler,
            groups.by_run[run_name],
            dataset_type,
            run_name,
            formatter,
            transfer,
            groups.sources,
            progress,
            report,
            instrument=instrument.getName(),
            has_simulated=False,
        )
    return report


def _identify(uri: ResourcePath, path: str, run: str | None) -> tuple[str, int]:
    """Return the RUN collection and exposure id a Level-2 file's name gives."""
    name = Level2FileName.parse(uri.basename())
    if name is None:
        raise FileMetadataError(
            path, "not a SPHEREx Level-2 file name (level2_<OBSID>D<n>_spx_l2b-v<N>-<date>.fits)"
        )
    try:
        exposure = name.exposure
    except ValueError as err:
        raise FileMetadataError(path, str(err)) from None
    return run or default_level2_run(name.version), exposure


def _read(uri: ResourcePath, path: str) -> ObservationMetadata:
    """Read a Level-2 file whose name `_identify` accepted."""
    name = Level2FileName.parse(uri.basename())
    if name is None:  # pragma: no cover - _identify refused it first
        raise FileMetadataError(path, "not a SPHEREx Level-2 file name")
    return read_level2_observation(uri, name)
