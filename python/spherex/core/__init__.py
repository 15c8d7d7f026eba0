"""The SPHEREx image model and its FITS layout."""

from .errors import FitsLayoutError, SPHERExImageError
from .fits.file import PARSE_ERRORS, check_complete, open_fits
from .fits.file_reader import FitsFileReader
from .fits.flags import (
    FLAG_KEYWORD_PREFIX,
    LEVEL2_FLAG_BITS,
    MAX_FLAG_BIT,
    flag_defs_to_cards,
    read_flag_defs,
    validate_flag_defs,
)
from .fits.layout import FitsHdu, FitsLayout, clear_layout_cache
from .fits.read_options import AUTO, FitsReadOptions
from .fits.write_options import COMPRESSION_TYPES, FitsWriteOptions
from .image.fits import (
    DEFAULT_UNIT,
    SPHERExImageFitsReader,
    SPHERExImageFitsWriter,
    is_structural_keyword,
    is_wcs_keyword,
    metadata_to_header,
    parse_unit,
)
from .image.spherex_image import SPHERExImage, spherex_image_reader, spherex_image_writer
from .level2.fits_reader import SPHERExLevel2FitsReader, spectral_wcs_cards
from .level2.fits_writer import LEVEL2_PRIMARY_KEYWORDS, SPHERExLevel2FitsWriter
from .level2.image import LEVEL2_FLAG_COMMENTS, SPHERExLevel2Image
from .level2.products import SpectralLookup
from .level2.psf import Level2PSF, psf_labels_trusted, xfast_plane_of_labels
from .photometry import psf_model
from .photometry.psf_model import *  # noqa: F403

__all__ = [
    "AUTO",
    "FitsFileReader",
    "FitsHdu",
    "FitsLayout",
    "FitsReadOptions",
    "clear_layout_cache",
    "PARSE_ERRORS",
    "COMPRESSION_TYPES",
    "FitsWriteOptions",
    "DEFAULT_UNIT",
    "FLAG_KEYWORD_PREFIX",
    "LEVEL2_FLAG_BITS",
    "MAX_FLAG_BIT",
    "FitsLayoutError",
    "SPHERExImage",
    "SPHERExLevel2Image",
    "SPHERExLevel2FitsReader",
    "SPHERExLevel2FitsWriter",
    "Level2PSF",
    "LEVEL2_FLAG_COMMENTS",
    "LEVEL2_PRIMARY_KEYWORDS",
    "psf_labels_trusted",
    "xfast_plane_of_labels",
    "SpectralLookup",
    *psf_model.__all__,  # noqa: F405
    "spectral_wcs_cards",
    "SPHERExImageError",
    "SPHERExImageFitsReader",
    "SPHERExImageFitsWriter",
    "check_complete",
    "flag_defs_to_cards",
    "is_structural_keyword",
    "is_wcs_keyword",
    "metadata_to_header",
    "open_fits",
    "parse_unit",
    "read_flag_defs",
    "spherex_image_reader",
    "spherex_image_writer",
    "validate_flag_defs",
]
