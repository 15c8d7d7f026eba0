"""Reading the HDUs of a FITS file: one open, one header scan (cached), direct reads of plain planes."""

from __future__ import annotations

__all__ = ["REMOTE_MERGE_BYTES", "FitsFileReader", "HduView", "range_concurrency"]

import contextlib
import io
import os
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, BinaryIO, Self

import numpy as np
from astropy.io import fits

from ..errors import FitsLayoutError, RemoteReadError, SPHERExImageError
from .file import PARSE_ERRORS, open_fits
from .layout import FitsHdu, FitsLayout, cached_layout, cached_remote_layout
from .pixels import RowBlocks, merge_row_ranges, read_into_array, read_raw_pixels

REMOTE_MERGE_BYTES = 256 * 1024
"""Rows of a remote file's plane less than this many bytes apart are fetched by one request (`int`).

A request to an object store or HTTP server costs ~30 ms before its first byte, but up to
`range_concurrency` of them are in flight at once: a gap is worth fetching when it arrives sooner than
an eighth of a round trip, ~200 kB at 50 MB/s.  The same rule merges the PSF zones of a cutout.
"""


def range_concurrency() -> int:
    """Return how many range requests of one file may be in flight at once (`int`).

    ``SPHEREX_RANGE_CONCURRENCY`` (default 8, 1 to 64): a remote cutout waits on latency, not
    bandwidth, so the row ranges of all planes of an image are fetched together.

    Raises
    ------
    ValueError
        Raised if the variable is set to anything but a whole number from 1 to 64.
    """
    text = os.environ.get("SPHEREX_RANGE_CONCURRENCY", "8")
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 64:
        raise ValueError(f"SPHEREX_RANGE_CONCURRENCY={text!r}: give a whole number of requests from 1 to 64")
    return value


class FitsFileReader:
    """Open a FITS file once and read its HDUs, plain image planes straight from the file.

    A plain local file is opened with `os.open` and its headers scanned by
    `~spherex.core.fits.layout.scan_fits_file` (the scan cached per file); its plain planes are read
    with one positioned read each (`read_hdu_pixels`).  Tile-compressed or damaged files, streams, and
    files opened with ``open_kwargs`` are opened by astropy (`~spherex.core.open_fits`, which checks them
    and names what is wrong).  Use as a context manager, or call `close`.

    Parameters
    ----------
    path : `str`, `os.PathLike` or file-like
        File to read; an open plain file (as astropy's I/O registry passes) is read by name.
    open_kwargs : `~collections.abc.Mapping`, optional
        Keyword arguments for `astropy.io.fits.open` (the file is then read through astropy).

    Raises
    ------
    FileNotFoundError
        Raised if ``path`` does not exist.
    FitsLayoutError
        Raised if the file is not FITS, is truncated or is damaged.
    """

    def __init__(
        self, path: str | os.PathLike | BinaryIO, *, open_kwargs: Mapping[str, Any] | None = None
    ) -> None:
        self._source = path
        self._open_kwargs = dict(open_kwargs or {})
        self._hdul: fits.HDUList | None = None
        self._fd: int | None = None
        layout = None
        name = getattr(path, "name", None)
        if isinstance(path, io.FileIO | io.BufferedReader) and isinstance(name, str):
            path = self._source = name
        if not self._open_kwargs and not hasattr(path, "read"):
            self.path = os.fspath(path)
            # O_NONBLOCK: opening a FIFO must not wait for a writer (astropy then reports it).
            fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
            try:
                layout = cached_layout(fd, self.path)
            finally:
                if layout is None:
                    os.close(fd)
            if layout is not None:
                self._fd = fd
        elif not self._open_kwargs and hasattr(path, "read_at") and hasattr(path, "pread"):
            # A remote file: its headers scanned by byte ranges, once per process (cached_remote_layout).
            self.path = str(path.name)
            layout = cached_remote_layout(path, path.seek(0, os.SEEK_END), self.path)
        if layout is None:
            self._hdul, self.path = open_fits(path, **{"memmap": False, **self._open_kwargs})
            layout = _layout_from_hdulist(self._hdul, self.path)
        self._layout = layout
        self._hdus_by_name: _HduMapping | None = None
        self._row_blocks: RowBlocks | None = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the file."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._hdul is not None:
            self._hdul.close()

    @property
    def hdul(self) -> fits.HDUList:
        """The file opened by astropy (`astropy.io.fits.HDUList`, opened on first use)."""
        if self._hdul is None:
            # No memory map: astropy refuses to map planes with BSCALE, BZERO or BLANK, the planes this
            # path serves (plain planes are read directly); sections read only what they need anyway.
            self._hdul, _ = open_fits(self._source, **{"memmap": False, **self._open_kwargs})
        return self._hdul

    @property
    def is_remote(self) -> bool:
        """Whether the file is a remote one read by byte ranges (a stream with ``read_at``)."""
        return self._fd is None and hasattr(self._source, "read_at")

    @property
    def hdus(self) -> Sequence[FitsHdu]:
        """Every HDU of the file with its header, in file order (`~collections.abc.Sequence`)."""
        return self._layout.hdus

    @property
    def _by_name(self) -> Mapping[str, Any]:
        """The first HDU of each ``EXTNAME`` as an astropy HDU, each read alone on first use.

        For subclasses written against astropy's `~astropy.io.fits.HDUList` (tables, cubes): each HDU
        asked for is read by `read_hdu`, not the whole file parsed by astropy.
        """
        if self._hdus_by_name is None:
            self._hdus_by_name = _HduMapping(self)
        return self._hdus_by_name

    @property
    def primary_header(self) -> fits.Header:
        """Header of the primary HDU (`astropy.io.fits.Header`)."""
        return self._layout.hdus[0].header

    def hdu_named(self, name: str) -> FitsHdu | None:
        """Return the first extension (not the primary HDU) with an ``EXTNAME``.

        Parameters
        ----------
        name : `str`
            ``EXTNAME``, any case.

        Returns
        -------
        hdu : `FitsHdu` or `None`
            `None` if the file has no such extension.
        """
        hdu = self._layout.by_name.get(name.upper())
        return hdu if hdu is not None and hdu.index > 0 else None

    def remember(self, key: str, compute: Callable[[], Any]) -> Any:
        """Return a value derived from the headers, computed once per file (see `FitsLayout.remember`).

        Parameters
        ----------
        key : `str`
            What the value is, and from which HDU (e.g. ``"wcs:1"``); values for this class's planes
            carry the HDU index in their key, so that readers of one file with other options agree.
        compute : `~collections.abc.Callable`
            Computes the value.

        Returns
        -------
        value : `typing.Any`
            Shared by every reader of the same file: copy it before handing out anything mutable.
        """
        return self._layout.remember(key, compute)

    def read_hdu_pixels(self, hdu: FitsHdu | Any, slices: tuple[slice, ...] | None) -> np.ndarray:
        """Read the pixels of an image HDU, or a cutout of them.

        Parameters
        ----------
        hdu : `FitsHdu` or astropy HDU
            The plane.
        slices : `tuple` [`slice`, ...] or `None`
            Normalized cutout (`normalize_slices`), or `None` for the whole plane.

        Returns
        -------
        pixels : `numpy.ndarray`
            As stored (big-endian) for plain planes; scaled by astropy for planes with ``BSCALE``,
            ``BZERO`` or ``BLANK``; decompressed for tile-compressed planes.

        Raises
        ------
        FitsLayoutError
            Raised if the pixels cannot be read (damaged or truncated file).
        """
        if isinstance(hdu, HduView):
            hdu = hdu.fits_hdu
        if self._row_blocks is not None and isinstance(hdu, FitsHdu):
            pixels = self._row_blocks.cut(hdu, slices)
            if pixels is not None:
                return pixels
        if isinstance(hdu, FitsHdu):
            raw = self._fd if self._fd is not None else self._source if self.is_remote else None
            if raw is not None and hdu.raw_readable:
                # Locally one positioned read; remotely one ranged request of the rows spanned.
                return read_raw_pixels(raw, hdu, slices, self.path)
            hdu = hdu.hdu if hdu.hdu is not None else self.hdul[hdu.index]
        try:
            if slices is None:
                data = hdu.data
                # Whole planes never depend on the file staying in place (a memory map would).
                return np.array(data) if self._open_kwargs.get("memmap") else data
            return np.asarray(hdu.section[slices])
        except RemoteReadError:
            raise
        except PARSE_ERRORS as err:
            raise FitsLayoutError(self.path, f"cannot read the pixels of HDU {hdu.name} ({err})") from err

    _read_pixels = read_hdu_pixels

    @contextlib.contextmanager
    def rows_read_once(
        self, hdus: Sequence[FitsHdu | None], boxes: Sequence[tuple[slice, ...]]
    ) -> Iterator[None]:
        """Read the rows of many cutouts of plain 2-d planes in one pass; cut them from memory meanwhile.

        Inside the block, `read_hdu_pixels` of any of ``boxes`` on these planes is served from the rows
        read: one positioned read (a local file) or one ranged read (a remote stream) per merged row range
        and plane, whatever the number of cutouts.  Other planes (tile-compressed, scaled) are read as
        before, cutout by cutout.

        Parameters
        ----------
        hdus : `~collections.abc.Sequence` [`FitsHdu` or `None`]
            Planes to read (`None` entries, planes the file lacks, are skipped).
        boxes : `~collections.abc.Sequence` [`tuple` [`slice`, ...]]
            Normalized cutouts (`~spherex.core.fits.pixels.normalize_slices`).
        """
        read_into = self._raw_read_into()
        planes = [h for h in hdus if h is not None and h.raw_readable and len(h.shape) == 2]
        if read_into is None or not planes or not boxes:
            yield
            return
        blocks = RowBlocks(read_into)
        # A remote file: each range is a request (tens of ms away), so ranges closer than
        # REMOTE_MERGE_BYTES are read as one; locally a positioned read costs microseconds.
        row_bytes = max(h.shape[1] * h.dtype.itemsize for h in planes)
        gap = 0 if self._fd is not None else REMOTE_MERGE_BYTES // row_bytes
        ranges = merge_row_ranges(boxes, gap=gap)
        if self._fd is not None and hasattr(os, "posix_fadvise"):
            os.posix_fadvise(self._fd, 0, 0, os.POSIX_FADV_RANDOM)
            for hdu in planes:  # every plane's rows requested of storage at once (cold caches)
                row_bytes = hdu.shape[1] * hdu.dtype.itemsize
                for start, stop in ranges:
                    offset = hdu.data_offset + start * row_bytes
                    os.posix_fadvise(self._fd, offset, (stop - start) * row_bytes, os.POSIX_FADV_WILLNEED)
        concurrency = range_concurrency() if self.is_remote else 1
        blocks.load(planes, ranges, concurrency)
        self._row_blocks = blocks
        try:
            yield
        finally:
            self._row_blocks = None

    def _raw_read_into(self) -> Callable[[np.ndarray, int, FitsHdu], None] | None:
        """Return what fills an array from a byte offset of this file, or `None` if it cannot."""
        if self._fd is not None:
            fd = self._fd
            return lambda array, offset, hdu: read_into_array(fd, array, offset, self.path, hdu)
        source = self._source
        if hasattr(source, "readinto") and hasattr(source, "seek"):
            return lambda array, offset, hdu: read_into_array(source, array, offset, self.path, hdu)
        return None

    def read_hdu(self, hdu: FitsHdu | HduView) -> Any:
        """Read one whole HDU (header and data) as an astropy HDU, without parsing the others.

        For tables and cubes of richer layouts (the Level-2 ``PSF`` and ``WCS-WAVE``): one read of that
        HDU's bytes, where the astropy `hdul` would parse every header of the file.

        Parameters
        ----------
        hdu : `FitsHdu`
            The HDU, from `hdus` or `hdu_named`.

        Returns
        -------
        hdu : `astropy.io.fits.PrimaryHDU`, `astropy.io.fits.ImageHDU` or `astropy.io.fits.BinTableHDU`
            Its data in memory, independent of the file.

        Raises
        ------
        FitsLayoutError
            Raised if the HDU cannot be read.
        """
        if isinstance(hdu, HduView):
            hdu = hdu.fits_hdu
        if (self._fd is None and not self.is_remote) or hdu.header_offset < 0:
            return hdu.hdu if hdu.hdu is not None else self.hdul[hdu.index]
        stop = hdu.data_offset + -(-hdu.data_size // 2880) * 2880
        size, start = stop - hdu.header_offset, hdu.header_offset
        raw = os.pread(self._fd, size, start) if self._fd is not None else self._source.pread(size, start)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", fits.verify.VerifyWarning)
                parsed = fits.hdu.base._BaseHDU.fromstring(raw)
                _ = parsed.data  # into memory now
        except RemoteReadError:
            raise
        except PARSE_ERRORS as err:
            raise FitsLayoutError(self.path, f"cannot read HDU {hdu.index} ({hdu.name}) ({err})") from err
        return parsed

    @contextlib.contextmanager
    def _reporting_damage(self) -> Iterator[None]:
        """Turn what astropy raises for damaged headers or data into `FitsLayoutError`.

        astropy parses card values and reads pixels lazily, so damage can surface at any access.
        """
        try:
            yield
        except SPHERExImageError:
            raise
        except (FileNotFoundError, PermissionError, RemoteReadError):
            raise
        except PARSE_ERRORS as err:
            raise FitsLayoutError(self.path, f"damaged file ({type(err).__name__}: {err})") from err


def _layout_from_hdulist(hdul: fits.HDUList, path: str) -> FitsLayout:
    """Describe a file astropy opened (compressed planes, streams) in the reader's terms."""
    hdus = []
    for index, hdu in enumerate(hdul):
        is_image = isinstance(hdu, fits.PrimaryHDU | fits.ImageHDU | fits.CompImageHDU)
        shape = tuple(hdu.shape) if is_image else ()
        name = "PRIMARY" if index == 0 else str(hdu.header.get("EXTNAME", "")).strip().upper()
        bitpix = hdu.header.get("BITPIX", 0)
        # Plain image data have a byte offset a remote stream can be read from (`rows_read_once`).
        plain = is_image and not isinstance(hdu, fits.CompImageHDU)
        offset = getattr(hdu, "_data_offset", None) if plain else None
        offset = offset if isinstance(offset, int) and offset >= 0 else -1
        hdus.append(FitsHdu(index, name, hdu.header, shape, bitpix, is_image, offset, hdu))
    return FitsLayout(path, hdus)


class HduView:
    """A `FitsHdu` of an open reader with astropy's ``data`` attribute, read on first use.

    What `SPHERExImageFitsReader._plane_hdu` returns, so that subclasses written against astropy HDUs
    (``hdu.data``, ``hdu.header``, ``hdu.shape``, ``hdu.name``) keep working on the direct reads.

    Parameters
    ----------
    reader : `FitsFileReader`
        The open reader.
    hdu : `FitsHdu`
        The HDU.
    """

    def __init__(self, reader: FitsFileReader, hdu: FitsHdu) -> None:
        self._reader = reader
        self.fits_hdu = hdu
        self._data: Any = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.fits_hdu, name)

    @property
    def data(self) -> Any:
        """The whole data of the HDU, in memory (`numpy.ndarray` or table)."""
        if self._data is None:
            hdu = self.fits_hdu
            if hdu.raw_readable:
                self._data = self._reader.read_hdu_pixels(hdu, None)
            else:
                self._data = self._reader.read_hdu(hdu).data
        return self._data


class _HduMapping(Mapping):
    """``EXTNAME`` (upper case) to astropy HDU, each read by `FitsFileReader.read_hdu` when asked for."""

    def __init__(self, reader: FitsFileReader) -> None:
        self._reader = reader
        self._read: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        key = name.upper()
        if key not in self._read:
            hdu = self._reader._layout.by_name.get(key)
            if hdu is None:
                raise KeyError(name)
            self._read[key] = self._reader.read_hdu(hdu)
        return self._read[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._reader._layout.by_name)

    def __len__(self) -> int:
        return len(self._reader._layout.by_name)
