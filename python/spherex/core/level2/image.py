"""The in-memory SPHEREx Level-2 spectral image: a SPHERExImage with zodi, PSF and wavelength lookup."""

from __future__ import annotations

__all__ = ["LEVEL2_FLAG_COMMENTS", "SPHERExLevel2Image", "level2_image_reader"]

import functools
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
from astropy.io import registry

from ..errors import SPHERExImageError
from ..image.io import _always_fits, spherex_image_reader, spherex_image_writer
from ..image.spherex_image import SPHERExImage
from .fits_reader import SPHERExLevel2FitsReader
from .fits_writer import SPHERExLevel2FitsWriter
from .products import Level2PSF, SpectralLookup

# Set in the metadata of an image whose zodiacal light has been subtracted.
_ZODI_SUBTRACTED = "ZODISUB"

LEVEL2_FLAG_COMMENTS: Mapping[str, str] = {
    "TRANSIENT": "Transient detected during SUR",
    "OVERFLOW": "Overflow detected during SUR",
    "SUR_ERROR": "Error in onboard processing",
    "PHANTOM": "Phantom pixel",
    "REFERENCE": "Reference pixel",
    "NONFUNC": "Permanently unusable",
    "DICHROIC": "Low efficiency due to dichroic",
    "MISSING_DATA": "Onboard data lost",
    "HOT": "Hot pixel",
    "COLD": "Anomalously low signal",
    "FULLSAMPLE": "Pixel full sample history is available",
    "PHANMISS": "Phantom correction was not applied",
    "NONLINEAR": "Nonlinearity correction cannot be applied reliably",
    "PERSIST": "Persistent charge above threshold",
    "OUTLIER": "Pixel flagged by Detect Outliers",
    "SOURCE": "Pixel mapped to a known source",
}
"""Comments of the ``MP_<NAME>`` cards of QR2 ``FLAGS`` headers, as IRSA's tutorial "Introduction to SPHEREx
Spectral Images" prints them (level2_2025W43_1A_0516_1D5_spx_l2b-v20-2025-299); written for flags an
image defines without a comment of its own."""


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
    flag_comments : `~collections.abc.Mapping` [`str`, `str`], optional
        What each flag means, written as the comment of its ``MP_<NAME>`` card; `LEVEL2_FLAG_COMMENTS`
        for the flags not given.
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
        flag_comments: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        if isinstance(data, SPHERExLevel2Image):
            zodi = data.zodi if zodi is None else zodi
            psf_model = data.psf_model if psf_model is None else psf_model
            spectral_lookup = data.spectral_lookup if spectral_lookup is None else spectral_lookup
            flag_comments = data.flag_comments if flag_comments is None else flag_comments
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
        self._flag_comments = {str(k).upper(): str(v) for k, v in (flag_comments or {}).items()}

    @property
    def flag_comments(self) -> dict[str, str]:
        """What each defined flag means (`dict` [`str`, `str`]): the file's own card comments, else
        `LEVEL2_FLAG_COMMENTS`.
        """
        return {
            name: self._flag_comments.get(name, LEVEL2_FLAG_COMMENTS.get(name, ""))
            for name in self.flag_defs
            if name in self._flag_comments or name in LEVEL2_FLAG_COMMENTS
        }

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
        kwargs["flag_comments"] = self._flag_comments
        return kwargs

    @property
    def origin(self) -> tuple[int, int]:
        """0-based (x, y) of pixel (0, 0) on the full detector array (`tuple` [`int`, `int`])."""
        for product in (self.spectral_lookup, self.psf_model):
            if product is not None:
                return product.origin
        return (0, 0)

    def _lookup(self) -> SpectralLookup:
        if self.spectral_lookup is None:
            raise SPHERExImageError("This SPHEREx image has no WCS-WAVE wavelength table")
        return self.spectral_lookup

    def wavelength_at(self, x: float | np.ndarray, y: float | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return the central wavelength and bandwidth (micron) at 0-based pixel positions of this image,
        fractional positions included: bilinear in ``WCS-WAVE``, as wcslib's ``WAVE-TAB`` lookup (WCS ``W``).

        Raises
        ------
        SPHERExImageError
            Raised if the image has no wavelength table.
        """
        return self._lookup().at(x, y)

    def wavelength_maps(self) -> np.ndarray:
        """Return float32 ``(2, rows, columns)`` wavelength and bandwidth maps (micron) of every pixel.

        Raises
        ------
        SPHERExImageError
            Raised if the image has no wavelength table.
        """
        return self._lookup().maps(np.shape(self.data))

    def psf_zone(self, x: float | np.ndarray, y: float | np.ndarray) -> int | np.ndarray:
        """Return the PSF zone of a pixel position, as IRSA's corrected recipe picks it (`Level2PSF.zone_at`).

        Parameters
        ----------
        x, y : `float` or `numpy.ndarray`
            0-based pixel position (column, row) in this image; on a cutout, its own pixels.

        Returns
        -------
        zone : `int` or `numpy.ndarray`
            0-based plane of ``psf_model.cube``: the zone whose centre is nearest the position on the full
            array.  IRSA numbers it ``zone + 1`` (``XCTR_{zone+1}``).  Right for every release: the zones
            of files with IRSA's PSF header error (``VERSION`` before 6.5.6 without ``+psffix1``) were
            corrected on read.

        Raises
        ------
        SPHERExImageError
            Raised if the image has no PSF.
        """
        if self.psf_model is None:
            raise SPHERExImageError("This SPHEREx image has no PSF")
        return self.psf_model.zone_at(x, y)

    def psf_at(self, x: float, y: float) -> np.ndarray:
        """Return the oversampled PSF of the zone of a pixel position: ``psf_model.cube[psf_zone(x, y)]``.

        Parameters
        ----------
        x, y : `float`
            0-based pixel position (column, row) in this image; on a cutout, its own pixels.

        Returns
        -------
        psf : `numpy.ndarray`
            2-d, ``psf_model.oversampling`` PSF pixels per image pixel (10 in QR1/QR2), centred, as stored.

        Raises
        ------
        SPHERExImageError
            Raised if the image has no PSF.
        """
        zone = self.psf_zone(float(x), float(y))  # first: it refuses an image without a PSF
        return self.psf_model.cube[zone]

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
            flag_comments=self._flag_comments,
        )


level2_image_reader = functools.partial(spherex_image_reader, image_class=SPHERExLevel2Image)
"""Read a `SPHERExLevel2Image` from FITS (``slices`` for a cutout); the ``fits`` reader of astropy's I/O
registry, so ``SPHERExLevel2Image.read(path)`` reads a Level-2 file or any layout SPHERExImage reads."""

with registry.delay_doc_updates(SPHERExLevel2Image):
    registry.register_reader("fits", SPHERExLevel2Image, level2_image_reader)
    registry.register_writer("fits", SPHERExLevel2Image, spherex_image_writer)
    registry.register_identifier("fits", SPHERExLevel2Image, _always_fits)
