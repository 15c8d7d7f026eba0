"""Opening FITS files so that damage is reported as one specific exception naming the file."""

from __future__ import annotations

__all__ = ["PARSE_ERRORS", "check_complete", "open_fits"]

import io
import os
import warnings
from typing import Any, BinaryIO

from astropy.io import fits

from ..errors import FitsLayoutError, RemoteReadError

try:
    # Raised by the tile-compression codecs for damaged compressed data.
    from astropy.io.fits.hdu.compressed._compression import CfitsioException
except ImportError:  # pragma: no cover - astropy moved its private module; OSError still covers I/O.
    CfitsioException = OSError

PARSE_ERRORS: tuple[type[Exception], ...] = (
    OSError,
    ValueError,
    KeyError,
    IndexError,
    TypeError,
    RuntimeError,
    UnicodeDecodeError,
    fits.VerifyError,
    CfitsioException,
)
"""What astropy raises for bytes that are not FITS or are damaged (`tuple` [`type`, ...])."""
_BITPIX_VALUES = (8, 16, 32, 64, -32, -64)
# Compressed containers: astropy decompresses them, so offsets are not comparable to the size on disk.
_COMPRESSED_MAGIC = (b"\x1f\x8b", b"BZh", b"PK\x03\x04")


def open_fits(
    source: str | os.PathLike | BinaryIO, *, memmap: bool | None = False, **open_kwargs: Any
) -> tuple[fits.HDUList, str]:
    """Open a FITS file and check that every HDU is present in full.

    Parameters
    ----------
    source : `str`, `os.PathLike` or file-like
        File to open.  An open plain file (as astropy's I/O registry passes) is reopened by name so that
        it can be memory-mapped.
    memmap : `bool`, optional
        Memory-map the file (pixel data are read only when touched).
    **open_kwargs
        Further keyword arguments of `astropy.io.fits.open` (``memmap`` among them wins).

    Returns
    -------
    hdul : `astropy.io.fits.HDUList`
        The open file, all headers parsed; the caller closes it.
    name : `str`
        The file name, for messages.

    Raises
    ------
    FileNotFoundError
        Raised if the file does not exist.
    FitsLayoutError
        Raised if the file is not FITS, is corrupt, or is truncated.
    """
    target: str | BinaryIO
    if hasattr(source, "read"):
        name = getattr(source, "name", None)
        plain = isinstance(source, io.FileIO | io.BufferedReader) and isinstance(name, str)
        target = name if plain else source  # type: ignore[assignment]
        path = name if isinstance(name, str) else repr(source)
    else:
        target = path = os.fspath(source)  # type: ignore[arg-type]
    # astropy warns about damage (truncation, invalid cards) on its way to failing: the exception says
    # what is wrong once, so the warnings are kept back and shown only if the file opens after all.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            hdul = fits.open(target, **{"memmap": memmap, "lazy_load_hdus": False, **open_kwargs})
        except (FileNotFoundError, IsADirectoryError, PermissionError, RemoteReadError):
            raise
        except PARSE_ERRORS as err:
            raise FitsLayoutError(path, f"not a readable FITS file ({err})") from err
        try:
            if len(hdul) == 0:
                raise FitsLayoutError(path, "not a FITS file: no HDU found")
            check_complete(hdul, target, path)
        except BaseException:
            hdul.close()
            raise
    for warning in caught:
        warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    return hdul, path


def check_complete(hdul: fits.HDUList, target: str | BinaryIO, path: str) -> None:
    """Check that the data of every HDU lies within the file.

    Parameters
    ----------
    hdul : `astropy.io.fits.HDUList`
        The open file.
    target : `str` or file-like
        What ``hdul`` was opened from, to measure its size.
    path : `str`
        File name for messages.

    Raises
    ------
    FitsLayoutError
        Raised if an HDU (its data and the padding to 2880 bytes) ends beyond the end of the file, if
        its ``BITPIX`` is not one FITS allows, or if bytes that are not blank follow the last HDU (astropy
        silently drops an HDU whose header was cut short: the file would read without that plane).
    """
    if isinstance(target, str):
        with open(target, "rb") as stream:
            if stream.read(4).startswith(_COMPRESSED_MAGIC):
                return
        size = os.path.getsize(target)
    else:
        position = target.tell()
        try:
            size = target.seek(0, os.SEEK_END)
        finally:
            target.seek(position)
    last_end = 0
    for index, hdu in enumerate(hdul):
        try:
            bitpix = hdu.header.get("BITPIX") if hasattr(hdu, "header") else None
        except RemoteReadError:
            raise
        except PARSE_ERRORS as err:
            # A damaged BITPIX card: astropy refuses to read its value.
            raise FitsLayoutError(
                path, f"HDU {index} is corrupt: its BITPIX card cannot be parsed ({err})"
            ) from err
        if bitpix is not None and (isinstance(bitpix, bool) or bitpix not in _BITPIX_VALUES):
            # astropy would fail later, when the pixels are touched, with a bare KeyError.
            raise FitsLayoutError(
                path,
                f"HDU {index} ({hdu.name}) has BITPIX = {bitpix!r}; FITS allows 8, 16, 32, 64, -32 or -64",
            )
        try:
            # The HDU's own fileinfo: HDUList.fileinfo also re-serialises every header to detect edits.
            info = hdu.fileinfo()
        except AttributeError as err:
            # astropy represents an HDU whose header it cannot parse by a _CorruptedHDU without fileinfo.
            raise FitsLayoutError(path, f"HDU {index} is corrupt: astropy cannot parse its header") from err
        except RemoteReadError:
            raise
        except PARSE_ERRORS as err:
            raise FitsLayoutError(path, f"HDU {index} is corrupt ({err})") from err
        if not info:
            continue
        end = info["datLoc"] + info["datSpan"]
        if end > size:
            raise FitsLayoutError(
                path, f"truncated: HDU {index} ({hdu.name}) needs {end} bytes but the file has {size}"
            )
        last_end = max(last_end, end)
    if 0 < last_end < size and not _blank(target, last_end, size):
        raise FitsLayoutError(
            path,
            f"truncated or damaged: {size - last_end} bytes after HDU {len(hdul) - 1} ({hdul[-1].name}) "
            "are not a complete HDU",
        )


def _blank(target: str | BinaryIO, start: int, stop: int) -> bool:
    """Tell whether the bytes ``start:stop`` of a file are all zero or ASCII blanks (harmless padding)."""
    length = min(stop - start, 2880)
    if isinstance(target, str):
        with open(target, "rb") as stream:
            stream.seek(start)
            tail = stream.read(length)
    else:
        position = target.tell()
        try:
            target.seek(start)
            tail = target.read(length)
        finally:
            target.seek(position)
    return not tail.strip(b"\0 ")
