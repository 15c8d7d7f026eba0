"""Writing dark calibrations: each dark epoch lands in its own RUN, certified until the next dark."""

from __future__ import annotations

__all__ = ["ingest_darks"]

from collections import defaultdict

from lsst.daf.butler import Butler, CollectionType, DatasetRef, DatasetType, FileDataset, Timespan
from lsst.daf.butler.progress import Progress

from ...instrument import ObservationMetadata
from .report import IngestReport
from .repository import check_run_name, database_problem
from .sources import CheckedSources
from .transfer import SourceTransfer


def ingest_darks(
    butler: Butler,
    by_exposure: dict[int, list[ObservationMetadata]],
    dataset_type: DatasetType,
    calibration_collection: str,
    formatter: type,
    transfer: str | None | SourceTransfer,
    sources: CheckedSources,
    progress: Progress,
    report: IngestReport,
    instrument: str,
) -> None:
    """Ingest dark frames and certify each for the time until the next dark of its detector.

    Each dark epoch's files go to the RUN ``{calibration_collection}/{obs_id}``, in one transaction with
    their certification.
    """
    transfer = SourceTransfer.choose(
        butler, transfer, [sources.uri(obs.path) for group in by_exposure.values() for obs in group]
    )
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
                transfer.remove_if_stored(
                    butler, obs.path, sources.uri(obs.path), known_runs[run, obs.detector]
                )
        if not new:
            continue
        try:
            check_run_name(run)
            transfer = _write_darks(
                butler,
                new,
                dataset_type,
                calibration_collection,
                run,
                formatter,
                transfer,
                sources,
                ordered,
                certified_ranges,
                instrument,
            )
        except Exception as err:
            for obs in new:
                report.fail(obs.path, f"dark not ingested: {database_problem(err)}")
            continue
        transfer.remove_committed((obs.path, sources.uri(obs.path)) for obs in new)
        report.ingested.extend(obs.path for obs in new)
        report.exposures.add(epoch)


def _write_darks(
    butler: Butler,
    new: list[ObservationMetadata],
    dataset_type: DatasetType,
    calibration_collection: str,
    run: str,
    formatter: type,
    transfer: SourceTransfer,
    sources: CheckedSources,
    ordered: dict[int, list],
    certified_ranges: dict[int, list[Timespan]],
    instrument: str,
) -> SourceTransfer:
    refs = {
        obs.detector: DatasetRef(dataset_type, {"instrument": instrument, "detector": obs.detector}, run=run)
        for obs in new
    }
    names = [obs.path for obs in new]

    def write(mode: SourceTransfer) -> None:
        with butler.transaction():
            sources.check_unchanged(names)
            butler.collections.register(run, CollectionType.RUN)
            butler.ingest(
                *[
                    FileDataset(path=sources.uri(obs.path), refs=[refs[obs.detector]], formatter=formatter)
                    for obs in new
                ],
                transfer=mode.mode,
            )
            sources.check_unchanged(names)
            for obs in new:
                validity = _validity(obs.timespan.begin, ordered[obs.detector])
                ref = refs[obs.detector]
                if any(validity.overlaps(other) for other in certified_ranges[obs.detector]):
                    # A dark certified earlier but taken before this one: shorten its validity.  (Only
                    # when there is one: decertify on a collection without any certified dataset of the
                    # type fails in daf_butler.)
                    butler.registry.decertify(
                        calibration_collection, dataset_type, validity, dataIds=[ref.dataId]
                    )
                butler.registry.certify(calibration_collection, [ref], validity)

    try:
        write(transfer)
    except Exception as err:
        fallback = transfer.copy_instead(err)
        if fallback is None:
            raise
        write(fallback)
        return fallback
    return transfer


def _validity(begin, starts: list) -> Timespan:
    """Return the validity range of a dark: from its start to the next dark's start (or forever)."""
    later = [t for t in starts if t > begin]
    return Timespan(begin, min(later) if later else None)
