"""Writing exposure records and datasets: each exposure lands whole, in one transaction, or not at all."""

from __future__ import annotations

__all__ = [
    "EXPOSURES_PER_TRANSACTION",
    "ExposureIngest",
    "hull",
    "ingest_exposures",
    "landed_meanwhile",
    "write_exposures",
]

import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from lsst.daf.butler import Butler, DatasetRef, DatasetType, FileDataset
from lsst.daf.butler.progress import Progress
from lsst.sphgeom import ConvexPolygon

from ...instrument import ObservationMetadata
from .data_ids import ExpandedDataIds
from .report import IngestReport
from .repository import check_run_name, database_problem
from .sources import CheckedSources
from .transfer import SourceTransfer

_LOG = logging.getLogger(__name__)

EXPOSURES_PER_TRANSACTION = 50
"""Exposures written per registry transaction (each exposure is still all-or-nothing)."""


@dataclass(frozen=True)
class ExposureIngest:
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
        sources: CheckedSources,
        has_simulated: bool = True,
        data_ids: ExpandedDataIds | None = None,
    ) -> ExposureIngest:
        """Build the exposure record, its detectors' regions and its datasets from its files (with
        expanded data IDs when ``data_ids`` covers the dataset type).
        """
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
        expand = data_ids is not None and data_ids.covers(dataset_type.dimensions)
        datasets = [
            FileDataset(
                path=sources.uri(obs.path),
                refs=[
                    DatasetRef(
                        dataset_type,
                        data_ids.data_id(record, obs.detector, region)
                        if expand and data_ids is not None
                        else {"instrument": instrument, "exposure": exposure, "detector": obs.detector},
                        run=run,
                    )
                ],
                formatter=formatter,
            )
            for obs, region in zip(observations, regions, strict=True)
        ]
        return cls(exposure, observations, record, regions, datasets)

    @property
    def names(self) -> list[str]:
        """The source files, as named in messages."""
        return [obs.path for obs in self.observations]


def write_exposures(
    butler: Butler, items: list[ExposureIngest], transfer: SourceTransfer, sources: CheckedSources
) -> SourceTransfer:
    """Write the records and datasets of some exposures in one transaction.

    The sources are checked unchanged since they were read both before and after their transfer, inside
    the transaction: a file appended to meanwhile fails its exposure and nothing of it is committed.
    A move whose hard link is refused is retried as a copy.

    Returns
    -------
    transfer : `SourceTransfer`
        The transfer that worked (a copy after a refused hard link), for the next exposures.
    """
    names = [name for item in items for name in item.names]
    try:
        _write(butler, items, transfer, sources, names)
    except Exception as err:
        fallback = transfer.copy_instead(err)
        if fallback is None:
            raise
        _LOG.info("Hard links refused (%s); moving by copy, then removing each source after commit", err)
        _write(butler, items, fallback, sources, names)
        return fallback
    return transfer


def _write(
    butler: Butler,
    items: list[ExposureIngest],
    transfer: SourceTransfer,
    sources: CheckedSources,
    names: list[str],
) -> None:
    with butler.transaction():
        sources.check_unchanged(names)
        for item in items:
            butler.registry.syncDimensionData("exposure", item.exposure_record, update=True)
        butler.registry.insertDimensionData(
            "exposure_detector_region",
            *[r for item in items for r in item.region_records],
            skip_existing=True,
        )
        butler.ingest(*[d for item in items for d in item.datasets], transfer=transfer.mode)
        sources.check_unchanged(names)


def ingest_exposures(
    butler: Butler,
    by_exposure: dict[int, list[ObservationMetadata]],
    dataset_type: DatasetType,
    run: str,
    formatter: type,
    transfer: str | None | SourceTransfer,
    sources: CheckedSources,
    progress: Progress,
    report: IngestReport,
    instrument: str,
    has_simulated: bool = True,
) -> None:
    """Ingest exposures into ``run``; each exposure's records and datasets land together or not at all.

    Parameters
    ----------
    butler : `lsst.daf.butler.Butler`
        Writeable Butler.
    by_exposure : `dict` [`int`, `list` [`~spherex.instrument.ObservationMetadata`]]
        Files by exposure id.
    dataset_type : `lsst.daf.butler.DatasetType`
        Their dataset type.
    run : `str`
        RUN collection (registered by the caller).
    formatter : `type`
        Formatter of the files.
    transfer : `str`, `None` or `SourceTransfer`
        Transfer mode.
    sources : `CheckedSources`
        The files' URIs and their state when checked.
    progress : `lsst.daf.butler.progress.Progress`
        Progress reporting.
    report : `IngestReport`
        Receives what landed, what was there already, and what failed.
    instrument : `str`
        Instrument name.
    has_simulated : `bool`, optional
        The exposure records' ``has_simulated``, or true when one of its files says it is simulated.
    """
    check_run_name(run)
    transfer = SourceTransfer.choose(
        butler, transfer, [sources.uri(obs.path) for group in by_exposure.values() for obs in group]
    )
    existing = {
        (ref.dataId["exposure"], ref.dataId["detector"]): ref
        for ref in butler.query_datasets(dataset_type, collections=run, explain=False, limit=None)
    }
    known_regions = _known_detector_regions(butler, instrument, by_exposure.keys())
    data_ids = ExpandedDataIds(butler, instrument)

    pending: list[ExposureIngest] = []
    for exposure in sorted(by_exposure):
        observations = by_exposure[exposure]
        new = [obs for obs in observations if (exposure, obs.detector) not in existing]
        for obs in observations:
            if obs not in new:
                report.already_present.append(obs.path)
                ref = existing[exposure, obs.detector]
                transfer.remove_if_stored(butler, obs.path, sources.uri(obs.path), ref)
        if new:
            regions = dict(known_regions.get(exposure, {}))
            regions.update({obs.detector: obs.region for obs in new})
            pending.append(
                ExposureIngest.make(
                    instrument,
                    exposure,
                    new,
                    hull(regions.values()),
                    dataset_type,
                    run,
                    formatter,
                    sources,
                    has_simulated,
                    data_ids,
                )
            )

    with progress.bar(desc="Ingesting exposures", total=len(pending)) as bar:
        for start in range(0, len(pending), EXPOSURES_PER_TRANSACTION):
            chunk = pending[start : start + EXPOSURES_PER_TRANSACTION]
            try:
                # Whole exposures per transaction: a batch lands entirely or not at all.
                transfer = write_exposures(butler, chunk, transfer, sources)
                done = chunk
            except Exception:
                # Find the exposure(s) at fault: retry one exposure per transaction.
                done = []
                for item in chunk:
                    try:
                        transfer = write_exposures(butler, [item], transfer, sources)
                        done.append(item)
                    except Exception as err:
                        _exposure_failed(butler, dataset_type, run, item, err, transfer, sources, report)
            for item in done:
                transfer.remove_committed((name, sources.uri(name)) for name in item.names)
                report.ingested.extend(item.names)
                report.exposures.add(item.exposure)
            bar.update(len(chunk))


def _exposure_failed(
    butler: Butler,
    dataset_type: DatasetType,
    run: str,
    item: ExposureIngest,
    err: Exception,
    transfer: SourceTransfer,
    sources: CheckedSources,
    report: IngestReport,
) -> None:
    landed = landed_meanwhile(butler, dataset_type, run, item)
    if landed is not None:
        # Another ingest of the same files committed first: nothing is missing.
        for obs in item.observations:
            report.already_present.append(obs.path)
            transfer.remove_if_stored(butler, obs.path, sources.uri(obs.path), landed[obs.detector])
        return
    problem = f"exposure {item.exposure} not ingested: {database_problem(err)}"
    for name in item.names:
        report.fail(name, problem)


def landed_meanwhile(
    butler: Butler, dataset_type: DatasetType, run: str, item: ExposureIngest
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


def hull(regions: Iterable[ConvexPolygon]) -> ConvexPolygon:
    """Return the convex hull of several polygons (the exposure's footprint)."""
    vertices = [v for region in regions for v in region.getVertices()]
    return ConvexPolygon.convexHull(vertices)
