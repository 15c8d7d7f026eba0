"""What a raw or dark file must hold before ``ingest-simulated`` lets it into a repository."""

from __future__ import annotations

__all__ = ["INTEGER_PLANES", "REQUIRED_PLANES", "check_raw_file"]

import os
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
