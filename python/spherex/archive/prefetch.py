"""Headers of many remote images read at once, before a pipeline reads them one by one.

A remote Level-2 file's headers cost one request per HDU (seven), each waiting on the archive's
latency, and a pipeline executes its quanta (one image each) in turn.  `prefetch_headers` reads the
headers of all the images a run will use, ``SPHEREX_RANGE_CONCURRENCY`` files at a time, into the
process's layout cache (`spherex.core.fits.layout.cached_remote_layout`), so that each quantum then
waits only for its pixels.
"""

from __future__ import annotations

__all__ = ["prefetch_headers"]

import logging
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

from lsst.resources import ResourcePath

from ..core.fits.file_reader import FitsFileReader, range_concurrency
from ..formatters.range_reads import open_byte_ranges

_LOG = logging.getLogger(__name__)


def _scan(uri: ResourcePath) -> None:
    with open_byte_ranges(uri) as stream, FitsFileReader(stream):
        pass


def prefetch_headers(uris: Iterable[ResourcePath]) -> int:
    """Read the headers of the remote files among ``uris``, several at once.

    Parameters
    ----------
    uris : `~collections.abc.Iterable` [`lsst.resources.ResourcePath`]
        Files a run will read; local ones are left alone.

    Returns
    -------
    count : `int`
        Remote files whose headers are now cached.  A file that cannot be read is logged here and
        skipped: the read that needs it fails later with the same error, naming it.
    """
    remote = sorted({str(u): u for u in uris if not u.isLocal}.values(), key=str)
    if not remote:
        return 0
    done = 0
    with ThreadPoolExecutor(min(len(remote), range_concurrency())) as pool:
        for uri, future in [(uri, pool.submit(_scan, uri)) for uri in remote]:
            try:
                future.result()
                done += 1
            except (OSError, ValueError) as err:
                _LOG.debug("Headers of %s not read ahead (%s); its own read will say why", uri, err)
    return done
