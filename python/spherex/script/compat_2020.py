"""The 2020 proof of concept's Python entry point for ingest, ``ingestSimulated``.

A thin wrapper over `spherex.script.ingest.simulated` keeping the 2020 signature.
"""

from __future__ import annotations

__all__ = ["ingestSimulated"]

from collections.abc import Sequence
from typing import TYPE_CHECKING

from .ingest.simulated import ingest_simulated

if TYPE_CHECKING:
    from lsst.daf.butler import Butler

    from .ingest.simulated import IngestReport


def ingestSimulated(  # noqa: N802 - the 2020 name
    repo: str | Butler,
    locations: Sequence[str],
    regex: str | None,
    output_run: str | None,
    transfer: str | None = "auto",
    ingest_type: str = "rawexp",
) -> IngestReport:
    """Ingest simulated files, with the arguments of the 2020 ``ingestSimulated``.

    Parameters
    ----------
    repo : `str` or `lsst.daf.butler.Butler`
        Repository (path or URI) or a writeable Butler.
    locations : `~collections.abc.Sequence` [`str`]
        Files and directories (searched recursively) to ingest.
    regex : `str` or `None`
        Regular expression searched for in file names; `None` for the default of `ingest_simulated`.
    output_run : `str` or `None`
        Collection to ingest into; `None` for ``{ingest_type}r``, as in 2020.
    transfer : `str` or `None`, optional
        Transfer mode (``auto``, ``copy``, ``symlink``, ``relsymlink``, ``hardlink``, ``move``,
        ``direct``).
    ingest_type : `str`, optional
        ``rawexp`` or ``dark``.

    Returns
    -------
    report : `IngestReport`
        What landed and what failed (the 2020 function returned `None` and logged failures).

    Raises
    ------
    Exception
        What `ingest_simulated` raises (unreadable repository, bad run name, ...).
    """
    options = {} if regex is None else {"regex": regex}
    return ingest_simulated(
        repo, list(locations), ingest_type=ingest_type, run=output_run, transfer=transfer, **options
    )
