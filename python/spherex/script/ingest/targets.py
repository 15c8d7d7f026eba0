"""Ingest a catalogue of target positions, one dataset per common sky pixel, for forced spectrophotometry.

Targets are stored as astropy tables (storage class ``ArrowAstropy``, Parquet files) of dataset type
``spectroTargets`` with the repository's common sky-pixel dimension (``healpix7``): the quantum-graph
builder then joins each catalogue to the Level-2 images whose footprints overlap its pixel, so a
pipeline reads only the images that can see a target.
"""

from __future__ import annotations

__all__ = [
    "TARGET_DATASET_TYPE",
    "TARGET_RUN",
    "TargetCatalogError",
    "TargetIngestReport",
    "ingest_targets",
    "read_targets",
    "target_pixel",
]

import csv
import math
import os
import re
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import pyarrow.parquet as pq
from astropy.table import Table, vstack
from lsst.daf.butler import Butler, CollectionType, DatasetRef, DatasetType, FileDataset
from lsst.daf.butler.formatters.parquet import ParquetFormatter, astropy_to_arrow, compute_row_group_size
from lsst.sphgeom import LonLat, UnitVector3d

from ...core.photometry.target_motion import MOTION_COLUMNS, ROLES, normalise_catalogue
from .simulated import repository_errors, writeable_butler

TARGET_DATASET_TYPE = "spectroTargets"
"""Dataset type of target catalogues (dimension: the common skypix, ``healpix7``)."""

TARGET_RUN = "targets"
"""Default RUN collection of target catalogues."""

_REQUIRED = ("name", "ra", "dec")
# Names become file names (<name>.ecsv, <name>.png): letters, digits and . _ + - only, not starting
# with a dot, so that no name can escape the output directory or hide a file.
_NAME = re.compile(r"[A-Za-z0-9_+\-][A-Za-z0-9_.+\-]{0,63}")
_MAX_BYTES = 100 * 1024 * 1024
# Bounds of the motion columns: Barnard's star, the fastest, moves 10.4 arcsec/yr and has the largest
# stellar parallax but Proxima's 768 mas; these limits keep out typing errors, not real stars.
_MOTION_RANGES = {
    "pmra": (-2e4, 2e4),
    "pmdec": (-2e4, 2e4),
    "epoch": (1900.0, 2100.0),
    "parallax": (0.0, 1000.0),
}


class TargetCatalogError(ValueError):
    """A target catalogue that cannot be ingested; the message names the file and row."""


@dataclass
class TargetIngestReport:
    """What `ingest_targets` did."""

    run: str
    """RUN collection of the catalogues."""
    added: int = 0
    """Targets new to the run."""
    present: int = 0
    """Targets already in the run with the same position and kind."""
    pixels: list[int] = field(default_factory=list)
    """Sky pixels whose catalogue was written."""

    def summary(self) -> str:
        """Return a one-line summary (`str`)."""
        return (
            f"Ingested {self.added} targets into {self.run} ({len(self.pixels)} sky pixels); "
            f"{self.present} already present."
        )


def read_targets(path: str | os.PathLike) -> Table:
    """Read and check a target catalogue (CSV with columns ``name``, ``ra``, ``dec`` and optional ones).

    Optional columns: ``kind``; ``role`` (``target``, the default, or ``reference``: fitted with its
    neighbours, not reported); ``pmra``, ``pmdec`` (mas/yr, ``pmra`` times cos(dec) as in Gaia),
    ``epoch`` (Julian year of ``ra``/``dec``) and ``parallax`` (mas), see
    `spherex.core.photometry.target_motion`.

    Parameters
    ----------
    path : `str` or `os.PathLike`
        CSV file; ``ra`` and ``dec`` in ICRS degrees.

    Returns
    -------
    targets : `astropy.table.Table`
        Columns ``name``, ``ra``, ``dec``, ``kind`` (empty where not given), ``role``, ``pmra``,
        ``pmdec``, ``epoch``, ``parallax`` (defaults where not given), in file order.

    Raises
    ------
    TargetCatalogError
        Raised, naming the file and row (the line number in the file), for a missing column, a
        non-numeric or out-of-range coordinate, an empty, duplicate or unsafe name, or a file that is
        not a readable CSV text file.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise TargetCatalogError(f"{path}: not a regular file")
    if os.path.getsize(path) > _MAX_BYTES:
        raise TargetCatalogError(f"{path}: larger than {_MAX_BYTES // 2**20} MiB; split the catalogue")
    names: list[str] = []
    ras: list[float] = []
    decs: list[float] = []
    kinds: list[str] = []
    roles: list[str] = []
    motion: dict[str, list[float]] = {name: [] for name in MOTION_COLUMNS}
    seen: dict[str, int] = {}
    try:
        # utf-8-sig: Excel's "CSV UTF-8" starts with a byte-order mark, which is not part of the first
        # column's name.  Column names are matched without regard to case ("RA", "Dec").
        with open(path, newline="", encoding="utf-8-sig") as stream:
            reader = csv.DictReader(stream, skipinitialspace=True)
            columns = [c.strip().lower() for c in reader.fieldnames or []]
            missing = [c for c in _REQUIRED if c not in columns]
            if missing:
                raise TargetCatalogError(
                    f"{path} row 1: missing column(s) {', '.join(missing)} "
                    "(need name, ra, dec; kind optional)"
                )
            reader.fieldnames = columns
            for row in reader:
                line = reader.line_num
                if None in row or any(row.get(c) is None for c in _REQUIRED):
                    raise TargetCatalogError(f"{path} row {line}: expected {len(columns)} fields")
                name = row["name"].strip()
                if not _NAME.fullmatch(name):
                    raise TargetCatalogError(
                        f"{path} row {line}: name {name!r} must be 1-64 letters, digits, '.', '_', '+' "
                        "or '-', not starting with '.'"
                    )
                if name in seen:
                    raise TargetCatalogError(
                        f"{path} row {line}: duplicate name {name!r} (first on row {seen[name]})"
                    )
                seen[name] = line
                ra = _coordinate(path, line, "ra", row["ra"], 0.0, 360.0)
                dec = _coordinate(path, line, "dec", row["dec"], -90.0, 90.0)
                names.append(name)
                ras.append(ra % 360.0)
                decs.append(dec)
                kinds.append((row.get("kind") or "").strip())
                role = (row.get("role") or "").strip().lower() or "target"
                if role not in ROLES:
                    raise TargetCatalogError(
                        f"{path} row {line}: role {role!r} is not one of {', '.join(ROLES)}"
                    )
                roles.append(role)
                for column, (low, high) in _MOTION_RANGES.items():
                    text = (row.get(column) or "").strip()
                    motion[column].append(
                        _number(path, line, column, text, low, high) if text else MOTION_COLUMNS[column]
                    )
    except UnicodeDecodeError as err:
        raise TargetCatalogError(
            f"{path}: not a UTF-8 text file ({err.reason}); in Excel, save as 'CSV UTF-8'"
        ) from None
    except csv.Error as err:
        raise TargetCatalogError(f"{path}: not a CSV file ({err})") from None
    if not names:
        raise TargetCatalogError(f"{path}: no targets")
    return Table(
        {
            "name": names,
            "ra": np.array(ras),
            "dec": np.array(decs),
            "kind": kinds,
            "role": roles,
            **{column: np.array(values) for column, values in motion.items()},
        },
        meta={"source": os.path.basename(path)},
    )


def _number(path: str, line: int, column: str, text: str, low: float, high: float) -> float:
    try:
        value = float(text)
    except ValueError:
        raise TargetCatalogError(f"{path} row {line}: {column} {text!r} is not a number") from None
    if not math.isfinite(value) or not low <= value <= high:
        raise TargetCatalogError(f"{path} row {line}: {column} {text} is outside {low:g} to {high:g}")
    return value


def _coordinate(path: str, line: int, column: str, text: str, low: float, high: float) -> float:
    try:
        value = float(text)
    except ValueError:
        raise TargetCatalogError(f"{path} row {line}: {column} {text.strip()!r} is not a number") from None
    if not math.isfinite(value) or not low <= value <= high:
        raise TargetCatalogError(
            f"{path} row {line}: {column} {text.strip()} is outside {low:g} to {high:g} degrees"
        )
    return value


def target_pixel(butler: Butler, ra: float, dec: float) -> int:
    """Return the common sky pixel (``healpix7``) of a position.

    Parameters
    ----------
    butler : `lsst.daf.butler.Butler`
        Butler of the repository (its universe names the pixelization).
    ra, dec : `float`
        ICRS degrees.

    Returns
    -------
    pixel : `int`
        Index in the universe's common skypix system.
    """
    return int(butler.dimensions.commonSkyPix.pixelization.index(UnitVector3d(LonLat.fromDegrees(ra, dec))))


def ingest_targets(
    repo: str | Butler, path: str | os.PathLike | Table, run: str = TARGET_RUN, role: str | None = None
) -> TargetIngestReport:
    """Store a target catalogue in a repository, one ``spectroTargets`` dataset per common sky pixel.

    Parameters
    ----------
    repo : `str` or `lsst.daf.butler.Butler`
        Repository (path or URI) or a writeable Butler.
    path : `str` or `os.PathLike` or `astropy.table.Table`
        CSV file (see `read_targets`), or a table already read by it.
    run : `str`, optional
        RUN collection; targets already there are kept, and a pixel's catalogue is replaced by one
        holding the old and new targets.
    role : `str`, optional
        ``target`` or ``reference``: the role of every row, replacing the catalogue's ``role`` column
        (references are fitted with their neighbours, never reported).

    Returns
    -------
    report : `TargetIngestReport`
        Counts and pixels written.

    Raises
    ------
    TargetCatalogError
        Raised for a bad catalogue, or a name the run already holds at another position; nothing is
        registered.
    FileNotFoundError, PermissionError, OSError
        Raised for a missing or read-only repository.
    """
    targets = normalise_catalogue(path if isinstance(path, Table) else read_targets(path))
    source = targets.meta.get("source", "targets")
    if role is not None:
        if role not in ROLES:
            raise TargetCatalogError(f"{source}: role {role!r} is not one of {', '.join(ROLES)}")
        targets["role"] = np.full(len(targets), role, dtype="U16")
    if not run or run.startswith("/") or ".." in run.split("/"):
        raise TargetCatalogError(f"Invalid --run {run!r}: a collection name, not a path")
    from ...tasks.spectrophotometry import TARGET_SKYPIX  # here: pipe_base only for this command

    butler = writeable_butler(repo)
    report = TargetIngestReport(run)
    skypix = butler.dimensions.commonSkyPix
    if skypix.name != TARGET_SKYPIX:
        raise ValueError(
            f"{repo if isinstance(repo, str) else 'The repository'}: its dimension universe (version "
            f"{butler.dimensions.version}) relates footprints to "
            f"{skypix.name}; the spectrophotometry pipeline needs {TARGET_SKYPIX} (universe version 3): "
            "create a new repository and ingest its files again (README, migration notes)"
        )
    dataset_type = DatasetType(TARGET_DATASET_TYPE, [skypix.name], "ArrowAstropy", universe=butler.dimensions)
    with repository_errors(repo):
        butler.registry.registerDatasetType(dataset_type)
        butler.collections.register(run, CollectionType.RUN)
        existing = {
            ref.dataId[skypix.name]: ref
            for ref in butler.query_datasets(dataset_type, collections=run, explain=False, limit=None)
        }
        old = {pixel: normalise_catalogue(butler.get(ref)) for pixel, ref in existing.items()}
        known = {str(row["name"]): row for table in old.values() for row in table}
        by_pixel: dict[int, list[int]] = defaultdict(list)
        for index, row in enumerate(targets):
            name = str(row["name"])
            if name in known:
                prior = known[name]
                if not (
                    _same_position(prior["ra"], prior["dec"], row["ra"], row["dec"])
                    and str(prior["kind"]) == str(row["kind"])
                ):
                    raise TargetCatalogError(
                        f"{source}: target {name!r} is already in run {run} at ra={prior['ra']:.7f}, "
                        f"dec={prior['dec']:.7f} (kind {str(prior['kind'])!r}); use another name or --run"
                    )
                report.present += 1
                continue
            by_pixel[target_pixel(butler, float(row["ra"]), float(row["dec"]))].append(index)
        tables = {}
        for pixel in sorted(by_pixel):
            table = targets[by_pixel[pixel]]
            table.meta = {"pixelization": skypix.name, "pixel": pixel}
            if pixel in old:
                table = vstack([old[pixel], table], metadata_conflicts="silent")
            table.sort("name")
            tables[pixel] = table
        with butler.transaction():
            replaced = [existing[pixel] for pixel in tables if pixel in existing]
            if replaced:
                butler.pruneDatasets(replaced, disassociate=True, unstore=True, purge=True)
            _store_catalogues(butler, dataset_type, run, tables)
        for pixel in tables:
            report.added += len(by_pixel[pixel])
            report.pixels.append(pixel)
    return report


def _store_catalogues(butler: Butler, dataset_type: DatasetType, run: str, tables: dict[int, Table]) -> None:
    """Store one catalogue per sky pixel in one ingest: one registry transaction, not one per pixel.

    Each table is written as daf_butler's `ParquetFormatter` writes it (``butler.put`` of an
    ``ArrowAstropy`` dataset) and moved into the datastore, which names it by its file template; a
    catalogue of a few thousand targets spreads over hundreds of ``healpix7`` pixels, and a put each
    cost ~10 ms of registry work.
    """
    if not tables:
        return
    skypix = butler.dimensions.commonSkyPix.name
    with tempfile.TemporaryDirectory(prefix="spherex-targets-") as tmp:
        datasets = []
        for pixel, table in tables.items():
            path = os.path.join(tmp, f"{skypix}_{pixel}.parq")
            arrow = astropy_to_arrow(table)
            pq.write_table(arrow, path, row_group_size=compute_row_group_size(arrow.schema))
            ref = DatasetRef(dataset_type, {skypix: pixel}, run=run)
            datasets.append(FileDataset(path=path, refs=[ref], formatter=ParquetFormatter))
        butler.ingest(*datasets, transfer="move")


def _same_position(ra1: float, dec1: float, ra2: float, dec2: float) -> bool:
    """Tell whether two positions agree to 1 milliarcsecond."""
    return (
        abs(float(dec1) - float(dec2)) < 3e-7
        and abs((float(ra1) - float(ra2) + 180) % 360 - 180) * max(math.cos(math.radians(float(dec1))), 1e-9)
        < 3e-7
    )
