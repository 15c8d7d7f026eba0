"""What a raw or dark file must hold before ``ingest-simulated`` lets it into a repository."""

from __future__ import annotations

__all__ = ["INTEGER_PLANES", "REQUIRED_PLANES", "check_raw_file"]

import os
import re
import stat
import warnings
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.utils.exceptions import AstropyWarning

from ..core import PARSE_ERRORS, FitsLayoutError, SPHERExImageFitsReader
from .observation import FileMetadataError

REQUIRED_PLANES = ("IMAGE", "FLAGS", "VARIANCE")
"""HDUs every raw and dark file must have (the layout ``spherex-simulate`` writes)."""

INTEGER_PLANES = ("FLAGS",)
"""Planes that must hold integers of at most 32 bits (a bitmask)."""

# Pixels read per step when looking for a finite pixel: small enough never to matter for memory, large
# enough that a normal image is settled by its first block.
_BLOCK_PIXELS = 1 << 18


def check_raw_file(path: str | os.PathLike, name: str | None = None) -> tuple[fits.Header, fits.Header]:
    """Check that a local file is a complete SPHEREx image that can be ingested.

    Parameters
    ----------
    path : `str` or `os.PathLike`
        Local FITS file.
    name : `str`, optional
        Name of the file in messages (its URI when ``path`` is a local copy); default ``path``.

    Returns
    -------
    primary, image : `astropy.io.fits.Header`
        The PRIMARY header and the image header, as read for the check (so that ingest need not open
        the file again: `spherex.instrument.ObservationMetadata.from_headers`).

    Raises
    ------
    FileMetadataError
        Raised, naming the file, if the file is not FITS, is truncated (an HDU needs more bytes than the
        file has: a header claiming 10^12 pixels is caught here, before anything is allocated), lacks one
        of the ``IMAGE``, ``FLAGS`` or ``VARIANCE`` planes, has planes of different shapes, holds a
        non-integer ``FLAGS`` plane, or has an ``IMAGE`` or ``VARIANCE`` plane without a single finite
        pixel.

    Notes
    -----
    NaN and infinite pixels are legitimate in raw data (hot, dead or saturated pixels, which the
    ``FLAGS`` plane marks) and are accepted; a plane in which *every* pixel is non-finite carries no
    measurement at all (a failed readout or a file written from uninitialised memory) and is rejected.
    The search for a finite pixel stops at the first one found, so a normal image costs one small read.
    """
    name = name or os.fspath(path)
    with warnings.catch_warnings():
        # astropy warns (truncation, bad header padding ...) before failing; the error below says it once.
        warnings.simplefilter("ignore", AstropyWarning)
        # A file in exactly the layout spherex-simulate writes is settled by one scan of its header
        # blocks; anything else (damage included) goes through the full reader, whose messages say why.
        headers = _check_simple_layout(path)
        if headers is not None:
            return headers
        return _check(path, name)


def _check(path: str | os.PathLike, name: str) -> tuple[fits.Header, fits.Header]:
    try:
        reader = SPHERExImageFitsReader(path, memmap=True)
    except FitsLayoutError as err:
        raise FileMetadataError(name, err.problem) from None
    except PARSE_ERRORS as err:
        raise FileMetadataError(name, f"not a readable FITS file ({type(err).__name__}: {err})") from None
    with reader:
        try:
            _check_planes(reader, name)
        except FileMetadataError:
            raise
        except PARSE_ERRORS as err:
            raise FileMetadataError(name, f"damaged file ({type(err).__name__}: {err})") from None
        return reader.primary_header, reader.image_header


def _check_planes(reader: SPHERExImageFitsReader, name: str) -> None:
    hdus: dict[str, Any] = {}
    for hdu in reader.hdul[1:]:
        hdus.setdefault(hdu.name.upper(), hdu)
    missing = [plane for plane in REQUIRED_PLANES if plane not in hdus]
    if missing:
        present = [hdu.name for hdu in reader.hdul]
        raise FileMetadataError(
            name,
            f"missing the {', '.join(missing)} plane{'s' * (len(missing) > 1)}; HDUs present: {present}",
        )
    for plane in REQUIRED_PLANES:
        hdu = hdus[plane]
        if tuple(hdu.shape) != reader.shape:
            # The reader checks the planes it knows; say it again for any plane it tolerates.
            raise FileMetadataError(
                name, f"the {plane} plane has shape {tuple(hdu.shape)} but IMAGE has {reader.shape}"
            )
        if plane in INTEGER_PLANES:
            _check_bitmask(hdu.header, plane, name)
    for plane in ("IMAGE", "VARIANCE"):
        if not _has_finite_pixel(hdus[plane]):
            raise FileMetadataError(name, f"the {plane} plane has no finite pixel (all NaN or infinite)")


def _check_bitmask(header: fits.Header, plane: str, name: str) -> None:
    """Refuse a bitmask plane that is not integers of 8, 16 or 32 bits, signed or unsigned.

    FITS stores unsigned integers as signed ones with ``BSCALE = 1`` and ``BZERO = 2**(BITPIX-1)`` (and
    signed bytes with ``BZERO = -128``), as astropy writes ``uint16``; any other scaling makes the
    values non-integers.
    """
    bitpix = header.get("BITPIX")
    if bitpix not in (8, 16, 32):
        raise FileMetadataError(
            name, f"the {plane} plane has BITPIX={bitpix!r}; a bitmask must be an integer of 8, 16 or 32 bits"
        )
    bscale, bzero = header.get("BSCALE", 1), header.get("BZERO", 0)
    unsigned = -128 if bitpix == 8 else 2 ** (bitpix - 1)
    if bscale != 1 or bzero not in (0, unsigned):
        raise FileMetadataError(
            name,
            f"the {plane} plane is scaled (BSCALE={bscale!r}, BZERO={bzero!r}); a bitmask must hold "
            f"integers: BSCALE=1 and BZERO=0, or BZERO={unsigned} for "
            f"{'signed' if bitpix == 8 else 'unsigned'} {bitpix}-bit values",
        )


def _has_finite_pixel(hdu: Any) -> bool:
    """Tell whether a 2-d plane has a finite pixel, reading it block by block until one is found."""
    if hdu.header.get("BITPIX", -32) > 0:
        # Integers, scaled (BSCALE/BZERO) or not, are finite; BLANK pixels are missing data, as NaN
        # are.  (astropy cannot scale a memory-mapped section, so the pixels are not read.)
        return True
    rows, columns = hdu.shape
    step = max(1, _BLOCK_PIXELS // columns)
    for start in range(0, rows, step):
        block = np.asarray(hdu.section[start : start + step, :])
        if block.dtype.kind in "iu" or np.isfinite(block).any():
            return True
    return False


# -- fast path -----------------------------------------------------------------------------------------
#
# Opening a file with astropy parses and verifies every card of every HDU (~7 ms for a 4-HDU raw, more
# than the rest of its ingest).  A raw written by spherex-simulate has a fixed, simple structure: an empty
# primary HDU and the IMAGE, FLAGS and VARIANCE image extensions, unscaled, ending exactly at the end of
# the file.  _check_simple_layout accepts only that, reading nothing but the mandatory keywords (which
# FITS puts in fixed positions), and returns None for anything else, which the full check then handles.
# It is therefore never more permissive than _check: each condition below is one _check also requires.

_CARD = 80
_BLOCK = 2880
_MAX_HEADER_BLOCKS = 64
_INTEGER_VALUE = re.compile(r"^\s*([+-]?\d{1,18})\s*(?:/.*)?$")
_STRING_VALUE = re.compile(r"^\s*'([^']*)'\s*(?:/.*)?$")
_PRINTABLE = bytes(range(32, 127))
_FLOAT_BITPIX = {-32: ">f4", -64: ">f8"}
_STRUCTURAL = ("BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "PCOUNT", "GCOUNT", "EXTNAME", "BSCALE", "BZERO")


def _check_simple_layout(path: str | os.PathLike) -> tuple[fits.Header, fits.Header] | None:
    """Check a raw in the simulator's plain layout by its header blocks alone.

    Returns the PRIMARY and IMAGE headers if the file has exactly that layout and passes every check
    `check_raw_file` makes, `None` if the full check must decide (any other layout, or any problem).
    """
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            # A FIFO or device would block or never end; the full check reports what it is.
            return None
        with open(path, "rb") as stream:
            size = os.fstat(stream.fileno()).st_size
            hdus = _scan_hdus(stream, size)
            if hdus is None:
                return None
            primary, *extensions = hdus
            if primary["keys"].get("NAXIS") != 0 or len(extensions) != len(REQUIRED_PLANES):
                return None
            planes = {hdu["keys"].get("EXTNAME", "").strip().upper(): hdu for hdu in extensions}
            if set(planes) != set(REQUIRED_PLANES):
                return None
            shape = None
            for plane, hdu in planes.items():
                keys = hdu["keys"]
                if keys.get("NAXIS") != 2 or keys.get("PCOUNT") != 0 or keys.get("GCOUNT") != 1:
                    return None
                if "BSCALE" in keys or "BZERO" in keys:
                    return None
                plane_shape = (keys.get("NAXIS2"), keys.get("NAXIS1"))
                if not all(isinstance(n, int) and n > 0 for n in plane_shape):
                    return None
                if shape is not None and plane_shape != shape:
                    return None
                shape = plane_shape
                integer = plane in INTEGER_PLANES
                if integer != (keys.get("BITPIX") in (8, 16, 32)) or (
                    not integer and keys.get("BITPIX") not in _FLOAT_BITPIX
                ):
                    return None
            for plane in ("IMAGE", "VARIANCE"):
                hdu = planes[plane]
                dtype = _FLOAT_BITPIX[hdu["keys"]["BITPIX"]]
                if not _has_finite_pixel_at(stream, hdu["data_offset"], dtype, shape):
                    return None
            return (
                fits.Header.fromstring(primary["header"].decode("ascii")),
                fits.Header.fromstring(planes["IMAGE"]["header"].decode("ascii")),
            )
    except (OSError, ValueError, UnicodeDecodeError):
        return None


def _scan_hdus(stream: Any, size: int) -> list[dict[str, Any]] | None:
    """Return each HDU's raw header, structural keywords and data offset, or None if not plain FITS."""
    hdus: list[dict[str, Any]] = []
    offset = 0
    while offset < size:
        first = len(hdus) == 0
        header = bytearray()
        end = False
        for _ in range(_MAX_HEADER_BLOCKS):
            block = stream.read(_BLOCK)
            if len(block) != _BLOCK or block.translate(None, _PRINTABLE):
                return None
            header += block
            if any(block[i : i + 3] == b"END" and block[i + 3 : i + _CARD].strip() == b""
                   for i in range(0, _BLOCK, _CARD)):  # fmt: skip
                end = True
                break
        if not end:
            return None
        text = header.decode("ascii")
        cards = [text[i : i + _CARD] for i in range(0, len(text), _CARD)]
        expected_first = "SIMPLE  =                    T" if first else "XTENSION= 'IMAGE   '"
        if not cards[0].startswith(expected_first):
            return None
        keys: dict[str, Any] = {}
        for card in cards[1:]:
            keyword = card[:8].strip()
            if keyword == "END":
                break
            if keyword in _STRUCTURAL:
                if keyword in keys or card[8:10] != "= ":
                    return None
                pattern = _STRING_VALUE if keyword == "EXTNAME" else _INTEGER_VALUE
                match = pattern.match(card[10:])
                if match is None:
                    # A scaled plane (float BSCALE) or a value written unusually: the full check decides.
                    return None
                keys[keyword] = match.group(1) if keyword == "EXTNAME" else int(match.group(1))
        if cards[1][:8] != "BITPIX  " or cards[2][:8] != "NAXIS   ":
            return None
        naxis = keys.get("NAXIS")
        if naxis not in (0, 2) or (naxis == 2 and (cards[3][:8], cards[4][:8]) != ("NAXIS1  ", "NAXIS2  ")):
            return None
        if keys.get("BITPIX") not in (8, 16, 32, 64, -32, -64):
            return None
        data_bytes = 0
        if naxis == 2:
            data_bytes = abs(keys["BITPIX"]) // 8 * keys["NAXIS1"] * keys["NAXIS2"]
        data_offset = offset + len(header)
        offset = data_offset + -(-data_bytes // _BLOCK) * _BLOCK
        if offset > size:
            return None
        hdus.append({"header": bytes(header), "keys": keys, "data_offset": data_offset})
        stream.seek(offset)
    return hdus if offset == size and hdus else None


def _has_finite_pixel_at(stream: Any, offset: int, dtype: str, shape: tuple[int, int]) -> bool:
    """Tell whether a float plane stored at ``offset`` has a finite pixel, reading it block by block."""
    total = shape[0] * shape[1]
    itemsize = np.dtype(dtype).itemsize
    for start in range(0, total, _BLOCK_PIXELS):
        count = min(_BLOCK_PIXELS, total - start)
        block = np.frombuffer(os.pread(stream.fileno(), count * itemsize, offset + start * itemsize), dtype)
        if np.isfinite(block).any():
            return True
    return False
