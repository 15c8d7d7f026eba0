"""The SPHEREx image model and its FITS layout."""

from .errors import FitsLayoutError, SPHERExImageError
from .fits_file import PARSE_ERRORS, check_complete, open_fits
from .fits_write_options import COMPRESSION_TYPES, FitsWriteOptions
from .flags import (
    FLAG_KEYWORD_PREFIX,
    LEVEL2_FLAG_BITS,
    MAX_FLAG_BIT,
    flag_defs_to_cards,
    read_flag_defs,
    validate_flag_defs,
)
from .level2_image import SPHERExLevel2Image
from .level2_image_fits import SPHERExLevel2FitsReader, SPHERExLevel2FitsWriter, spectral_wcs_cards
from .level2_products import Level2PSF, SpectralLookup
from .psf_photometry_model import *  # noqa: F403
from .spherex_image import SPHERExImage, spherex_image_reader, spherex_image_writer
from .spherex_image_fits import (
    DEFAULT_UNIT,
    SPHERExImageFitsReader,
    SPHERExImageFitsWriter,
    is_structural_keyword,
    is_wcs_keyword,
    metadata_to_header,
    parse_unit,
)

__all__ = [
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
    "SpectralLookup",
    *psf_photometry_model.__all__,  # noqa: F405
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
