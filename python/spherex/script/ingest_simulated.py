"""Ingest simulated SPHEREx raws and dark calibrations into a Butler repository."""

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

import contextlib
import filecmp
import logging
import os
import re
import warnings
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import sqlalchemy.exc
from astropy.utils.exceptions import AstropyWarning
from erfa import ErfaWarning
from lsst.daf.butler import (
    Butler,
    ButlerConfig,
    CollectionType,
    DatasetRef,
    DatasetType,
    FileDataset,
    Timespan,
)
from lsst.daf.butler.progress import Progress
from lsst.daf.butler.registry.interfaces import ReadOnlyDatabaseError
from lsst.resources import ResourcePath
from lsst.sphgeom import ConvexPolygon

from ..instrument import FileMetadataError, ObservationMetadata, SimulatorInstrument
from ..instrument.raw_file_check import check_raw_file

_LOG = logging.getLogger(__name__)

DEFAULT_REGEX = r"sim_exposure_(\d+)_array_(\d).fits"
"""Selects simulated raw files; the groups are the exposure and detector ids."""

INGEST_TYPES = ("rawexp", "dark")
"""Dataset types ``ingest-simulated`` can ingest."""

RAW_DIMENSIONS = ("instrument", "exposure", "detector")
DARK_DIMENSIONS = ("instrument", "detector")
STORAGE_CLASS = "SPHERExImage"


@dataclass(frozen=True)
class FailedFile:
    """A file that was not ingested, and why."""

    path: str
    reason: str

    def __str__(self) -> str:
        # One line: some reasons quote multi-line messages (wcslib's, for instance).
        return f"{self.path}: {' '.join(self.reason.split())}"


@dataclass
class IngestReport:
    """What one ``ingest-simulated`` call did."""

    dataset_type: str
    run: str
    ingested: list[str] = field(default_factory=list)
    """Files whose datasets landed in this call."""
    already_present: list[str] = field(default_factory=list)
    """Files whose datasets were already in the repository (nothing was added for them)."""
    exposures: set[int] = field(default_factory=set)
    """Exposures (raws) or dark epochs whose datasets landed in this call."""
    failed: list[FailedFile] = field(default_factory=list)
    """Files that did not land, each with its reason."""

    @property
    def ok(self) -> bool:
        """`True` if no file failed."""
        return not self.failed

    def summary(self) -> str:
        """One line a person can read."""
        unit = "dark epochs" if self.dataset_type == "dark" else "exposures"
        line = (
            f"Ingested {len(self.ingested)} {self.dataset_type} files ({len(self.exposures)} {unit}) "
            f"into {self.run}"
        )
        if self.already_present:
            line += f"; {len(self.already_present)} already present, nothing added for them"
        line += f"; {len(self.failed)} failed."
        return line


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
    records, or not at all: a file that cannot be read, is truncated, lacks a plane (see
    `spherex.instrument.check_raw_file`) or a required header keyword fails its whole exposure, and is
    reported by name; other exposures are ingested.  Files already ingested are skipped, so running the
    same ingest again adds nothing.

    A process killed at any moment leaves whole exposures or nothing in the registry, and every dataset
    in the registry has its file; files copied for exposures whose transaction never committed may be
    left in the datastore directory, unregistered, and are replaced when the ingest is run again.  With
    ``transfer="move"`` files are hard-linked (or copied, across file systems) into the datastore and the
    sources removed only after the transaction has committed, so a killed move loses nothing; running
    it again removes the sources of datasets that landed, once their stored copies are found identical.
    """
    if ingest_type not in INGEST_TYPES:
        raise ValueError(f"Unknown ingest type {ingest_type!r}; choose one of {', '.join(INGEST_TYPES)}.")
    try:
        pattern = re.compile(regex)
    except re.error as err:
        raise ValueError(f"Invalid --regex {regex!r}: {err}") from None
    run = run or f"{ingest_type}r"
    check_run_name(run)
    with repository_errors(repo):
        butler = writeable_butler(repo)
        instrument = SimulatorInstrument()
        instrument.register(butler.registry)
        dataset_type = DatasetType(
            ingest_type,
            RAW_DIMENSIONS if ingest_type == "rawexp" else DARK_DIMENSIONS,
            STORAGE_CLASS,
            universe=butler.dimensions,
            isCalibration=ingest_type == "dark",
        )
        butler.registry.registerDatasetType(dataset_type)
    report = IngestReport(dataset_type=ingest_type, run=run)
    progress = Progress(__name__)

    files = _find_files(locations, pattern, report)
    observations, failed_exposures = _read_metadata(files, pattern, ingest_type == "rawexp", progress, report)
    by_exposure: dict[int, list[ObservationMetadata]] = defaultdict(list)
    for obs in observations:
        by_exposure[obs.exposure].append(obs)
    _drop_failed_exposures(by_exposure, failed_exposures, report)
    _drop_duplicates(by_exposure, report)

    formatter = instrument.getRawFormatter({})
    transfer = _Transfer.choose(
        butler, transfer, [obs.path for group in by_exposure.values() for obs in group]
    )
    if ingest_type == "rawexp":
        butler.collections.register(run, CollectionType.RUN)
        _ingest_raws(butler, by_exposure, dataset_type, run, formatter, transfer, progress, report)
    else:
        butler.collections.register(run, CollectionType.CALIBRATION)
        _ingest_darks(butler, by_exposure, dataset_type, run, formatter, transfer, progress, report)
    return report


def writeable_butler(repo: str | Butler) -> Butler:
    """Return a writeable Butler for a repository path or URI, or check that a given Butler is.

    Parameters
    ----------
    repo : `str` or `lsst.daf.butler.Butler`
        Repository, or a Butler on it.

    Returns
    -------
    butler : `lsst.daf.butler.Butler`
        A writeable Butler.

    Raises
    ------
    PermissionError
        Raised if ``repo`` is a Butler opened read-only.
    FileNotFoundError
        Raised if there is no repository at ``repo``.
    """
    if isinstance(repo, Butler):
        if not repo.isWriteable():
            raise PermissionError(
                f"{_describe(repo)}: the Butler is read-only (writeable=False); "
                "open it with Butler.from_config(repo, writeable=True) to ingest"
            )
        return repo
    root = ResourcePath(repo, forceDirectory=True)
    if root.isLocal:
        if not root.exists():
            raise FileNotFoundError(f"{repo}: no such repository; create it with 'butler create'")
        if not root.join("butler.yaml").exists():
            raise FileNotFoundError(f"{repo}: not a Butler repository (no butler.yaml)")
        _check_sqlite_writeable(repo, root)
    return Butler.from_config(repo, writeable=True)


def _check_sqlite_writeable(repo: str, root: ResourcePath) -> None:
    """Refuse early, in one line, a local SQLite registry this process cannot write.

    (Otherwise daf_butler logs its own error while opening the repository before ours is raised.)
    """
    db = str(ButlerConfig(repo).get(("registry", "db"), ""))
    if not db.startswith("sqlite:///"):
        return
    path = db.removeprefix("sqlite:///").replace("<butlerRoot>", root.ospath.rstrip("/"))
    for item in (path, os.path.dirname(path)):
        # SQLite writes a journal beside the database: both the file and its directory must be writable.
        if os.path.exists(item) and not os.access(item, os.W_OK):
            raise PermissionError(
                f"{repo}: the repository is read-only for this user ({item} is not writable); "
                "check the permissions of the repository and its database file"
            )


@contextlib.contextmanager
def repository_errors(repo: str | Butler) -> Iterator[None]:
    """Turn the database errors of a repository that cannot be written into one clear `OSError`.

    Parameters
    ----------
    repo : `str` or `lsst.daf.butler.Butler`
        The repository, for the message.

    Raises
    ------
    PermissionError
        Raised if the registry database is read-only.
    OSError
        Raised if it is locked by another process or cannot be opened.
    """
    try:
        yield
    except ReadOnlyDatabaseError as err:
        raise PermissionError(f"{_describe(repo)}: the repository is read-only ({err})") from None
    except sqlalchemy.exc.OperationalError as err:
        problem = database_problem(err)
        if "readonly" in problem or "read-only" in problem:
            raise PermissionError(
                f"{_describe(repo)}: the registry database is read-only ({problem}); "
                "check the permissions of the repository and its database file"
            ) from None
        raise OSError(f"{_describe(repo)}: registry database error: {problem}") from None


def database_problem(err: BaseException) -> str:
    """Return the first line of what the database said, without SQLAlchemy's statement and links.

    Parameters
    ----------
    err : `BaseException`
        An error, possibly a `sqlalchemy.exc.DBAPIError`.

    Returns
    -------
    problem : `str`
        For example ``database is locked (another process is writing; run again when it has finished)``.
    """
    original = getattr(err, "orig", None)
    text = str(original if original is not None else err).strip().splitlines()
    problem = text[0] if text else type(err).__name__
    if "database is locked" in problem:
        problem += " (another process is writing to the repository; run again when it has finished)"
    return problem


def _describe(repo: str | Butler) -> str:
    if isinstance(repo, Butler):
        roots = [str(root) for root in repo.get_datastore_roots().values() if root is not None]
        return roots[0] if roots else str(repo)
    return str(repo)


def check_run_name(run: str) -> None:
    """Refuse a RUN collection name that would put files outside the datastore root.

    Parameters
    ----------
    run : `str`
        Collection name.

    Raises
    ------
    ValueError
        Raised if the name is empty, starts with ``/`` or has an empty, ``.`` or ``..`` component: the
        datastore path template keeps the slashes of run names, so ``..`` would address directories
        outside the repository.
    """
    parts = run.split("/")
    if not run.strip() or run.startswith("/") or "\\" in run or any(p in ("", ".", "..") for p in parts):
        raise ValueError(
            f"Invalid --run {run!r}: a collection name used in file paths must not be empty, start with '/', "
            "contain '\\', or have empty, '.' or '..' components."
        )


@dataclass(frozen=True)
class _Transfer:
    """How files go into the datastore, and whether their sources are removed after commit."""

    mode: str | None
    """Transfer mode handed to `Butler.ingest`."""
    remove_sources: bool
    """Remove each source once its dataset is committed (``--transfer move``)."""

    @classmethod
    def choose(cls, butler: Butler, transfer: str | None | _Transfer, sources: Sequence[str]) -> _Transfer:
        if isinstance(transfer, _Transfer):
            return transfer
        if transfer != "move":
            return cls(transfer, False)
        # daf_butler's "move" renames the file into the datastore inside the transaction: a process
        # killed before the commit would leave it there, unregistered, and gone from where it was.  A
        # hard link (same file system) or a copy keeps the source until the registry has committed.
        roots = [root for root in butler.get_datastore_roots().values() if root is not None]
        mode = "copy"
        try:
            if sources and roots and all(uri.isLocal for uri in roots + [ResourcePath(p) for p in sources]):
                devices = {os.stat(root.ospath).st_dev for root in roots}
                devices |= {os.stat(ResourcePath(path).ospath).st_dev for path in sources}
                mode = "hardlink" if len(devices) == 1 else "copy"
        except OSError:
            mode = "copy"
        return cls(mode, True)

    def remove_committed(self, paths: Iterable[str]) -> None:
        """Remove the sources of committed datasets (a failure to remove loses nothing and is logged)."""
        if not self.remove_sources:
            return
        for path in paths:
            try:
                ResourcePath(path).remove()
            except Exception as err:
                _LOG.warning("%s: ingested, but the source could not be removed (%s)", path, err)

    def remove_if_stored(self, butler: Butler, path: str, ref: DatasetRef) -> None:
        """Finish an interrupted move: remove a source whose dataset is stored with the same bytes."""
        if not self.remove_sources:
            return
        source = ResourcePath(path)
        try:
            stored = butler.getURI(ref)
            if source.isLocal and stored.isLocal:
                same = os.path.samefile(source.ospath, stored.ospath) or filecmp.cmp(
                    source.ospath, stored.ospath, shallow=False
                )
            else:
                same = source.read() == stored.read()
        except Exception as err:
            _LOG.warning(
                "%s: already ingested; source kept, cannot compare it with the stored file (%s)", path, err
            )
            return
        if same:
            self.remove_committed([path])
        else:
            _LOG.warning("%s: already ingested from different bytes; source kept", path)


def _find_files(locations: Iterable[str], pattern: re.Pattern, report: IngestReport) -> list[ResourcePath]:
    """Return the files under ``locations`` whose names match ``pattern``."""
    found: list[ResourcePath] = []
    for location in locations:
        uri = ResourcePath(location)
        if uri.isdir():
            # An S3 "directory" is a key prefix: it exists only through the objects under it.
            files = list(ResourcePath.findFileResources([uri]))
            if not files and not uri.exists():
                report.failed.append(FailedFile(location, "no such file or directory"))
            found.extend(u for u in files if pattern.search(u.basename()))
            continue
        if not uri.exists():
            report.failed.append(FailedFile(location, "no such file or directory"))
        elif pattern.search(uri.basename()):
            found.append(uri)
        else:
            report.failed.append(
                FailedFile(location, f"file name does not match --regex {pattern.pattern!r}")
            )
    return sorted(set(found), key=str)


def _read_metadata(
    files: Sequence[ResourcePath],
    pattern: re.Pattern,
    on_sky: bool,
    progress: Progress,
    report: IngestReport,
) -> tuple[list[ObservationMetadata], set[int]]:
    """Read each file's headers.

    Returns the metadata of the good files and the exposure ids (from the file names, where the regex
    gives them) of the bad ones; each bad file goes to the report with its reason.
    """
    observations = []
    failed_exposures = set()
    for uri in progress.wrap(files, desc="Reading headers"):
        match = pattern.search(uri.basename())
        exposure = detector = None
        if match is not None and pattern.groups >= 2:
            exposure, detector = int(match.group(1)), int(match.group(2))
        name = uri.ospath if uri.isLocal else str(uri)
        try:
            with uri.as_local() as local, warnings.catch_warnings():
                # The error raised says what is wrong once; astropy's and erfa's warnings on the way
                # (dubious year, WCS fixes, truncation) would repeat it in other words.
                warnings.simplefilter("ignore", AstropyWarning)
                warnings.simplefilter("ignore", ErfaWarning)
                # Structure first: a truncated file or a header claiming more pixels than the file holds
                # fails here, before anything reads its planes.
                primary, image = check_raw_file(local.ospath, name=name)
                obs = ObservationMetadata.from_headers(
                    name, primary, image, exposure=exposure, detector=detector, on_sky=on_sky
                )
            observations.append(obs)
        except (FileMetadataError, OSError) as err:
            problem = err.problem if isinstance(err, FileMetadataError) else f"cannot read the file ({err})"
            report.failed.append(FailedFile(name, problem))
            if exposure is not None:
                failed_exposures.add(exposure)
    return observations, failed_exposures


def _drop_failed_exposures(
    by_exposure: dict[int, list[ObservationMetadata]], failed_exposures: set[int], report: IngestReport
) -> None:
    """Remove every exposure one of whose files failed, so that no exposure lands incomplete."""
    for exposure in sorted(failed_exposures & by_exposure.keys()):
        for obs in by_exposure.pop(exposure):
            report.failed.append(
                FailedFile(obs.path, f"not ingested: another file of exposure {exposure} failed")
            )


def _drop_duplicates(by_exposure: dict[int, list[ObservationMetadata]], report: IngestReport) -> None:
    """Fail exposures that name the same detector twice (two files for one data ID)."""
    for exposure in sorted(by_exposure):
        detectors = [obs.detector for obs in by_exposure[exposure]]
        if len(set(detectors)) != len(detectors):
            for obs in by_exposure.pop(exposure):
                report.failed.append(
                    FailedFile(
                        obs.path, f"exposure {exposure} has more than one file for detector {obs.detector}"
                    )
                )


def _file_dataset(obs: ObservationMetadata, ref: DatasetRef, formatter: type) -> FileDataset:
    return FileDataset(path=ResourcePath(obs.path), refs=[ref], formatter=formatter)


def _ingest_raws(
    butler: Butler,
    by_exposure: dict[int, list[ObservationMetadata]],
    dataset_type: DatasetType,
    run: str,
    formatter: type,
    transfer: str | None | _Transfer,
    progress: Progress,
    report: IngestReport,
    instrument: str | None = None,
    has_simulated: bool = True,
) -> None:
    """Ingest raw exposures; each exposure's records and datasets land together or not at all.

    ``instrument`` defaults to the simulator's; an exposure record's ``has_simulated`` is
    ``has_simulated``, or true when one of its files says it is simulated (``SIMSEED``)
    (`spherex.script.ingest_spherex` reuses this for real Level-2 files, with ``has_simulated=False``).
    """
    instrument = instrument or SimulatorInstrument.getName()
    check_run_name(run)
    transfer = _Transfer.choose(
        butler, transfer, [obs.path for group in by_exposure.values() for obs in group]
    )
    existing = {
        (ref.dataId["exposure"], ref.dataId["detector"]): ref
        for ref in butler.query_datasets(dataset_type, collections=run, explain=False, limit=None)
    }
    known_regions = _known_detector_regions(butler, instrument, by_exposure.keys())

    pending: list[_ExposureIngest] = []
    for exposure in sorted(by_exposure):
        observations = by_exposure[exposure]
        new = [obs for obs in observations if (exposure, obs.detector) not in existing]
        for obs in observations:
            if obs not in new:
                report.already_present.append(obs.path)
                transfer.remove_if_stored(butler, obs.path, existing[exposure, obs.detector])
        if new:
            regions = dict(known_regions.get(exposure, {}))
            regions.update({obs.detector: obs.region for obs in new})
            pending.append(
                _ExposureIngest.make(
                    instrument,
                    exposure,
                    new,
                    _hull(regions.values()),
                    dataset_type,
                    run,
                    formatter,
                    has_simulated,
                )
            )

    with progress.bar(desc="Ingesting exposures", total=len(pending)) as bar:
        for start in range(0, len(pending), _EXPOSURES_PER_TRANSACTION):
            chunk = pending[start : start + _EXPOSURES_PER_TRANSACTION]
            try:
                # Whole exposures per transaction: a batch lands entirely or not at all.
                _write_exposures(butler, chunk, transfer)
                done = chunk
            except Exception:
                # Find the exposure(s) at fault: retry one exposure per transaction.
                done = []
                for item in chunk:
                    try:
                        _write_exposures(butler, [item], transfer)
                        done.append(item)
                    except Exception as err:
                        landed = _landed_meanwhile(butler, dataset_type, run, item)
                        if landed is not None:
                            # Another ingest of the same files committed first: nothing is missing.
                            for obs in item.observations:
                                report.already_present.append(obs.path)
                                transfer.remove_if_stored(butler, obs.path, landed[obs.detector])
                            continue
                        problem = f"exposure {item.exposure} not ingested: {database_problem(err)}"
                        report.failed.extend(FailedFile(obs.path, problem) for obs in item.observations)
            for item in done:
                transfer.remove_committed(obs.path for obs in item.observations)
                report.ingested.extend(obs.path for obs in item.observations)
                report.exposures.add(item.exposure)
            bar.update(len(chunk))


def _landed_meanwhile(
    butler: Butler, dataset_type: DatasetType, run: str, item: _ExposureIngest
) -> dict[int, DatasetRef] | None:
    """Return the datasets of an exposure whose write failed if all of them are now in ``run``.

    A concurrent ingest of the same files that commits first makes this process's transaction fail on
    the registry's uniqueness constraints; nothing is then missing.  `None` if any is missing.
    """
    try:
        refs = butler.query_datasets(
            dataset_type,
            collections=run,
            where="instrument = instr AND exposure = exp",
            bind={"instr": item.exposure_record["instrument"], "exp": item.exposure},
            explain=False,
            limit=None,
        )
    except Exception:
        return None
    present = {ref.dataId["detector"]: ref for ref in refs}
    return present if all(obs.detector in present for obs in item.observations) else None


_EXPOSURES_PER_TRANSACTION = 50
"""Exposures written per registry transaction (each exposure is still all-or-nothing)."""


@dataclass(frozen=True)
class _ExposureIngest:
    """The records and datasets of one exposure, ready to write."""

    exposure: int
    observations: list[ObservationMetadata]
    exposure_record: dict
    region_records: list[dict]
    datasets: list[FileDataset]

    @classmethod
    def make(
        cls,
        instrument: str,
        exposure: int,
        observations: list[ObservationMetadata],
        region: ConvexPolygon,
        dataset_type: DatasetType,
        run: str,
        formatter: type,
        has_simulated: bool = True,
    ) -> _ExposureIngest:
        first = observations[0]
        record = {
            "instrument": instrument,
            "id": exposure,
            "obs_id": first.obs_id,
            "exposure_time": first.exposure_time,
            "observation_type": first.observation_type,
            "group_name": first.group_name,
            "group_id": first.group_id,
            "tracking_ra": first.tracking_ra,
            "tracking_dec": first.tracking_dec,
            "sky_angle": first.sky_angle,
            "gaussian_jitter": first.gaussian_jitter,
            "has_simulated": has_simulated or any(obs.simulated for obs in observations),
            "timespan": first.timespan,
            "region": region,
        }
        regions = [
            {"instrument": instrument, "exposure": exposure, "detector": obs.detector, "region": obs.region}
            for obs in observations
        ]
        datasets = [
            _file_dataset(
                obs,
                DatasetRef(
                    dataset_type,
                    {"instrument": instrument, "exposure": exposure, "detector": obs.detector},
                    run=run,
                ),
                formatter,
            )
            for obs in observations
        ]
        return cls(exposure, observations, record, regions, datasets)


def _write_exposures(butler: Butler, items: list[_ExposureIngest], transfer: _Transfer) -> None:
    """Write the records and datasets of some exposures in one transaction."""
    with butler.transaction():
        for item in items:
            butler.registry.syncDimensionData("exposure", item.exposure_record, update=True)
        butler.registry.insertDimensionData(
            "exposure_detector_region",
            *[r for item in items for r in item.region_records],
            skip_existing=True,
        )
        butler.ingest(*[d for item in items for d in item.datasets], transfer=transfer.mode)


def _known_detector_regions(
    butler: Butler, instrument: str, exposures: Iterable[int]
) -> dict[int, dict[int, ConvexPolygon]]:
    """Return the detector footprints already in the registry for these exposures (one query)."""
    exposures = sorted(exposures)
    if not exposures:
        return {}
    regions: dict[int, dict[int, ConvexPolygon]] = defaultdict(dict)
    records = butler.query_dimension_records(
        "exposure_detector_region",
        where="instrument = instr AND exposure IN (exposures)",
        bind={"instr": instrument, "exposures": exposures},
        explain=False,
        limit=None,
    )
    for record in records:
        regions[record.exposure][record.detector] = record.region
    return regions


def _hull(regions: Iterable[ConvexPolygon]) -> ConvexPolygon:
    """Return the convex hull of several polygons (the exposure's footprint)."""
    vertices = [v for region in regions for v in region.getVertices()]
    return ConvexPolygon.convexHull(vertices)


def _ingest_darks(
    butler: Butler,
    by_exposure: dict[int, list[ObservationMetadata]],
    dataset_type: DatasetType,
    calibration_collection: str,
    formatter: type,
    transfer: _Transfer,
    progress: Progress,
    report: IngestReport,
) -> None:
    """Ingest dark frames and certify each for the time until the next dark of its detector."""
    instrument = SimulatorInstrument.getName()
    # Validity starts of every dark already certified, per detector: one query.
    starts: dict[int, set] = defaultdict(set)
    certified_ranges: dict[int, list[Timespan]] = defaultdict(list)
    certified = butler.registry.queryDatasetAssociations(
        dataset_type, collections=calibration_collection, flattenChains=False
    )
    known_runs: dict[tuple[str, int], DatasetRef] = {}
    for association in certified:
        detector = association.ref.dataId["detector"]
        starts[detector].add(association.timespan.begin)
        certified_ranges[detector].append(association.timespan)
        known_runs[association.ref.run, detector] = association.ref
    for observations in by_exposure.values():
        for obs in observations:
            starts[obs.detector].add(obs.timespan.begin)
    ordered = {detector: sorted(times) for detector, times in starts.items()}

    for epoch in progress.wrap(sorted(by_exposure), desc="Ingesting darks"):
        observations = by_exposure[epoch]
        run = f"{calibration_collection}/{observations[0].obs_id}"
        new = [obs for obs in observations if (run, obs.detector) not in known_runs]
        for obs in observations:
            if obs not in new:
                report.already_present.append(obs.path)
                transfer.remove_if_stored(butler, obs.path, known_runs[run, obs.detector])
        if not new:
            continue
        refs = {
            obs.detector: DatasetRef(
                dataset_type, {"instrument": instrument, "detector": obs.detector}, run=run
            )
            for obs in new
        }
        try:
            with butler.transaction():
                butler.collections.register(run, CollectionType.RUN)
                butler.ingest(
                    *[_file_dataset(obs, refs[obs.detector], formatter) for obs in new],
                    transfer=transfer.mode,
                )
                for obs in new:
                    validity = _validity(obs.timespan.begin, ordered[obs.detector])
                    ref = refs[obs.detector]
                    if any(validity.overlaps(other) for other in certified_ranges[obs.detector]):
                        # A dark certified earlier but taken before this one: shorten its validity.
                        # (Only when there is one: decertify on a collection without any certified
                        # dataset of the type fails in daf_butler.)
                        butler.registry.decertify(
                            calibration_collection, dataset_type, validity, dataIds=[ref.dataId]
                        )
                    butler.registry.certify(calibration_collection, [ref], validity)
        except Exception as err:
            for obs in new:
                report.failed.append(FailedFile(obs.path, f"dark not ingested: {database_problem(err)}"))
            continue
        transfer.remove_committed(obs.path for obs in new)
        report.ingested.extend(obs.path for obs in new)
        report.exposures.add(epoch)


def _validity(begin, starts: list) -> Timespan:
    """Return the validity range of a dark: from its start to the next dark's start (or forever)."""
    later = [t for t in starts if t > begin]
    return Timespan(begin, min(later) if later else None)
