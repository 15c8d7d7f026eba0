"""Ingest real SPHEREx Level-2 spectral images (as IRSA publishes them) into a Butler repository."""

from __future__ import annotations

__all__ = [
    "LEVEL2_DATASET_TYPE",
    "LEVEL2_REGEX",
    "LEVEL2_STORAGE_CLASS",
    "default_level2_run",
    "ingest_spherex",
]

import re
from collections import defaultdict
from collections.abc import Sequence

from lsst.daf.butler import Butler, CollectionType, DatasetType
from lsst.daf.butler.progress import Progress
from lsst.resources import ResourcePath

from ..instrument import (
    LEVEL2_REGEX,
    FileMetadataError,
    Level2FileName,
    ObservationMetadata,
    SPHERExInstrument,
    read_level2_observation,
)
from .ingest_simulated import (
    RAW_DIMENSIONS,
    FailedFile,
    IngestReport,
    _drop_duplicates,
    _drop_failed_exposures,
    _find_files,
    _ingest_raws,
    repository_errors,
    writeable_butler,
)

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
    try:
        pattern = re.compile(regex)
    except re.error as err:
        raise ValueError(f"Invalid --regex {regex!r}: {err}") from None
    with repository_errors(repo):
        butler = writeable_butler(repo)
        instrument = SPHERExInstrument()
        instrument.register(butler.registry)
        dataset_type = DatasetType(
            LEVEL2_DATASET_TYPE, RAW_DIMENSIONS, LEVEL2_STORAGE_CLASS, universe=butler.dimensions
        )
        butler.registry.registerDatasetType(dataset_type)
    progress = Progress(__name__)
    formatter = instrument.getRawFormatter({})

    scratch = IngestReport(dataset_type=LEVEL2_DATASET_TYPE, run=run or "")
    files = _find_files(locations, pattern, scratch)
    by_run: dict[str, dict[int, list[ObservationMetadata]]] = defaultdict(lambda: defaultdict(list))
    failed_exposures: dict[str, set[int]] = defaultdict(set)
    for uri in progress.wrap(files, desc="Reading headers"):
        _read_one(uri, run, by_run, failed_exposures, scratch)

    runs = sorted(set(by_run) | set(failed_exposures)) or [run or default_level2_run(0)]
    report = IngestReport(dataset_type=LEVEL2_DATASET_TYPE, run=", ".join(runs), failed=scratch.failed)
    for run_name in sorted(by_run):
        by_exposure = by_run[run_name]
        _drop_failed_exposures(by_exposure, failed_exposures[run_name], report)
        _drop_duplicates(by_exposure, report)
        butler.collections.register(run_name, CollectionType.RUN)
        _ingest_raws(
            butler,
            by_exposure,
            dataset_type,
            run_name,
            formatter,
            transfer,
            progress,
            report,
            instrument=instrument.getName(),
            has_simulated=False,
        )
    return report


def _read_one(
    uri: ResourcePath,
    run: str | None,
    by_run: dict[str, dict[int, list[ObservationMetadata]]],
    failed_exposures: dict[str, set[int]],
    report: IngestReport,
) -> None:
    """Read one file's name and headers into ``by_run``, or record why it failed."""
    name = Level2FileName.parse(uri.basename())
    path = uri.ospath if uri.scheme in ("", "file") else uri.geturl()
    if name is None:
        report.failed.append(
            FailedFile(path, "not a SPHEREx Level-2 file name (level2_<OBSID>D<n>_spx_l2b-v<N>-<date>.fits)")
        )
        return
    run_name = run or default_level2_run(name.version)
    try:
        exposure = name.exposure
    except ValueError as err:
        report.failed.append(FailedFile(path, str(err)))
        return
    try:
        by_run[run_name][exposure].append(read_level2_observation(uri, name))
    except FileMetadataError as err:
        report.failed.append(FailedFile(err.path, err.problem))
        failed_exposures[run_name].add(exposure)
