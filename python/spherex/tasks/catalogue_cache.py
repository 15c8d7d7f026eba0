"""Target catalogues read once per process, however many quanta of a graph use them.

A ``spectroTargets`` catalogue is one small Parquet file per ``healpix7`` pixel; a full SPHEREx array
(3.5 degrees) overlaps ~50 of them, the arrays behind one dichroic see the same ones, and the gathering
quantum reads them all again.  Executed in one process (``spherex-spectrum``, ``pipetask run -j 1``),
each catalogue is read from the Butler once and served from memory after that.  A dataset is immutable
and its UUID is never reused (``butler.put`` gives each a random one), so the cache cannot serve a stale
table; the quantum still records every catalogue as an input of its provenance.
"""

from __future__ import annotations

__all__ = ["CatalogueCache", "TARGET_CATALOGUES"]

import threading
import uuid
from collections import OrderedDict
from collections.abc import Sequence

from astropy.table import Table
from lsst.daf.butler import DatasetRef
from lsst.pipe.base import QuantumContext


class CatalogueCache:
    """Tables by dataset UUID, the least recently used dropped beyond ``max_rows`` rows in all.

    Parameters
    ----------
    max_rows : `int`
        Rows kept in all (a target row is ~100 bytes: the default holds ~100 MB).
    """

    def __init__(self, max_rows: int = 1_000_000) -> None:
        self.max_rows = max_rows
        self._tables: OrderedDict[uuid.UUID, Table] = OrderedDict()
        self._rows = 0
        self._lock = threading.Lock()
        self.reads = 0
        """Catalogues read from the Butler (`int`), for tests and benchmarks."""

    def get(self, butlerQC: QuantumContext, refs: Sequence[DatasetRef]) -> list[Table]:
        """Return the catalogues of ``refs``, reading through ``butlerQC`` those not held.

        Parameters
        ----------
        butlerQC : `lsst.pipe.base.QuantumContext`
            The quantum's Butler access; every ref is recorded as an input of its provenance.
        refs : `~collections.abc.Sequence` [`lsst.daf.butler.DatasetRef`]
            Inputs of the quantum.

        Returns
        -------
        tables : `list` [`astropy.table.Table`]
            In the order of ``refs``; shared, not copied: callers must not modify them.
        """
        tables = []
        for ref in refs:
            with self._lock:
                table = self._tables.get(ref.id)
                if table is not None:
                    self._tables.move_to_end(ref.id)
            if table is None:
                table = butlerQC.get(ref)
                self._keep(ref.id, table)
            else:
                butlerQC.dataset_provenance.add_input(ref)
            tables.append(table)
        return tables

    def _keep(self, key: uuid.UUID, table: Table) -> None:
        with self._lock:
            self.reads += 1
            if len(table) > self.max_rows:
                return
            self._tables[key] = table
            self._rows += len(table)
            while self._rows > self.max_rows:
                _, dropped = self._tables.popitem(last=False)
                self._rows -= len(dropped)

    def clear(self) -> None:
        """Forget every table."""
        with self._lock:
            self._tables.clear()
            self._rows = 0


TARGET_CATALOGUES = CatalogueCache()
"""The process's cache of ``spectroTargets`` catalogues (`CatalogueCache`)."""
