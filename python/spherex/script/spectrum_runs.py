"""The collections of ``spherex-spectrum``: a RUN pair per call, a CHAINED collection pointing at them,
and the clean-up after a call that was killed.

Each call writes its targets to ``<prefix>/targets/<time>`` and its measurements and spectra to
``<prefix>/<time>``; when it has finished, both runs are put at the front of the CHAINED collection
``<prefix>`` (followed by the image collections they were measured from, as ``pipetask -o`` does), so
``<prefix>`` always shows the latest spectra of every target and the runs before it stay reachable.
While a call works, its runs carry a documentation string naming the process; a call killed before it
finished leaves such runs outside the chain, and the next call on the same host removes them once that
process is gone (`recover_spectrum_runs`).
"""

from __future__ import annotations

__all__ = ["VERSIONED_DISTRIBUTIONS", "SpectrumRuns", "recover_spectrum_runs", "write_versions"]

import datetime
import importlib.metadata
import logging
import os
import re
import socket
import sys
from dataclasses import dataclass
from typing import Any

from lsst.daf.butler import Butler, CollectionType, MissingCollectionError

_LOG = logging.getLogger(__name__)

_IN_PROGRESS = "spherex-spectrum in progress: pid {pid} on {host}"
_IN_PROGRESS_RE = re.compile(r"^spherex-spectrum in progress: pid (\d+) on (\S+)$")


@dataclass(frozen=True)
class SpectrumRuns:
    """The two RUN collections of one ``spherex-spectrum`` call and the chain they join."""

    chain: str
    """CHAINED collection of every finished call (``<prefix>``)."""
    target_run: str
    """RUN of the targets (``<prefix>/targets/<time>``)."""
    output_run: str
    """RUN of the measurements and spectra (``<prefix>/<time>``)."""

    @classmethod
    def begin(cls, butler: Butler, prefix: str) -> SpectrumRuns:
        """Name the runs of a new call and register them, marked as in progress by this process.

        Parameters
        ----------
        butler : `lsst.daf.butler.Butler`
            Writeable Butler.
        prefix : `str`
            The chain's name, and the prefix of the runs' names.

        Returns
        -------
        runs : `SpectrumRuns`
            The new runs (registered) and the chain (not changed until `finish`).

        Raises
        ------
        ValueError
            Raised if ``prefix`` names a collection that is not CHAINED.
        """
        _check_chain(butler, prefix)
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%S%fZ")
        runs = cls(prefix, f"{prefix}/targets/{stamp}", f"{prefix}/{stamp}")
        doc = _IN_PROGRESS.format(pid=os.getpid(), host=socket.gethostname())
        for run in (runs.target_run, runs.output_run):
            butler.collections.register(run, CollectionType.RUN, doc=doc)
        return runs

    def finish(self, butler: Butler, inputs: list[str], description: str) -> None:
        """Put the runs at the front of the chain, followed by the inputs it does not hold yet.

        Parameters
        ----------
        butler : `lsst.daf.butler.Butler`
            Writeable Butler.
        inputs : `list` [`str`]
            The image collections measured.
        description : `str`
            What the call did, stored as the runs' documentation in place of the in-progress mark.
        """
        with butler.transaction():
            for run in (self.target_run, self.output_run):
                butler.registry.setCollectionDocumentation(run, description)
            if butler.collections.register(self.chain, CollectionType.CHAINED):
                butler.collections.redefine_chain(self.chain, [self.output_run, self.target_run])
            else:
                butler.collections.prepend_chain(self.chain, [self.output_run, self.target_run])
            held = set(butler.collections.get_info(self.chain).children)
            missing = [name for name in inputs if name not in held]
            if missing:
                butler.collections.extend_chain(self.chain, missing)

    def abandon(self, butler: Butler) -> None:
        """Remove both runs and what they hold (a call that failed leaves nothing behind)."""
        remove_runs(butler, [self.output_run, self.target_run])


def recover_spectrum_runs(butler: Butler, prefix: str) -> list[str]:
    """Remove the runs of ``spherex-spectrum`` calls that were killed before they finished.

    Parameters
    ----------
    butler : `lsst.daf.butler.Butler`
        Writeable Butler.
    prefix : `str`
        The chain's name (``spectra`` by default).

    Returns
    -------
    removed : `list` [`str`]
        The runs removed: those under ``<prefix>/`` that are marked in progress by a process of this
        host that no longer exists.  Runs of a call still working, of another host, or without the mark
        (finished, or written by an earlier version of this package) are left alone.
    """
    host = socket.gethostname()
    dead = []
    for info in butler.collections.query_info(
        f"{prefix}/*", collection_types={CollectionType.RUN}, include_doc=True
    ):
        match = _IN_PROGRESS_RE.match(info.doc or "")
        if match and match[2] == host and not _alive(int(match[1])):
            dead.append(info.name)
    if dead:
        _LOG.warning("Removing the runs of a spherex-spectrum that was killed: %s", ", ".join(dead))
        remove_runs(butler, dead)
    return sorted(dead)


def remove_runs(butler: Butler, runs: list[str]) -> None:
    """Remove the RUN collections that exist of ``runs``, their datasets, and their place in chains."""
    present = []
    for run in runs:
        try:
            butler.collections.get_info(run)
        except MissingCollectionError:
            continue
        present.append(run)
    if present:
        butler.removeRuns(present, unlink_from_chains=True)


def _check_chain(butler: Butler, name: str) -> None:
    try:
        info = butler.collections.get_info(name)
    except MissingCollectionError:
        return
    if info.type is not CollectionType.CHAINED:
        raise ValueError(
            f"Collection {name!r} is a {info.type.name} collection; spherex-spectrum keeps a CHAINED "
            "collection of that name (choose another run prefix)"
        )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


VERSIONED_DISTRIBUTIONS = (
    "spherex-butler-poc", "lsst-daf-butler", "lsst-pipe-base", "lsst-ctrl-mpexec", "lsst-resources",
    "lsst-utils", "lsst-pex-config", "lsst-sphgeom", "astropy", "numpy", "pyarrow", "sqlalchemy",
)  # fmt: skip
"""Distributions whose versions a ``spherex-spectrum`` run records in its ``packages`` dataset."""


def write_versions(executor: Any) -> dict[str, str]:
    """Write the ``packages`` dataset of a run: the versions of what computes and stores its results.

    pipe_base's own recording (``save_versions``) walks every module imported and every installed
    distribution (0.3-0.4 s per call on a 2-core machine, longer than measuring an image); the
    distributions that compute and store spectra are named here instead, and found in microseconds.
    Each quantum's ``*_metadata`` and the tasks' ``*_config`` datasets are written as always.

    Parameters
    ----------
    executor : `lsst.pipe.base.simple_pipeline_executor.SimplePipelineExecutor`
        The executor, run with ``save_versions=False``.

    Returns
    -------
    versions : `dict` [`str`, `str`]
        What was written: ``python`` and each of `VERSIONED_DISTRIBUTIONS` installed.
    """
    from lsst.utils.packages import Packages

    versions = {"python": sys.version}
    for name in VERSIONED_DISTRIBUTIONS:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    (ref,) = executor.predicted.get_init_outputs("").values()
    executor.butler.put(Packages(versions), ref)
    return versions
