"""The structure and header-derived values of SPHEREx image FITS files: which HDU holds which plane, the
unit, the WCS and the metadata.  `~spherex.core.image.fits_reader.SPHERExImageFitsReader` adds the pixel
planes.
"""

from __future__ import annotations

__all__ = ["SPHERExImageHeaderReader", "UnusableWcsWarning"]

import os
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, BinaryIO

from astropy import units as u
from astropy.io import fits
from astropy.utils.exceptions import AstropyUserWarning
from astropy.wcs import WCS, FITSFixedWarning

from ..errors import FitsLayoutError
from ..fits.file_reader import FitsFileReader, HduView
from ..fits.header import (
    DEFAULT_UNIT,
    UNIT_KEYWORD,
    copy_card,
    is_structural_keyword,
    is_wcs_keyword,
    parse_unit,
)
from ..fits.layout import FitsHdu
from ..fits.read_options import FitsReadOptions

_DEFAULT_OPTIONS = FitsReadOptions()


class UnusableWcsWarning(AstropyUserWarning):
    """The WCS cards of an image header build no WCS; the image is read without one."""


class SPHERExImageHeaderReader(FitsFileReader):
    """Read the planes of a SPHEREx image FITS file, together or one at a time.

    The headers are read and the structure checked (every HDU present in full, an image plane, all
    planes of one shape) on construction; pixel data are read only when a plane is asked for, in file
    order.  Plain local files are read directly (one positioned read per plane, or per cutout), their
    scan and the WCS, flag definitions and metadata parsed from it cached per file (see
    `spherex.core.fits.layout`); tile-compressed files, streams and files opened with ``open_kwargs``
    go through `astropy.io.fits`.  Use as a context manager, or call `close`.

    Parameters
    ----------
    path : `str`, `os.PathLike` or file-like
        File to read.
    memmap : `bool`, optional
        Accepted for compatibility: plain planes and cutouts are read directly (only the rows a cutout
        spans), other planes through astropy sections; pass ``open_kwargs={"memmap": True}`` to have
        astropy map the file.
    options : `FitsReadOptions`, optional
        Which HDU holds which plane, and a unit overriding ``BUNIT``; planes are found by name by default.
    open_kwargs : `~collections.abc.Mapping`, optional
        Keyword arguments for `astropy.io.fits.open` (the file is then read through astropy).

    Raises
    ------
    FileNotFoundError
        Raised if ``path`` does not exist.
    FitsLayoutError
        Raised if the file is not FITS, is truncated, has no image, or its planes differ in shape.

    Notes
    -----
    Subclasses for richer layouts (SPHEREx Level-2 images with ``ZODI``, ``PSF`` and ``WCS-WAVE``) extend
    `read_parts` (through ``_read_parts``) and `read_component` (through ``_read_component``) with the
    further planes, and `components` with their names.  Their building blocks: `hdus` and `hdu_named`
    (headers and data offsets without astropy), `read_hdu_pixels` (the direct read, astropy for
    compressed or scaled planes, cutouts included), `read_hdu` (one whole HDU, a table or a cube, as an
    astropy HDU from one read), `remember` (a value derived from the headers, computed once per file)
    and `hdul` (the astropy `~astropy.io.fits.HDUList`, opened on first use: slower, it parses every
    header again).
    """

    image_hdu_name: str = "IMAGE"
    flags_hdu_name: str = "FLAGS"
    variance_hdu_names: tuple[str, ...] = ("VARIANCE", "UNCERT")
    mask_hdu_name: str = "MASK"

    components: tuple[str, ...] = ("image", "variance", "flags", "mask", "wcs", "metadata")
    """Names `read_component` knows."""

    def __init__(
        self,
        path: str | os.PathLike | BinaryIO,
        *,
        memmap: bool = False,
        options: FitsReadOptions | None = None,
        open_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(path, open_kwargs=open_kwargs)
        self._memmap = memmap
        self.options = options if options is not None else _DEFAULT_OPTIONS
        try:
            with self._reporting_damage():
                hdus, by_name = self._layout.hdus, self._layout.by_name
                self._image_hdu = self.options.find_image(hdus, by_name, self.path, self.image_hdu_name)
                self._shape = self._plane_shape(self._image_hdu, "image")
                find = self.options.find_plane
                self._planes: dict[str, FitsHdu | None] = {
                    "flags": find("flags", (self.flags_hdu_name,), hdus, by_name, self._image_hdu, self.path),
                    "variance": find(
                        "uncertainty", self.variance_hdu_names, hdus, by_name, self._image_hdu, self.path
                    ),
                    "mask": find("mask", (self.mask_hdu_name,), hdus, by_name, self._image_hdu, self.path),
                }
                self._check_plane_shapes()
        except BaseException:
            self.close()
            raise

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of every plane, numpy order (`tuple` [`int`, ...])."""
        return self._shape

    @property
    def image_header(self) -> fits.Header:
        """Header of the image plane (`astropy.io.fits.Header`, without tile-compression keywords)."""
        return self._image_hdu.header

    # -- structure ---------------------------------------------------------------------------------------

    def _plane_hdu(self, names: str | Sequence[str]) -> HduView | None:
        for name in (names,) if isinstance(names, str) else names:
            hdu = self.hdu_named(name)
            if hdu is not None:
                if not hdu.is_image:
                    raise FitsLayoutError(self.path, f"HDU {name} is a table, not an image")
                return HduView(self, hdu)
        return None

    def _plane_shape(self, hdu: Any, what: str) -> tuple[int, ...]:
        shape = tuple(hdu.shape)
        if len(shape) != 2 or min(shape) < 1:
            raise FitsLayoutError(
                self.path,
                f"the {what} plane (HDU {hdu.name or hdu.index}) has shape {shape}, not a 2-d image",
            )
        return shape

    def _check_plane_shapes(self) -> None:
        for what, hdu in self._planes.items():
            if hdu is not None and tuple(hdu.shape) != self._shape:
                raise FitsLayoutError(
                    self.path,
                    f"the {what} plane (HDU {hdu.name or hdu.index}) has shape {tuple(hdu.shape)} but the "
                    f"image has {self._shape}; all planes must have one shape",
                )

    # -- planes -------------------------------------------------------------------------------------------

    # -- header-derived values ---------------------------------------------------------------------------

    def read_unit(self) -> u.UnitBase:
        """Read the image unit.

        Returns
        -------
        unit : `astropy.units.UnitBase`
            The ``unit`` read option if given, else ``BUNIT`` of the image plane, else `DEFAULT_UNIT`
            (electron/s).

        Raises
        ------
        FitsLayoutError
            Raised, as ``CCDData.read`` raises, if ``BUNIT`` is not a unit astropy can read; the ``unit``
            read option then reads the file.
        """
        if self.options.unit is not None:
            return self.options.unit
        index = self._image_hdu.index
        return self.remember(f"unit:{index}", lambda: self._parse_unit(self.image_header) or DEFAULT_UNIT)

    def read_wcs(self, slices: Any = None) -> WCS | None:
        """Read the world coordinate system of the image plane.

        Parameters
        ----------
        slices : `tuple` [`slice`, ...], optional
            Cutout in numpy (row, column) order; the WCS is sliced to match.

        Returns
        -------
        wcs : `astropy.wcs.WCS` or `None`
            A new object (the parsed WCS is cached per file); `None` if the image header has no WCS.
        """
        wcs = self.remember(f"wcs:{self._image_hdu.index}", self._parse_wcs)
        if wcs is None:
            return None
        slices = self.normalize_slices(slices)
        return wcs.deepcopy() if slices is None else wcs.slice(slices)

    def _parse_wcs(self) -> WCS | None:
        header = self.image_header
        if not any(is_wcs_keyword(key) for key in header):
            return None
        try:
            with warnings.catch_warnings():
                # Fix-ups astropy makes to legacy headers are expected, not the reader's business.
                warnings.simplefilter("ignore", FITSFixedWarning)
                return WCS(header, relax=True)
        except (ValueError, KeyError, MemoryError) as err:
            # As CCDData.read: the pixels are read without a WCS.  Its cards stay in ``meta``, so that a
            # write gives them back unchanged.
            problem = str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__
            warnings.warn(
                f"{self.path}: the WCS of HDU {self._image_hdu.name or self._image_hdu.index} cannot be "
                f"built ({problem}); read without a WCS, its cards kept in meta",
                UnusableWcsWarning,
                stacklevel=2,
            )
            return None

    def read_metadata(self) -> fits.Header:
        """Read the observation metadata.

        Returns
        -------
        metadata : `astropy.io.fits.Header`
            The cards of the primary header, then the cards of the image header not already present,
            leaving out in both structural keywords (`is_structural_keyword`), ``BUNIT`` and WCS
            keywords (`is_wcs_keyword`), which belong to ``unit`` and ``wcs``.  For files this package
            writes, that is exactly the primary header less its structural cards.  A new header: the
            one parsed is cached per file.
        """
        return self.remember(f"metadata:{self._image_hdu.index}", self._parse_metadata).copy()

    def _parse_metadata(self) -> fits.Header:
        # WCS cards that build no WCS belong to the metadata: nothing else would keep them.
        keep_wcs = self.read_wcs() is None
        cards = [
            card.image for card in self.primary_header.cards if self._is_metadata(card.keyword, keep_wcs)
        ]
        metadata = fits.Header.fromstring("".join(cards))
        if self._image_hdu.index != 0:
            for card in self.image_header.cards:
                keyword = card.keyword
                if not self._is_metadata(keyword, keep_wcs) or keyword == "EXTTYPE":
                    continue
                if keyword in ("COMMENT", "HISTORY", "") or keyword not in metadata:
                    metadata.append(copy_card(card), end=True)
        return metadata

    def read_merged_header(self) -> fits.Header:
        """Return the primary header updated with the image header, as ingest reads metadata.

        Returns
        -------
        header : `astropy.io.fits.Header`
            Primary header cards, then image header cards (which win where both have a keyword), without
            structural keywords; includes ``BUNIT`` and the WCS.
        """
        merged = fits.Header()
        for header in (self.primary_header, self.image_header):
            for card in header.cards:
                if is_structural_keyword(card.keyword):
                    continue
                if card.keyword in ("COMMENT", "HISTORY", ""):
                    merged.append(copy_card(card), end=True)
                else:
                    merged[card.keyword] = (card.value, card.comment)
        return merged

    # -- helpers ------------------------------------------------------------------------------------------

    def _is_metadata(self, keyword: str, keep_wcs: bool = False) -> bool:
        if is_structural_keyword(keyword) or keyword == UNIT_KEYWORD:
            return False
        return keep_wcs or not is_wcs_keyword(keyword)

    def _parse_unit(self, header: fits.Header) -> u.UnitBase | None:
        bunit = header.get(UNIT_KEYWORD)
        if bunit is None or (isinstance(bunit, str) and not bunit.strip()):
            return None
        if not isinstance(bunit, str):
            raise FitsLayoutError(self.path, f"BUNIT = {bunit!r} is not a string")
        try:
            return parse_unit(bunit)
        except ValueError:
            raise FitsLayoutError(
                self.path,
                f"BUNIT = {bunit!r} cannot be interpreted as a unit; read it with unit=... (as CCDData.read)",
            ) from None
