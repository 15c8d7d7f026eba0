"""Recovering a pipeline output collection after ``pipetask run`` was killed.

``pipetask run -o OUTPUT`` registers a RUN ``OUTPUT/<timestamp>`` and an empty CHAINED collection
``OUTPUT``, then fills the chain.  Killed in between, it leaves an empty chain, on which both
``--extend-run`` ("non-existing or empty output chain") and ``--replace-run`` (an IndexError) fail.  A
process killed while a dataset was being written also leaves that file's temporary
(``<random>.tmp.fits``) beside where the dataset would have gone.
"""

from __future__ import annotations

__all__ = ["OutputState", "inspect_pipeline_output", "recover_pipeline_output"]

import enum
import glob
import logging
import os
import re
from dataclasses import dataclass, field

from lsst.daf.butler import Butler, CollectionType, MissingCollectionError, MissingDatasetTypeError

_LOG = logging.getLogger(__name__)

# daf_butler's TemporaryForIngest names a temporary 16 random characters + ".tmp" + the extension.
_TEMPORARY = re.compile(r"^[a-z0-9_]{16}\.tmp(\.[A-Za-z0-9]+)*$")


class OutputState(enum.Enum):
    """What a pipeline output collection is, and so which ``pipetask run`` options work on it."""

    ABSENT = "absent"
    """No collection: run as the first time (``-i INPUTS -o OUTPUT``)."""
    EMPTY_CHAIN = "empty chain"
    """A chain without runs (pipetask was killed before filling it): remove it, then run as the first
    time; ``--extend-run`` and ``--replace-run`` fail on it."""
    CHAIN = "chain"
    """A chain with its runs: ``--extend-run --skip-existing --clobber-outputs`` completes the last run
    in place, ``--replace-run --prune-replaced=purge`` redoes it."""
    NOT_A_CHAIN = "not a chain"
    """Another kind of collection: pipetask refuses it as an output."""


@dataclass
class OutputInspection:
    """The state of a pipeline output collection and what a killed ``pipetask run`` left behind."""

    output: str
    state: OutputState
    orphan_runs: list[str] = field(default_factory=list)
    """``OUTPUT/...`` RUN collections no chain holds, left by a pipetask killed before it filled the
    chain (only when the chain is absent or empty)."""
    temporaries: list[str] = field(default_factory=list)
    """Temporary files of interrupted writes under the output's runs."""

    def describe(self) -> list[str]:
        """Return one line per kind of leftover (none if nothing was left behind)."""
        lines = []
        if self.temporaries:
            lines.append(f"{len(self.temporaries)} temporary file(s) of interrupted writes (*.tmp.fits)")
        if self.orphan_runs:
            lines.append(
                f"run(s) of a pipetask killed before it filled the chain {self.output}: "
                + ", ".join(self.orphan_runs)
            )
        return lines


def inspect_pipeline_output(butler: Butler, output: str) -> OutputInspection:
    """Return the state of ``output`` and the leftovers of killed runs, without changing anything.

    Parameters
    ----------
    butler : `lsst.daf.butler.Butler`
        Butler on the repository.
    output : `str`
        The ``-o`` collection of ``pipetask run``.

    Returns
    -------
    inspection : `OutputInspection`
        The state, orphan runs and temporary files.
    """
    try:
        info = butler.collections.get_info(output)
    except MissingCollectionError:
        state = OutputState.ABSENT
        chained: tuple[str, ...] = ()
    else:
        chained = tuple(info.children) if info.type is CollectionType.CHAINED else ()
        if info.type is not CollectionType.CHAINED:
            state = OutputState.NOT_A_CHAIN
        else:
            state = OutputState.CHAIN if chained else OutputState.EMPTY_CHAIN
    own_runs = [
        name
        for name in butler.collections.query(f"{output}/*", collection_types={CollectionType.RUN})
        if name.startswith(f"{output}/")
    ]
    orphans = sorted(own_runs) if state in (OutputState.ABSENT, OutputState.EMPTY_CHAIN) else []
    inspection = OutputInspection(output, state, orphans)
    inspection.temporaries = _temporaries(butler, sorted(set(own_runs) | set(chained)))
    return inspection


def _temporaries(butler: Butler, runs: list[str]) -> list[str]:
    found: list[str] = []
    for root in butler.get_datastore_roots().values():
        if root is None or not root.isLocal:
            continue  # remote writes use true temporary files, which are not left in the datastore
        for run in runs:
            top = os.path.join(root.ospath, run)
            for path in glob.glob(os.path.join(glob.escape(top), "**", "*.tmp*"), recursive=True):
                if _TEMPORARY.match(os.path.basename(path)) and os.path.isfile(path):
                    found.append(path)
    return sorted(found)


def recover_pipeline_output(repo: str, output: str) -> OutputInspection:
    """Clean what a killed ``pipetask run`` left in ``output``, so that the next run works.

    Removes the temporary files of interrupted writes and, when pipetask was killed before it filled the
    output chain, that empty chain and its orphan runs (which hold at most the first datasets of a run
    that never became visible through the chain).  Nothing that a complete chain holds is touched.

    Parameters
    ----------
    repo : `str`
        Repository.
    output : `str`
        The ``-o`` collection of ``pipetask run``.

    Returns
    -------
    inspection : `OutputInspection`
        What was found (and cleaned), with the state after cleaning: `OutputState.ABSENT` (run as the
        first time), `OutputState.CHAIN` (extend or replace the run) or `OutputState.NOT_A_CHAIN`.

    Notes
    -----
    Run it only when no ``pipetask run`` is writing into ``output``: a running pipetask's temporaries
    and not-yet-chained run look the same as a killed one's.
    """
    with Butler.from_config(repo, writeable=True) as butler:
        found = inspect_pipeline_output(butler, output)
        for path in found.temporaries:
            _LOG.info("Removing %s, left by an interrupted write", path)
            os.remove(path)
        if found.state is OutputState.EMPTY_CHAIN:
            _LOG.info("Removing the empty output chain %s left by a killed pipetask", output)
            butler.registry.removeCollection(output)
        if found.orphan_runs:
            _LOG.info("Removing runs no chain holds: %s", ", ".join(found.orphan_runs))
            try:
                butler.removeRuns(found.orphan_runs)
            except MissingDatasetTypeError:
                # No dataset type is registered yet (pipetask was killed before registering them), so
                # the runs hold no datasets; daf_butler's removeRuns cannot query them.
                for run in found.orphan_runs:
                    butler.registry.removeCollection(run)
        after = inspect_pipeline_output(butler, output)
    after.orphan_runs, after.temporaries = found.orphan_runs, found.temporaries
    if found.state is OutputState.EMPTY_CHAIN:
        after.state = OutputState.ABSENT
    return after
