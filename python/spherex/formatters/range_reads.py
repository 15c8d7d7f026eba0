"""Reading parts of a remote file (S3, HTTP) by byte ranges, for component reads and cutouts."""

from __future__ import annotations

__all__ = ["DEFAULT_RANGE_BUFFER_SIZE", "RangeReadStream", "open_byte_ranges"]

import contextlib
import io
import os
import threading
from collections.abc import Iterator
from typing import BinaryIO

from lsst.resources import ResourcePath

DEFAULT_RANGE_BUFFER_SIZE = 64 * 1024
"""Bytes fetched by one request for a small read (`int`).

FITS headers are read 2880 bytes at a time; one 64 KiB request covers every header of a small file, and
the headers of the next HDU of a large one.
"""


class RangeReadStream(io.RawIOBase):
    """A seekable, read-only stream over a `~lsst.resources.ResourcePath` handle that reads by ranges.

    Parameters
    ----------
    handle : `typing.BinaryIO`
        Handle from ``ResourcePath.open("rb")``.  For S3 and HTTP(S) each ``read`` of such a handle is one
        ranged GET of exactly the bytes asked for.
    name : `str`
        The URI, for messages.
    size : `int`, optional
        Size of the resource if known (``-1`` if not); saves a request when a reader seeks to the end.
    block_size : `int`, optional
        Bytes fetched by one request for a small read.

    Notes
    -----
    The last block fetched is kept: FITS headers (read 2880 bytes at a time) and the rows of a cutout
    (one read per row, after a seek) are served from it, so that a cutout costs about one request per
    ``block_size`` bytes it spans.  A read larger than ``block_size`` is one request of exactly its size:
    reading one HDU's pixels fetches those bytes and nothing else.  `io.BufferedReader` does not serve
    here: astropy seeks before every row, and each seek empties its buffer.
    """

    def __init__(
        self,
        handle: BinaryIO,
        name: str,
        size: int = -1,
        block_size: int = DEFAULT_RANGE_BUFFER_SIZE,
        uri: ResourcePath | None = None,
    ) -> None:
        super().__init__()
        self._handle = handle
        self._uri = uri
        self._local = threading.local()
        self._handles = contextlib.ExitStack()
        self._handles_lock = threading.Lock()
        self._name = name
        self._size = size
        self._block_size = block_size
        self._position = 0
        self._block_start = 0
        self._block = b""

    @property
    def name(self) -> str:
        """The URI read, for messages (`str`)."""
        return self._name

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
        if self._size < 0:
            self._size = self._handle.seek(0, os.SEEK_END)
        return self._size

    def readinto(self, buffer: memoryview | bytearray) -> int:  # noqa: D102
        wanted = len(buffer)
        start = self._position
        if wanted == 0 or (self._size >= 0 and start >= self._size):
            return 0
        offset = start - self._block_start
        if not (0 <= offset and offset + wanted <= len(self._block)):
            fetch = max(wanted, self._block_size)
            if self._size >= 0:
                fetch = min(fetch, self._size - start)
            self._handle.seek(start)
            self._block = self._handle.read(fetch)
            self._block_start, offset = start, 0
        data = self._block[offset : offset + wanted]
        count = len(data)
        buffer[:count] = data
        self._position += count
        return count

    def read_at(self, buffer: memoryview | bytearray, offset: int) -> int:
        """Read into ``buffer`` from ``offset`` with one request; safe to call from several threads.

        Each thread reads through a handle of its own (opened on its first call, closed with the
        stream), so that the ranges of several planes are in flight at once
        (`spherex.core.fits.file_reader.range_concurrency`).

        Returns
        -------
        count : `int`
            Bytes read (fewer only at the end of the file).
        """
        handle = getattr(self._local, "handle", None)
        if handle is None:
            if self._uri is None:
                raise OSError(f"{self._name}: concurrent range reads need the stream's URI")
            with self._handles_lock:
                handle = self._handles.enter_context(self._uri.open("rb"))
            self._local.handle = handle
        handle.seek(offset)
        data = handle.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:  # noqa: D102
        self._handles.close()
        super().close()


@contextlib.contextmanager
def open_byte_ranges(
    uri: ResourcePath, size: int = -1, block_size: int = DEFAULT_RANGE_BUFFER_SIZE
) -> Iterator[RangeReadStream]:
    """Open a remote file for reading parts of it, without downloading it.

    Parameters
    ----------
    uri : `lsst.resources.ResourcePath`
        The file: ``s3://``, ``https://`` or any scheme whose handles read by ranges.
    size : `int`, optional
        Its size if known (the datastore records it), else ``-1``.
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
    """
    with uri.open("rb") as handle, RangeReadStream(handle, str(uri), size, block_size, uri) as stream:
        yield stream
