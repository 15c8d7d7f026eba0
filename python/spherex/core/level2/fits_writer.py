"""Write SPHEREx Level-2 spectral images so that IRSA's own recipes read them back.

What a reader following IRSA's tutorials finds (the layout is that of
`spherex.core.level2.fits_reader`):

- ``hdul['PRIMARY'].header['VERSION']``: the pipeline version (with ``+psffix1`` appended when the PSF
  zones of an affected file were corrected on read, as IRSA's header fix does).
- ``CRPIX1A``/``CRPIX2A`` with ``CRVAL1A = CRVAL2A = 0``: the parent pixel of cutout pixel ``x`` is
  ``1 + x - CRPIX1A`` (cutouts of cutouts too).
- ``XCTR_k``/``YCTR_k``/``XWID_k``/``YWID_k``, ``k = 1 ...``, commented ``Center of x zone (ix, iy)``, in
  the x-fast order of the planes: plane ``k - 1`` is zone ``k``.
- ``MP_<NAME>`` cards with their comments, ``BUNIT`` = ``MJy / sr``, ``MJy2 / sr2`` and blank on
  ``FLAGS`` and ``PSF``, as the tutorials print them.
"""

from __future__ import annotations

__all__ = ["LEVEL2_PRIMARY_KEYWORDS", "SPHERExLevel2FitsWriter"]

from typing import TYPE_CHECKING

import numpy as np
from astropy.io import fits

from ..image.fits import SPHERExImageFitsWriter, metadata_to_header, parse_unit
from .fits_reader import spectral_wcs_cards
from .products import Level2PSF, SpectralLookup
from .psf import psf_labels_trusted

if TYPE_CHECKING:
    from .image import SPHERExLevel2Image

LEVEL2_PRIMARY_KEYWORDS: tuple[str, ...] = ("VERSION",)
"""Metadata written to the PRIMARY header; the rest goes to ``IMAGE``.  IRSA's PRIMARY headers have five
cards (``hdul.info()`` in IRSA's tutorials), of which the tutorial reads ``VERSION``."""

# PSF header cards as IRSA's PSF tutorial prints them (QR2 cutout of
# level2_2025W18_1B_0023_2D4_spx_l2b-v20-2025-240); CDELT is the image pixel over OVERSAMP (0.615 arcsec
# there, for 6.15 arcsec pixels).
_PSF_WCS = [
    ("WCSAXES", 2, "Number of coordinate axes"),
    ("CRPIX1", None, "Pixel coordinate of reference point"),
    ("CRPIX2", None, "Pixel coordinate of reference point"),
    ("CDELT1", None, "[arcsec] Coordinate increment at reference poin"),
    ("CDELT2", None, "[arcsec] Coordinate increment at reference poin"),
    ("CUNIT1", "arcsec", "Units of coordinate increment and value"),
    ("CUNIT2", "arcsec", "Units of coordinate increment and value"),
    ("CTYPE1", "XANG", "Coordinate type code"),
    ("CTYPE2", "YANG", "Coordinate type code"),
    ("CRVAL1", 0.0, "[arcsec] Coordinate value at reference point"),
    ("CRVAL2", 0.0, "[arcsec] Coordinate value at reference point"),
    ("CNAME1", "Relative offset in detector X from center of PSF, in arcseconds", ""),
    ("CNAME2", "Relative offset in detector Y from center of PSF, in arcseconds", ""),
    ("MJDREF", 0.0, "[d] MJD of fiducial time"),
]
_PIXEL_SCALE_ARCSEC = 6.15


class SPHERExLevel2FitsWriter(SPHERExImageFitsWriter):
    """Write a `~spherex.core.SPHERExLevel2Image` in IRSA's Level-2 layout.

    Parameters
    ----------
    compression : `str`, optional
        Tile-compression algorithm for the image planes (``RICE_1`` ...).
    quantize_level : `float`, optional
        Quantization of floating point planes when compressing.
    checksum : `bool`, optional
        Write ``CHECKSUM`` and ``DATASUM`` keywords in every HDU.
    """

    def to_hdulist(self, image: SPHERExLevel2Image) -> fits.HDUList:
        """Build the HDUs: those of `SPHERExImageFitsWriter.to_hdulist`, then ``ZODI``, ``PSF`` and
        ``WCS-WAVE`` when the image has them, with IRSA's cards (see the module documentation).
        """
        hdul = super().to_hdulist(image)
        for hdu in hdul[1:]:
            if "BUNIT" in hdu.header and not isinstance(hdu, fits.CompImageHDU):
                hdu.header["BUNIT"] = _generic_unit(hdu.header["BUNIT"])
        image_header = hdul["IMAGE"].header
        metadata = metadata_to_header(image.meta)
        for keyword in LEVEL2_PRIMARY_KEYWORDS:
            metadata.remove(keyword, ignore_missing=True, remove_all=True)
        image_header.extend(metadata.cards, update=True)
        lookup, psf = image.spectral_lookup, image.psf_model
        origin = lookup.origin if lookup is not None else (psf.origin if psf is not None else image.origin)
        # WCS 'W' only with the table it looks up; 'A' always, for IRSA's cutout recipe.
        cards = [card for card in spectral_wcs_cards(origin) if lookup is not None or card.keyword[-1] != "W"]
        image_header.extend(cards, update=True)
        if "FLAGS" in hdul:
            _describe_flags(hdul["FLAGS"].header, image.flag_comments)
        if image.zodi is not None:
            header = fits.Header([("BUNIT", image_header["BUNIT"], "Zodiacal light model")])
            hdul.append(self._plane_hdu(np.asarray(image.zodi, dtype=np.float32), header, "ZODI"))
        if psf is not None:
            header = psf_header(psf, _pixel_scale_arcsec(image))
            hdul.append(fits.ImageHDU(np.asarray(psf.cube, dtype=np.float32), header, name="PSF"))
        if lookup is not None:
            hdul.append(_wave_table(lookup))
        return hdul

    def _primary_header(self, image: SPHERExLevel2Image) -> fits.Header:
        metadata = metadata_to_header(image.meta)
        header = fits.Header([metadata.cards[key] for key in LEVEL2_PRIMARY_KEYWORDS if key in metadata])
        psf = image.psf_model
        version = header.get("VERSION")
        if version is not None and psf is not None and psf.relabelled and not psf_labels_trusted(version):
            # What IRSA's header fix does: the zones written are x-fast, so the file is now a fixed one.
            header["VERSION"] = f"{version}+psffix1"
        return header


def psf_header(psf: Level2PSF, pixel_scale_arcsec: float = _PIXEL_SCALE_ARCSEC) -> fits.Header:
    """Return the ``PSF`` HDU header of a PSF as IRSA writes it: WCS, ``OVERSAMP``, then four zone cards a
    plane.

    Parameters
    ----------
    psf : `Level2PSF`
        The PSF (centres in plane order).
    pixel_scale_arcsec : `float`, optional
        Side of the image's pixels, arcsec (SPHEREx's 6.15 by default; larger for a small simulated
        array): ``CDELT`` is that over the oversampling.

    Returns
    -------
    header : `astropy.io.fits.Header`
        ``XCTR_k``/``YCTR_k``/``XWID_k``/``YWID_k`` for plane ``k - 1``, 0-based centres; widths from
        the grid spacing where the PSF has none.
    """
    size = psf.cube.shape[-1]
    values = {"CRPIX1": (size + 1) / 2, "CRPIX2": (size + 1) / 2}
    values["CDELT1"] = values["CDELT2"] = pixel_scale_arcsec / psf.oversampling
    header = fits.Header([("BUNIT", "", "")])
    header.extend([(key, values.get(key, value), comment) for key, value, comment in _PSF_WCS])
    header["OVERSAMP"] = psf.oversampling
    ix, iy = psf.zone_grid()
    widths = {"X": psf.x_widths, "Y": psf.y_widths}
    for axis, centres, grid in (("X", psf.x_centers, ix), ("Y", psf.y_centers, iy)):
        if widths[axis] is None:
            nodes = np.unique(np.round(centres, 4))
            spacing = np.gradient(nodes) if len(nodes) > 1 else np.array([2040.0])
            widths[axis] = spacing[grid]
    cards = []
    for plane in range(len(psf.cube)):
        zone = f"({ix[plane]}, {iy[plane]})"
        k = plane + 1
        cards += [
            (f"XCTR_{k}", float(psf.x_centers[plane]), f"Center of x zone {zone}"),
            (f"YCTR_{k}", float(psf.y_centers[plane]), f"Center of y zone {zone}"),
            (f"XWID_{k}", float(widths["X"][plane]), f"Width of x zone {zone}"),
            (f"YWID_{k}", float(widths["Y"][plane]), f"Width of y zone {zone}"),
        ]
    header.extend(cards)
    return header


def _pixel_scale_arcsec(image: SPHERExLevel2Image) -> float:
    """Return the side of the image's pixels from its WCS, arcsec (6.15 without a celestial WCS)."""
    wcs = image.wcs
    if wcs is None or not getattr(wcs, "has_celestial", False):
        return _PIXEL_SCALE_ARCSEC
    scale = float(np.sqrt(abs(np.linalg.det(wcs.celestial.pixel_scale_matrix)))) * 3600.0
    # Keep IRSA's 0.615 card exactly for their 6.15 arcsec pixels (CDELT 0.001708333 deg rounds off).
    return round(scale, 6)


def _describe_flags(header: fits.Header, comments: dict[str, str]) -> None:
    """Give the ``MP_<NAME>`` cards their comments and the blank ``BUNIT`` IRSA's FLAGS headers have."""
    for index, card in enumerate(header.cards):
        name = card.keyword[3:] if card.keyword.startswith("MP_") else None
        if name in comments:
            # Keep the card within 80 characters: cut the comment rather than let astropy warn.
            room = 80 - len(card.image.rstrip()) - 3
            header[index] = (card.value, comments[name][: max(room, 0)])
    header["BUNIT"] = ("", "")


def _wave_table(lookup: SpectralLookup) -> fits.BinTableHDU:
    nx, ny = len(lookup.x), len(lookup.y)
    columns = [
        fits.Column(
            name="X", format=f"{nx}J", dim=f"({nx})", array=np.round(lookup.x)[None, :].astype(np.int32)
        ),
        fits.Column(
            name="Y", format=f"{ny}J", dim=f"({ny})", array=np.round(lookup.y)[None, :].astype(np.int32)
        ),
        fits.Column(
            name="VALUES",
            format=f"{2 * nx * ny}E",
            dim=f"(2,{nx},{ny})",
            array=lookup.values.astype(np.float32)[None, ...],
        ),
    ]
    return fits.BinTableHDU.from_columns(columns, name="WCS-WAVE")


def _generic_unit(text: str) -> str:
    # IRSA spells units as astropy's generic format does: 'MJy / sr', 'MJy2 / sr2'.
    try:
        return parse_unit(text).to_string()
    except ValueError:
        return text
