"""Butler formatters (one per module) and the storage class delegate for SPHEREx images."""

from .astropy_image import AstropyImageFormatter
from .ccddata import CCDDataFormatter
from .spherex_image import SPHERExImageFormatter
from .spherex_image_delegate import SPHERExImageDelegate

__all__ = ["AstropyImageFormatter", "CCDDataFormatter", "SPHERExImageDelegate", "SPHERExImageFormatter"]
