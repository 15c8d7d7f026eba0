"""Reading the observation metadata of the files an ingest found, file by file.

A file whose name or headers are wrong fails alone, by name, whatever astropy, ERFA or wcslib raise on
the way (a card astropy cannot parse, a date ERFA refuses); the other files of the batch are read on,
and the good files of its exposure land without it, as they would if it were missing (IRSA serves
exposures with fewer than six arrays as a matter of course).  Ingesting it again once mended adds it to
its exposure.
"""

from __future__ import annotations

__all__ = ["ObservationGroups", "read_observations"]

import warnings
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from astropy.utils.exceptions import AstropyWarning
from erfa import ErfaWarning
from lsst.daf.butler.progress import Progress
from lsst.resources import ResourcePath

from ...archive import RemoteReadError
from ...instrument import FileMetadataError, ObservationMetadata
from .report import IngestReport, display_name
from .sources import CheckedSources, regular_file_state

Identify = Callable[[ResourcePath, str], tuple[str, int | None]]
"""Return the RUN collection and, if the name tells it, the exposure id of a file (or raise
`~spherex.instrument.FileMetadataError`)."""

Read = Callable[[ResourcePath, str], ObservationMetadata]
"""Read and check one file's metadata (or raise `~spherex.instrument.FileMetadataError`)."""


@dataclass
class ObservationGroups:
    """The good files' metadata by RUN collection and exposure, and the RUNs that had a bad file."""

    sources: CheckedSources = field(default_factory=CheckedSources)
    by_run: dict[str, dict[int, list[ObservationMetadata]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(list))
    )
    failed_runs: set[str] = field(default_factory=set)

    def prune(self, report: IngestReport) -> None:
        """Drop every exposure with two files for one detector: which of them is the exposure's is unknown.

        An exposure with a bad file is kept: its good files land, as they would if the bad one were
        missing.
        """
        for by_exposure in self.by_run.values():
            for exposure in sorted(by_exposure):
                detectors = [obs.detector for obs in by_exposure[exposure]]
                if len(set(detectors)) != len(detectors):
                    for obs in by_exposure.pop(exposure):
                        report.fail(
                            obs.path,
                            f"exposure {exposure} has more than one file for detector {obs.detector}",
                        )


def read_observations(
    files: Sequence[ResourcePath],
    identify: Identify,
    read: Read,
    progress: Progress,
    report: IngestReport,
) -> ObservationGroups:
    """Read every file's metadata; each bad file goes to ``report`` with its reason.

    Parameters
    ----------
    files : `~collections.abc.Sequence` [`lsst.resources.ResourcePath`]
        Files found by `~spherex.script.ingest.sources.find_files`.
    identify : `~collections.abc.Callable`
        Gives a file's RUN collection and, when its name says it, its exposure id (named in the
        report of a file whose headers are bad).
    read : `~collections.abc.Callable`
        Reads and checks one local or remote file, given its name for messages.
    progress : `lsst.daf.butler.progress.Progress`
        Progress reporting.
    report : `IngestReport`
        Receives the failures.

    Returns
    -------
    groups : `ObservationGroups`
        The good files, grouped, with each file's state when it was checked.
    """
    groups = ObservationGroups()
    for uri in progress.wrap(files, desc="Reading headers"):
        name = display_name(uri)
        run: str | None = None
        exposure: int | None = None
        try:
            run, exposure = identify(uri, name)
            state = regular_file_state(uri, name)
            with warnings.catch_warnings():
                # The error raised says what is wrong once; astropy's and erfa's warnings on the way
                # (dubious year, WCS fixes, truncation) would repeat it in other words.
                warnings.simplefilter("ignore", AstropyWarning)
                warnings.simplefilter("ignore", ErfaWarning)
                obs = read(uri, name)
            if state is not None and regular_file_state(uri, name) != state:
                raise FileMetadataError(name, "changed while it was being checked; run the ingest again")
        except FileMetadataError as err:
            _failed(groups, report, err.path, err.problem, run, exposure)
            continue
        except (RemoteReadError, FileNotFoundError, PermissionError) as err:
            # An archive that failed after retries, a file gone or refused: their own words, named once.
            _failed(groups, report, name, str(err).removeprefix(f"{name}: "), run, exposure)
            continue
        except Exception as err:
            # Whatever a hostile file makes astropy, ERFA or wcslib raise fails that file alone.
            problem = f"cannot read the file ({type(err).__name__}: {err})"
            _failed(groups, report, name, problem, run, exposure)
            continue
        groups.sources.add(uri, obs.path, state)
        groups.by_run[run][obs.exposure].append(obs)
    return groups


def _failed(
    groups: ObservationGroups,
    report: IngestReport,
    name: str,
    problem: str,
    run: str | None,
    exposure: int | None,
) -> None:
    report.fail(name, problem if exposure is None else f"{problem} (exposure {exposure})")
    if run is not None:
        groups.failed_runs.add(run)
