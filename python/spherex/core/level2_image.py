"""The in-memory SPHEREx Level-2 spectral image: a SPHERExImage with zodi, PSF and wavelength lookup."""

from __future__ import annotations

__all__ = ["SPHERExLevel2Image", "level2_image_reader"]

import os
from typing import Any, BinaryIO, ClassVar

import numpy as np
from astropy.io import registry

from .errors import SPHERExImageError
from .level2_image_fits import SPHERExLevel2FitsReader, SPHERExLevel2FitsWriter
from .level2_products import Level2PSF, SpectralLookup
from .spherex_image import SPHERExImage, spherex_image_writer

# Set in the metadata of an image whose zodiacal light has been subtracted.
_ZODI_SUBTRACTED = "ZODISUB"


class SPHERExLevel2Image(SPHERExImage):
    """A SPHEREx Level-2 spectral image as IRSA publishes it.

    Parameters
    ----------
    data : `numpy.ndarray`-like
        Calibrated surface brightness (MJy/sr), zodiacal light included.
    *args
        Further positional arguments of `~spherex.core.SPHERExImage`.
    zodi : `numpy.ndarray`, optional
        Zodiacal light model of the shape of ``data``, in the image unit.
    psf_model : `Level2PSF`, optional
        PSF cube with zone centres (the ``psf`` component; not NDData's single-kernel ``psf``).
    spectral_lookup : `SpectralLookup`, optional
        The ``WCS-WAVE`` wavelength and bandwidth table.
    **kwargs
        Further keyword arguments of `~spherex.core.SPHERExImage` (``unit``, ``uncertainty``,
        ``flags``, ``flag_defs``, ``wcs``, ``meta``).

    Raises
    ------
    SPHERExImageError
        Raised if ``zodi`` differs in shape from the data, or a plane is invalid.

    Notes
    -----
    Slicing (``image[100:200, 50:150]``) cuts the zodi plane too and keeps the PSF cube and the
    wavelength table whole, moving their origin so that `wavelength_at` and `psf_at` of the cutout
    answer for the same pixels of the full array.
    """

    fits_reader_class: ClassVar[type[SPHERExLevel2FitsReader]] = SPHERExLevel2FitsReader
    fits_writer_class: ClassVar[type[SPHERExLevel2FitsWriter]] = SPHERExLevel2FitsWriter

    def __init__(
        self,
        data: Any,
        *args: Any,
        zodi: Any = None,
        psf_model: Level2PSF | None = None,
        spectral_lookup: SpectralLookup | None = None,
        **kwargs: Any,
    ) -> None:
        if isinstance(data, SPHERExLevel2Image):
            zodi = data.zodi if zodi is None else zodi
            psf_model = data.psf_model if psf_model is None else psf_model
            spectral_lookup = data.spectral_lookup if spectral_lookup is None else spectral_lookup
        super().__init__(data, *args, **kwargs)
        if zodi is not None:
            zodi = np.asarray(zodi)
            if zodi.shape != np.shape(self.data):
                raise SPHERExImageError(
                    f"The zodi plane has shape {zodi.shape} but the image has {np.shape(self.data)}"
                )
        self.zodi = zodi
        # Not ``psf``: NDData's ``psf`` is a single kernel array.
        self.psf_model = psf_model
        self.spectral_lookup = spectral_lookup

    def _slice(self, item: Any) -> dict[str, Any]:
        kwargs = super()._slice(item)
        kwargs["zodi"] = None if self.zodi is None else self.zodi[item]
        rows, columns = (item + (slice(None),) * 2)[:2] if isinstance(item, tuple) else (item, slice(None))
        if not (isinstance(rows, slice) and isinstance(columns, slice)):
            raise SPHERExImageError(f"A SPHEREx Level-2 image can only be cut with slices, not {item!r}")
        ny, nx = np.shape(self.data)
        (y0, _, ystep), (x0, _, xstep) = rows.indices(ny), columns.indices(nx)
        if ystep != 1 or xstep != 1:
            raise SPHERExImageError(f"Level-2 cutouts must have a step of 1, not {item!r}")
        kwargs["psf_model"] = None if self.psf_model is None else self.psf_model.shifted(x0, y0)
        kwargs["spectral_lookup"] = (
            None if self.spectral_lookup is None else self.spectral_lookup.shifted(x0, y0)
        )
        return kwargs

    @property
    def origin(self) -> tuple[int, int]:
        """0-based (x, y) of pixel (0, 0) on the full detector array (`tuple` [`int`, `int`])."""
        for product in (self.spectral_lookup, self.psf_model):
            if product is not None:
                return product.origin
        return (0, 0)

    def wavelength_at(self, x: float | np.ndarray, y: float | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return the central wavelength and bandwidth seen by pixels.

        Parameters
        ----------
        x, y : `float` or `numpy.ndarray`
            0-based pixel positions (column, row) in this image.

        Returns
        -------
        wavelength, bandwidth : `numpy.ndarray`
            Micron, bilinear in the ``WCS-WAVE`` table.

        Raises
        ------
        SPHERExImageError
            Raised if the image has no wavelength table.
        """
        if self.spectral_lookup is None:
            raise SPHERExImageError("This SPHEREx image has no WCS-WAVE wavelength table")
        return self.spectral_lookup.at(x, y)

    def wavelength_maps(self) -> np.ndarray:
        """Return the per-pixel wavelength and bandwidth maps.

        Returns
        -------
        maps : `numpy.ndarray`
            float32 ``(2, rows, columns)``, micron.

        Raises
        ------
        SPHERExImageError
            Raised if the image has no wavelength table.
        """
        if self.spectral_lookup is None:
            raise SPHERExImageError("This SPHEREx image has no WCS-WAVE wavelength table")
        return self.spectral_lookup.maps(np.shape(self.data))

    def psf_at(self, x: float, y: float) -> np.ndarray:
        """Return the oversampled PSF for a pixel position (that of the nearest PSF zone).

        Parameters
        ----------
        x, y : `float`
            0-based pixel position (column, row) in this image.

        Returns
        -------
        psf : `numpy.ndarray`
            2-d PSF image, `Level2PSF.oversampling` pixels per image pixel.

        Raises
        ------
        SPHERExImageError
            Raised if the image has no PSF cube.
        """
        if self.psf_model is None:
            raise SPHERExImageError("This SPHEREx image has no PSF cube")
        return self.psf_model.at(x, y)

    def zodi_subtracted(self) -> SPHERExLevel2Image:
        """Return a copy with the zodiacal light model subtracted from the image.

        Returns
        -------
        image : `SPHERExLevel2Image`
            ``data - zodi``; variance, flags, WCS, PSF and wavelength table shared, ``meta`` copied
            with ``ZODISUB = True``.

        Raises
        ------
        SPHERExImageError
            Raised if the image has no zodi plane or its zodi was already subtracted.
        """
        if self.zodi is None:
            raise SPHERExImageError("This SPHEREx image has no ZODI plane to subtract")
        meta = self.meta.copy()
        if meta.get(_ZODI_SUBTRACTED):
            raise SPHERExImageError("The zodiacal light of this image was already subtracted")
        meta[_ZODI_SUBTRACTED] = (True, "Zodiacal light model subtracted from IMAGE")
        return type(self)(
            (np.asarray(self.data) - self.zodi).astype(np.asarray(self.data).dtype),
            unit=self.unit,
            uncertainty=self.uncertainty,
            flags=self.flags,
            flag_defs=self.flag_defs,
            mask=self.mask,
            wcs=self.wcs,
            meta=meta,
            zodi=self.zodi,
            psf_model=self.psf_model,
            spectral_lookup=self.spectral_lookup,
        )


def level2_image_reader(
    filename: str | os.PathLike | BinaryIO, slices: Any = None, **kwargs: Any
) -> SPHERExLevel2Image:
    """Read a `SPHERExLevel2Image` from FITS; the ``fits`` reader of astropy's I/O registry.

    Parameters
    ----------
    filename : `str` or `os.PathLike` or file-like
        File to read: a Level-2 file, or any layout `~spherex.core.SPHERExImage` reads.
    slices : `tuple` [`slice`, ...], optional
        Cutout in numpy (row, column) order.
    **kwargs
        Not supported; present so astropy's registry can report unknown arguments clearly.

    Returns
    -------
    image : `SPHERExLevel2Image`
        The image.

    Raises
    ------
    TypeError
        Raised for unknown keyword arguments.
    FitsLayoutError
        Raised if the file is not a readable SPHEREx image.
    """
    if kwargs:
        raise TypeError(f"SPHERExLevel2Image.read got unexpected arguments {sorted(kwargs)}")
    return SPHERExLevel2Image.from_fits(filename, slices=slices)


def _always_fits(origin: str, path: Any, fileobj: Any, *args: Any, **kwargs: Any) -> bool:
    return True


with registry.delay_doc_updates(SPHERExLevel2Image):
    registry.register_reader("fits", SPHERExLevel2Image, level2_image_reader)
    registry.register_writer("fits", SPHERExLevel2Image, spherex_image_writer)
    registry.register_identifier("fits", SPHERExLevel2Image, _always_fits)
