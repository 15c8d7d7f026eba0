"""FITS layout of SPHEREx images: the reader and the writer.

Layout written (one HDU per plane, in this order):

========== ======================================================================================
HDU        Contents
========== ======================================================================================
PRIMARY    Header only (``NAXIS = 0``): the observation metadata (``meta``), e.g. ``DATE-OBS``,
           ``EXPTIME``, ``OBSID``, ``DETECTOR``.  Keeping the primary HDU free of data allows every
           plane, the image included, to be tile-compressed.
IMAGE      The image (dtype as given, normally float32), ``BUNIT`` and the celestial WCS.
FLAGS      int32 bitmask, ``EXTTYPE = 'MASK'`` and one ``MP_<NAME> = <bit>`` keyword per flag
           (``HIERARCH MP_<NAME>`` for long names): the convention of IRSA's Firefly viewer.
VARIANCE   Variance of the image, ``BUNIT`` = the square of the image unit.
MASK       uint8 (1 = masked), written only when the image has a mask.
========== ======================================================================================

Only ``IMAGE`` carries the WCS (the planes share the pixel grid).  The reader also accepts SPHEREx
Level-2 files (further HDUs such as ``ZODI``, ``PSF`` and ``WCS-WAVE`` are ignored), the layout of the
2020 proof of concept (an unnamed image extension behind a header-only primary HDU, then ``FLAGS`` and
``VARIANCE``) and of `astropy.nddata.CCDData` (image in the primary HDU, uncertainty in
``VARIANCE`` or ``UNCERT`` with a ``UTYPE`` keyword) and tile-compressed planes
(`astropy.io.fits.CompImageHDU`).

The code lives in one module per part: `spherex.core.fits.header` (keyword classes, units, metadata
cards), `spherex.core.fits.layout` (the header scan and its per-file cache),
`spherex.core.fits.read_options` (which HDU holds which plane), `spherex.core.fits.pixels` (direct
reads of plain planes), `spherex.core.fits.file_reader` (one open and the HDUs of any FITS file),
`spherex.core.image.fits_reader` and `spherex.core.image.fits_writer`.  This module
gathers them under the name they had when they were one.
"""

from ..fits.header import (
    DEFAULT_UNIT,
    is_structural_keyword,
    is_wcs_keyword,
    metadata_to_header,
    parse_unit,
)
from ..fits.read_options import AUTO, FitsReadOptions
from .fits_reader import SPHERExImageFitsReader
from .fits_writer import SPHERExImageFitsWriter

__all__ = [
    "AUTO",
    "DEFAULT_UNIT",
    "FitsReadOptions",
    "SPHERExImageFitsReader",
    "SPHERExImageFitsWriter",
    "is_structural_keyword",
    "is_wcs_keyword",
    "metadata_to_header",
    "parse_unit",
]
