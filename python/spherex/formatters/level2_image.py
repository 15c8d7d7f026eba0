"""Butler formatter for `spherex.core.SPHERExLevel2Image` datasets (IRSA's Level-2 FITS layout)."""

from __future__ import annotations

__all__ = ["SPHERExLevel2ImageFormatter"]

from typing import ClassVar

from ..core import SPHERExImage, SPHERExLevel2Image
from .spherex_image import SPHERExImageFormatter


class SPHERExLevel2ImageFormatter(SPHERExImageFormatter):
    """Read and write SPHEREx Level-2 spectral images.

    Components: those of `SPHERExImageFormatter` plus ``zodi`` (zodiacal light model), ``psf``
    (`~spherex.core.Level2PSF`: the PSF planes and their zones, corrected on read for files with IRSA's
    PSF header error, so that ``psf.zone_at`` is IRSA's zone less one) and ``wavelength`` (per-pixel
    wavelength and bandwidth maps, micron, ``(2, rows, columns)``, computed from ``WCS-WAVE``).  The
    ``slices`` parameter cuts every plane, and moves the origin of the PSF and wavelength table so that
    they answer for the same pixels of the full array; ``butler.get(ref.makeComponentRef("wavelength"),
    parameters={"slices": ...})`` computes the maps of the cutout only.

    Notes
    -----
    The layout is that of `~spherex.core.SPHERExLevel2Image` (its ``fits_reader_class`` and
    ``fits_writer_class``); the reader also reads the 2020 proof of concept's and this package's
    ``SPHERExImage`` files, whose Level-2 planes are then `None`.
    """

    image_class: ClassVar[type[SPHERExImage]] = SPHERExLevel2Image
