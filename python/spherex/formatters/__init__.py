"""Butler formatters (one per module) and the storage class delegate for SPHEREx images."""

from .astropy_image import AstropyImageFormatter
from .ccddata import CCDDataFormatter
from .level2_image import SPHERExLevel2ImageFormatter
from .level2_image_delegate import SPHERExLevel2ImageDelegate
from .spherex_image import SPHERExImageFormatter
from .spherex_image_delegate import SPHERExImageDelegate

__all__ = [
    "AstropyImageFormatter",
    "CCDDataFormatter",
    "SPHERExImageDelegate",
    "SPHERExImageFormatter",
    "SPHERExLevel2ImageDelegate",
    "SPHERExLevel2ImageFormatter",
]
