"""Where the HDUs of a FITS file are: one scan of its headers, cached per file.

Reading a plane, or a cutout of one, needs the headers of the HDUs and where their data start, not
astropy's `~astropy.io.fits.HDUList` machinery.  `scan_fits_file` reads the headers of a plain local
FITS file (one ``pread`` per 2880-byte block) and computes the data offsets from ``BITPIX``, ``NAXISn``,
``PCOUNT`` and ``GCOUNT`` as the FITS standard defines them.  Files it does not fully understand
(tile-compressed images, random groups, damage of any kind) are left to astropy: it returns `None` and
the reader opens them with `~spherex.core.open_fits`, which checks them and names the problem.

The scan of a file, and what readers derive from it (the parsed WCS, the flag definitions, the
metadata), is cached in memory per file, keyed by path, device, inode, size, and modification and change
times in nanoseconds: a file that is replaced or rewritten gets a new key and is scanned again.
"""

from __future__ import annotations

__all__ = [
    "FitsHdu",
    "FitsLayout",
    "cached_layout",
    "cached_remote_layout",
    "clear_layout_cache",
    "scan_fits_file",
]

import functools
import os
import stat
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from astropy.io import fits

_BLOCK = 2880
_CARD = 80
_MAX_HEADER_BLOCKS = 4096
"""Headers longer than this (11.8 MB) are left to astropy."""
_BITPIX_DTYPES = {
    8: np.dtype("u1"),
    16: np.dtype(">i2"),
    32: np.dtype(">i4"),
    64: np.dtype(">i8"),
    -32: np.dtype(">f4"),
    -64: np.dtype(">f8"),
}
_END_CARD = b"END" + b" " * 77
_CACHE_SIZE = 64
_COMPRESSED_MAGIC = (b"\x1f\x8b", b"BZh", b"PK\x03\x04")


@dataclass(eq=False)
class FitsHdu:
    """One HDU of a FITS file: its header and where its data are.

    Parameters
    ----------
    index : `int`
        Position in the file (0 is the primary HDU).
    name : `str`
        ``EXTNAME`` in upper case; ``PRIMARY`` for the primary HDU, ``""`` for an unnamed extension.
    header : `astropy.io.fits.Header`
        The header as written (for a tile-compressed image, as astropy presents it).
    shape : `tuple` [`int`, ...]
        Data shape in numpy order; ``()`` without data.
    bitpix : `int`
        ``BITPIX`` of the stored pixels.
    is_image : `bool`
        Whether the HDU is an image (primary or ``IMAGE`` extension, or a tile-compressed image).
    data_offset : `int`
        Byte offset of the data in the file; ``-1`` when only astropy knows (compressed planes).
    hdu : `typing.Any`, optional
        The astropy HDU, for files opened with astropy.
    header_offset : `int`
        Byte offset of the header in the file; ``-1`` for files opened with astropy.
    data_size : `int`
        Bytes of data (heap included, padding excluded).
    """

    index: int
    name: str
    header: fits.Header
    shape: tuple[int, ...]
    bitpix: int
    is_image: bool
    data_offset: int = -1
    hdu: Any = None
    header_offset: int = -1
    data_size: int = 0

    @functools.cached_property
    def dtype(self) -> np.dtype | None:
        """The numpy dtype of the stored pixels, big-endian as FITS stores them (`numpy.dtype` or `None`)."""
        return _BITPIX_DTYPES.get(self.bitpix)

    @functools.cached_property
    def raw_readable(self) -> bool:
        """Whether the pixels can be read as stored bytes: plain image data, no scaling or blanks."""
        header = self.header
        return (
            self.data_offset >= 0
            and self.is_image
            and self.dtype is not None
            and "BSCALE" not in header
            and "BZERO" not in header
            and "BLANK" not in header
        )


@dataclass(eq=False)
class FitsLayout:
    """The HDUs of a FITS file, and a memo of what readers derived from their headers.

    Parameters
    ----------
    path : `str`
        File name, for messages.
    hdus : `list` [`FitsHdu`]
        Every HDU, in file order.
    """

    path: str
    hdus: list[FitsHdu]
    memo: dict[str, Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self.by_name: dict[str, FitsHdu] = {}
        for hdu in self.hdus:
            self.by_name.setdefault(hdu.name, hdu)

    def remember(self, key: str, compute: Callable[[], Any]) -> Any:
        """Return a value derived from the headers, computing it once per file.

        Parameters
        ----------
        key : `str`
            What the value is (e.g. ``"wcs"``).
        compute : `~collections.abc.Callable`
            Computes the value from the headers; what it raises propagates and nothing is remembered.

        Returns
        -------
        value : `typing.Any`
            The value.  Shared by every reader of the file: callers copy what they hand out mutable.
        """
        with self._lock:
            if key in self.memo:
                return self.memo[key]
        value = compute()
        with self._lock:
            return self.memo.setdefault(key, value)


def _pread(fd: int | Any, size: int, offset: int) -> bytes:
    """``os.pread`` of a file descriptor, or ``pread`` of a remote file's byte-range stream."""
    return os.pread(fd, size, offset) if isinstance(fd, int) else fd.pread(size, offset)


def scan_fits_file(fd: int | Any, size: int, path: str) -> FitsLayout | None:
    """Read the headers of a plain FITS file and locate the data of every HDU.

    Parameters
    ----------
    fd : `int` or stream
        File descriptor open for reading, or a stream with ``pread(size, offset)`` (a remote file's
        byte ranges, `spherex.formatters.range_reads.RangeReadStream`).
    size : `int`
        File size in bytes.
    path : `str`
        File name, for messages.

    Returns
    -------
    layout : `FitsLayout` or `None`
        `None` when astropy should open the file: it is compressed as a whole, holds a tile-compressed
        image, random groups or an unusual extension, or is damaged in any way (truncated, bad
        ``BITPIX``, no ``END`` card, trailing bytes that are not padding).
    """
    hdus: list[FitsHdu] = []
    offset = 0
    try:
        if size < _BLOCK or _pread(fd, 4, 0).startswith(_COMPRESSED_MAGIC):
            return None
        while offset < size:
            if hdus and not _pread(fd, _BLOCK, offset).strip(b"\0 "):
                # Padding after the last HDU (what astropy tolerates too).
                break
            parsed = _read_header(fd, offset, size)
            if parsed is None:
                return None
            header, data_offset = parsed
            hdu = _describe(len(hdus), header, data_offset)
            if hdu is None:
                return None
            data_bytes = _data_bytes(header, len(hdus) == 0)
            if data_bytes is None:
                return None
            hdu.header_offset, hdu.data_size = offset, data_bytes
            offset = data_offset + -(-data_bytes // _BLOCK) * _BLOCK
            if offset > size:
                return None
            hdus.append(hdu)
    except (OSError, ValueError, KeyError, TypeError, IndexError, UnicodeDecodeError, fits.VerifyError):
        return None
    return FitsLayout(path, hdus) if hdus else None


def _read_header(fd: int | Any, offset: int, size: int) -> tuple[fits.Header, int] | None:
    chunks: list[bytes] = []
    position = offset
    for _ in range(_MAX_HEADER_BLOCKS):
        if position + _BLOCK > size:
            return None
        block = _pread(fd, _BLOCK, position)
        position += _BLOCK
        chunks.append(block)
        for start in range(0, _BLOCK, _CARD):
            if block[start : start + _CARD] == _END_CARD:
                text = b"".join(chunks)[: (len(chunks) - 1) * _BLOCK + start].decode("ascii")
                return fits.Header.fromstring(text), position
    return None


def _describe(index: int, header: fits.Header, data_offset: int) -> FitsHdu | None:
    if index == 0:
        if header.get("SIMPLE") is not True or header.get("GROUPS"):
            return None
        name, is_image = "PRIMARY", True
    else:
        xtension = str(header.get("XTENSION", "")).strip().upper()
        if xtension not in ("IMAGE", "BINTABLE", "TABLE") or header.get("ZIMAGE"):
            # Tile-compressed images are astropy's to decompress.
            return None
        name, is_image = str(header.get("EXTNAME", "")).strip().upper(), xtension == "IMAGE"
    bitpix = header["BITPIX"]
    if isinstance(bitpix, bool) or bitpix not in _BITPIX_DTYPES:
        return None
    naxis = header["NAXIS"]
    if isinstance(naxis, bool) or not isinstance(naxis, int) or not 0 <= naxis <= 999:
        return None
    axes = [header[f"NAXIS{i}"] for i in range(1, naxis + 1)]
    if any(isinstance(n, bool) or not isinstance(n, int) or n < 0 for n in axes):
        return None
    shape = tuple(reversed(axes)) if naxis else ()
    return FitsHdu(index, name, header, shape, bitpix, is_image, data_offset)


def _data_bytes(header: fits.Header, primary: bool) -> int | None:
    """Size of the data of an HDU, as FITS defines it: |BITPIX|/8 x GCOUNT x (PCOUNT + NAXIS1 x ...)."""
    naxis = header["NAXIS"]
    if naxis == 0:
        return 0
    pcount = 0 if primary else header.get("PCOUNT", 0)
    gcount = 1 if primary else header.get("GCOUNT", 1)
    if any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in (pcount, gcount)):
        return None
    count = 1
    for i in range(1, naxis + 1):
        count *= header[f"NAXIS{i}"]
    return abs(header["BITPIX"]) // 8 * gcount * (pcount + count)


class _LayoutCache:
    """Least recently used scans, keyed by what changes when a file is replaced or rewritten."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._entries: OrderedDict[tuple, FitsLayout] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple) -> FitsLayout | None:
        with self._lock:
            layout = self._entries.get(key)
            if layout is not None:
                self._entries.move_to_end(key)
            return layout

    def put(self, key: tuple, layout: FitsLayout) -> None:
        with self._lock:
            self._entries[key] = layout
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_CACHE = _LayoutCache(_CACHE_SIZE)


def cached_layout(fd: int, path: str) -> FitsLayout | None:
    """Return the layout of an open regular file, from the cache when the file has not changed.

    Parameters
    ----------
    fd : `int`
        File descriptor open for reading.
    path : `str`
        The file name it was opened with (part of the key, and for messages).

    Returns
    -------
    layout : `FitsLayout` or `None`
        `None` if the file is not a regular file or `scan_fits_file` leaves it to astropy.
    """
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        return None
    key = (path, info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)
    layout = _CACHE.get(key)
    if layout is None:
        layout = scan_fits_file(fd, info.st_size, path)
        if layout is not None:
            _CACHE.put(key, layout)
    return layout


def cached_remote_layout(stream: Any, size: int, path: str) -> FitsLayout | None:
    """Return the layout of a remote file, scanned once per process and registered size.

    A remote file's headers cost a request per HDU, tens of milliseconds each: read once, they serve
    every later read of the file (the WCS, each cutout).  The key is the URL and the size the datastore
    registered; every range read later still checks that size against the server's.

    Parameters
    ----------
    stream : binary stream
        The file's byte-range stream (``pread(size, offset)``).
    size : `int`
        Its size.
    path : `str`
        Its URL.

    Returns
    -------
    layout : `FitsLayout` or `None`
        As `scan_fits_file`.
    """
    key = ("remote", path, size)
    layout = _CACHE.get(key)
    if layout is None:
        layout = scan_fits_file(stream, size, path)
        if layout is not None:
            _CACHE.put(key, layout)
    return layout


def clear_layout_cache() -> None:
    """Forget every cached scan (benchmarks measure first reads with it; files that change need not)."""
    _CACHE.clear()
