"""The writer of SPHEREx image FITS files (the layout is described in `spherex.core.image.fits`)."""

from __future__ import annotations

__all__ = ["SPHERExImageFitsWriter"]

import os
import warnings
from typing import TYPE_CHECKING, Any, BinaryIO, Self

import numpy as np
from astropy.io import fits
from astropy.nddata import VarianceUncertainty
from astropy.utils.exceptions import AstropyUserWarning, AstropyWarning
from astropy.wcs import WCSHDO_P17, WCSHDO_all
from astropy.wcs.wcs import WCSHDO_SIP

from ..errors import SPHERExImageError
from ..fits.flags import flag_defs_to_cards
from ..fits.header import (
    UNIT_KEYWORD,
    check_pixel_dtype,
    is_wcs_keyword,
    metadata_cards,
    metadata_to_header,
    unit_string,
)
from ..fits.write_options import FitsWriteOptions

if TYPE_CHECKING:
    from .spherex_image import SPHERExImage

# All of wcslib's extensions, SIP distortions, and 17 significant digits so that the WCS read back maps
# pixels to the sky bit for bit as the one written (wcslib's default of 14 digits loses ~1e-14 deg).
_WCS_WRITE_FLAGS = WCSHDO_all | WCSHDO_P17 | WCSHDO_SIP


class SPHERExImageFitsWriter:
    """Write a `~spherex.core.SPHERExImage` in the SPHEREx FITS layout.

    Parameters
    ----------
    compression : `str`, optional
        Tile-compress every plane with this algorithm (``RICE_1``, ``GZIP_1``, ``GZIP_2``, ``PLIO_1``,
        ``HCOMPRESS_1``, ``NOCOMPRESS``); `None` (default) writes plain image HDUs.  Integer planes
        (``FLAGS``, ``MASK``) are always compressed losslessly; see `FitsWriteOptions` for floats.
    quantize_level : `float`, optional
        Quantization of floating point planes when compressing.
    checksum : `bool`, optional
        Write ``CHECKSUM`` and ``DATASUM`` keywords in every HDU.
    hdu_flags, hdu_uncertainty, hdu_mask : `str` or `None`, optional
        ``EXTNAME`` of the flags, variance and mask planes (``FLAGS``, ``VARIANCE``, ``MASK``); `None`
        leaves the plane out.  The keywords of the 2020 proof of concept's writer (and, but for
        ``hdu_flags``, of `~astropy.nddata.CCDData.to_hdu`).
    hdu_psf : `str` or `None`, optional
        ``EXTNAME`` of the image's ``psf`` (NDData's single PSF kernel), ``PSFIMAGE`` as CCDData writes
        it; `None` leaves it out.
    wcs_relax : `bool` or `int`, optional
        ``relax`` of `astropy.wcs.WCS.to_header`.  `True` (default) writes every wcslib extension and
        SIP with 17 significant digits, so that the WCS reads back bit for bit.
    key_uncertainty_type : `str`, optional
        If given, write the uncertainty class (``VarianceUncertainty``) under this keyword of the variance
        header, as CCDData and the 2020 writer did with ``UTYPE``; `None` (default) writes no such card
        (this package's reader takes a plane without one as variance).

    Raises
    ------
    SPHERExImageError
        Raised if ``compression`` is not a known algorithm or a plane name is not a string.

    Notes
    -----
    Subclasses for richer layouts extend `to_hdulist`, appending their HDUs after those of this class.
    """

    def __init__(
        self,
        compression: str | None = None,
        quantize_level: float | None = None,
        checksum: bool = False,
        *,
        hdu_flags: str | None = "FLAGS",
        hdu_uncertainty: str | None = "VARIANCE",
        hdu_mask: str | None = "MASK",
        hdu_psf: str | None = "PSFIMAGE",
        wcs_relax: bool | int = True,
        key_uncertainty_type: str | None = None,
    ) -> None:
        self.options = FitsWriteOptions(compression, quantize_level, checksum)
        planes = {
            "hdu_flags": hdu_flags,
            "hdu_uncertainty": hdu_uncertainty,
            "hdu_mask": hdu_mask,
            "hdu_psf": hdu_psf,
        }
        for name, value in {**planes, "key_uncertainty_type": key_uncertainty_type}.items():
            if value is not None and not (isinstance(value, str) and value.strip()):
                raise SPHERExImageError(f"{name}={value!r}: give a FITS keyword or name, or None")
        self.hdu_flags = hdu_flags
        self.hdu_uncertainty = hdu_uncertainty
        self.hdu_mask = hdu_mask
        self.hdu_psf = hdu_psf
        self.wcs_relax = _WCS_WRITE_FLAGS if wcs_relax is True else wcs_relax
        self.key_uncertainty_type = key_uncertainty_type

    @classmethod
    def from_options(cls, options: FitsWriteOptions) -> Self:
        """Make a writer from `FitsWriteOptions`.

        Parameters
        ----------
        options : `FitsWriteOptions`
            Compression and checksum options.

        Returns
        -------
        writer : `SPHERExImageFitsWriter`
            The writer.
        """
        return cls(options.compression, options.quantize_level, options.checksum)

    def to_hdulist(self, image: SPHERExImage) -> fits.HDUList:
        """Build the HDUs of an image.

        Parameters
        ----------
        image : `~spherex.core.SPHERExImage`
            Image to convert.

        Returns
        -------
        hdul : `astropy.io.fits.HDUList`
            ``PRIMARY`` (header only), ``IMAGE``, then ``FLAGS``, ``VARIANCE``, ``MASK`` and ``PSFIMAGE``
            when present.

        Raises
        ------
        SPHERExImageError
            Raised if the image is not 2-d, has a non-numeric dtype, or its metadata cannot be written to
            a FITS header.
        """
        data = np.asarray(image.data)
        if data.ndim != 2:
            raise SPHERExImageError(
                f"A SPHEREx image must be 2-d to be written to FITS, not shape {data.shape}"
            )
        check_pixel_dtype(data, "image")
        wcs_cards = self._wcs_cards(image)
        primary = fits.PrimaryHDU(header=self._primary_header(image))
        hdus: list[Any] = [primary]

        image_header = fits.Header()
        image_header[UNIT_KEYWORD] = (unit_string(image.unit), "Unit of the image")
        image_header.extend(wcs_cards)
        hdus.append(self._plane_hdu(data, image_header, "IMAGE"))

        if image.flags is not None and self.hdu_flags:
            flags_header = fits.Header()
            # Firefly overlays integer planes with EXTTYPE = 'MASK' bit by bit, naming bits from MP_ keys.
            flags_header["EXTTYPE"] = ("MASK", "bitmask; MP_<NAME> = bit name the flags")
            flags_header.extend(flag_defs_to_cards(image.flag_defs))
            flags = np.asarray(image.flags, dtype=np.int32)
            hdus.append(self._plane_hdu(flags, flags_header, self.hdu_flags))

        if image.uncertainty is not None and self.hdu_uncertainty:
            variance = image.uncertainty.represent_as(VarianceUncertainty)
            variance_array = np.asarray(variance.array)
            check_pixel_dtype(variance_array, "variance")
            variance_header = fits.Header()
            variance_header[UNIT_KEYWORD] = (unit_string(variance.unit), "Unit of the variance")
            if self.key_uncertainty_type:
                variance_header[self.key_uncertainty_type] = ("VarianceUncertainty", "Uncertainty class")
            hdus.append(self._plane_hdu(variance_array, variance_header, self.hdu_uncertainty))

        if image.mask is not None and self.hdu_mask:
            mask = np.asarray(image.mask).astype(np.uint8)
            hdus.append(self._plane_hdu(mask, fits.Header(), self.hdu_mask))

        if image.psf is not None and self.hdu_psf:
            psf = np.asarray(image.psf)
            check_pixel_dtype(psf, "psf")
            # Uncompressed whatever the options: a kernel is small, and lossy quantization would change it.
            hdus.append(fits.ImageHDU(psf, name=self.hdu_psf))
        return fits.HDUList(hdus)

    def write(
        self,
        image: SPHERExImage,
        path: str | os.PathLike | BinaryIO,
        overwrite: bool = False,
        **writeto_kwargs: Any,
    ) -> None:
        """Write an image to a FITS file.

        Parameters
        ----------
        image : `~spherex.core.SPHERExImage`
            Image to write.
        path : `str`, `os.PathLike` or file-like
            Output file.
        overwrite : `bool`, optional
            Replace an existing file.
        **writeto_kwargs
            Further keyword arguments of `astropy.io.fits.HDUList.writeto` (e.g. ``output_verify``).

        Raises
        ------
        FileExistsError
            Raised if ``path`` exists and ``overwrite`` is `False`.
        SPHERExImageError
            Raised if the image cannot be represented in FITS (see `to_hdulist`).
        """
        if not hasattr(path, "write"):
            path = os.fspath(path)
        hdul = self.to_hdulist(image)
        if isinstance(path, str) and not overwrite and os.path.exists(path):
            raise FileExistsError(f"{path}: file exists; pass overwrite=True to replace it")
        with warnings.catch_warnings():
            # Long MP_ keywords are written as HIERARCH on purpose.
            warnings.filterwarnings("ignore", message=".*HIERARCH card will be created.*")
            hdul.writeto(path, overwrite=overwrite, checksum=self.options.checksum, **writeto_kwargs)

    # -- helpers ------------------------------------------------------------------------------------------

    def _plane_hdu(self, data: np.ndarray, header: fits.Header, name: str) -> fits.ImageHDU:
        return self.options.image_hdu(data, header, name)

    def _wcs_cards(self, image: SPHERExImage) -> list[fits.Card]:
        # WCS cards in ``meta`` (an image built from a header, or read with a WCS that could not be
        # built) go where a reader looks for them; with a ``wcs`` they give way to it, but not silently.
        meta_wcs = [card for card in metadata_cards(image.meta) if is_wcs_keyword(card.keyword)]
        if image.wcs is None:
            return meta_wcs
        wcs = image.wcs
        if wcs.naxis != 2:
            raise SPHERExImageError(f"The WCS of a SPHEREx image must have 2 axes, not {wcs.naxis}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AstropyWarning)
            header = wcs.to_header(relax=self.wcs_relax)
        replaced = sorted({card.keyword for card in meta_wcs if card.keyword not in header})
        if replaced:
            warnings.warn(
                f"meta holds WCS cards the image's wcs does not write ({', '.join(replaced)}): not written; "
                "the wcs is",
                AstropyUserWarning,
                stacklevel=4,
            )
        return list(header.cards)

    def _primary_header(self, image: SPHERExImage) -> fits.Header:
        return metadata_to_header(image.meta)
