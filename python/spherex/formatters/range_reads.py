"""Reading parts of a remote file (S3, HTTP) by byte ranges, for component reads and cutouts."""

from __future__ import annotations

__all__ = ["DEFAULT_RANGE_BUFFER_SIZE", "MAX_SEQUENTIAL_BLOCK", "RangeReadStream", "open_byte_ranges"]

import contextlib
import io
import os
from collections.abc import Iterator

from lsst.resources import ResourcePath

from ..archive import RangeFetcher, allow_anonymous, range_fetcher

DEFAULT_RANGE_BUFFER_SIZE = 16 * 1024
"""Bytes fetched by the first request of a small read (`int`).

FITS headers are read 2880 bytes at a time, one request per HDU: 16 KiB hold a Level-2 plane's header
(9 to 69 cards), and the 509-card PSF header takes a second request of twice the size
(`MAX_SEQUENTIAL_BLOCK`).  A 32 x 32 cutout of a 512 x 512 Level-2 file so reads 4.6% of it.
"""

MAX_SEQUENTIAL_BLOCK = 1024 * 1024
"""Largest request of a run of reads that each go on where the last ended (`int`)."""


class RangeReadStream(io.RawIOBase):
    """A seekable, read-only stream over a remote file that reads it by checked byte ranges.

    Parameters
    ----------
    fetcher : `spherex.archive.RangeFetcher`
        Fetches, checks and retries the ranges (`spherex.archive.range_fetcher`).
    block_size : `int`, optional
        Bytes fetched by one request for a small read.

    Notes
    -----
    The last block fetched is kept: FITS headers (read 2880 bytes at a time) and the rows of a cutout
    (one read per row, after a seek) are served from it, so that a cutout costs about one request per
    ``block_size`` bytes it spans.  Reads that go on where the last block ended (a long header) fetch
    twice as much each time, up to `MAX_SEQUENTIAL_BLOCK`.  A read larger than the block is one request
    of exactly its size: reading one HDU's pixels fetches those bytes and nothing else.
    `io.BufferedReader` does not serve here: astropy seeks before every row, and each seek empties its
    buffer.
    """

    def __init__(self, fetcher: RangeFetcher, block_size: int = DEFAULT_RANGE_BUFFER_SIZE) -> None:
        super().__init__()
        self.fetcher = fetcher
        self._name = fetcher.url
        self._block_size = self._next_block = block_size
        self._position = 0
        self._block_start = 0
        self._block = b""

    @property
    def name(self) -> str:
        """The URI read, for messages (`str`)."""
        return self._name

    @property
    def requests(self) -> int:
        """Requests sent so far, retries included (`int`)."""
        return self.fetcher.requests

    def readable(self) -> bool:  # noqa: D102
        return True

    def seekable(self) -> bool:  # noqa: D102
        return True

    def tell(self) -> int:  # noqa: D102
        return self._position

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:  # noqa: D102
        if whence == os.SEEK_SET:
            position = offset
        elif whence == os.SEEK_CUR:
            position = self._position + offset
        elif whence == os.SEEK_END:
            position = self._get_size() + offset
        else:
            raise ValueError(f"invalid whence ({whence!r}) seeking in {self._name}")
        if position < 0:
            raise OSError(f"negative seek position {position} in {self._name}")
        self._position = position
        return position

    def _get_size(self) -> int:
        if self.fetcher.size < 0 and not self._block:
            # The first block's Content-Range gives the size, through the fetcher's checks and retries.
            self._block, self._block_start = self.fetcher.fetch(0, self._block_size), 0
        if self.fetcher.size < 0:
            self.fetcher.size = self.fetcher.uri.size()
        return self.fetcher.size

    def readinto(self, buffer: memoryview | bytearray) -> int:  # noqa: D102
        wanted = len(buffer)
        start = self._position
        size = self.fetcher.size
        if wanted == 0 or (size >= 0 and start >= size):
            return 0
        offset = start - self._block_start
        if not (0 <= offset and offset + wanted <= len(self._block)):
            sequential = self._block and 0 <= offset <= len(self._block)
            grown = min(2 * self._next_block, MAX_SEQUENTIAL_BLOCK)
            self._next_block = grown if sequential else self._block_size
            self._block = self.fetcher.fetch(start, max(wanted, self._next_block))
            self._block_start, offset = start, 0
        data = self._block[offset : offset + wanted]
        count = len(data)
        buffer[:count] = data
        self._position += count
        return count

    def pread(self, size: int, offset: int) -> bytes:
        """Return ``size`` bytes from ``offset`` (fewer at the end), through the block kept; moves the
        position, like ``seek`` then ``read``.
        """
        self.seek(offset)
        return self.read(size)

    def read_at(self, buffer: memoryview | bytearray, offset: int) -> int:
        """Read into ``buffer`` from ``offset`` with one request; safe to call from several threads.

        The ranges of several planes are then in flight at once
        (`spherex.core.fits.file_reader.range_concurrency`).

        Returns
        -------
        count : `int`
            Bytes read (fewer only at the end of the file).
        """
        data = self.fetcher.fetch(offset, len(buffer))
        buffer[: len(data)] = data
        return len(data)


@contextlib.contextmanager
def open_byte_ranges(
    uri: ResourcePath, size: int = -1, block_size: int = DEFAULT_RANGE_BUFFER_SIZE
) -> Iterator[RangeReadStream]:
    """Open a remote file for reading parts of it, without downloading it.

    Parameters
    ----------
    uri : `lsst.resources.ResourcePath`
        The file: ``s3://`` (anonymously for public buckets, `spherex.archive.s3`), ``https://`` or any
        scheme whose handles read by ranges.
    size : `int`, optional
        Its size if known (the datastore records it), else ``-1``: an answer giving another size is
        reported as a file changed since it was registered.
    block_size : `int`, optional
        Bytes fetched by one request for a small read.

    Yields
    ------
    stream : `RangeReadStream`
        A seekable binary stream that astropy's `~astropy.io.fits.open` accepts; its ``name`` is the
        URI.

    Raises
    ------
    FileNotFoundError
        Raised if the file does not exist (on the first read).
    spherex.archive.RemoteReadError
        Raised (on a read) if the file changed, or its bytes could not be read after retries.
    """
    with RangeReadStream(range_fetcher(allow_anonymous(uri), size), block_size) as stream:
        yield stream
