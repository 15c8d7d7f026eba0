"""The reader of SPHEREx image FITS files: planes together or one at a time, cutouts, components."""

from __future__ import annotations

__all__ = ["SPHERExImageFitsReader"]

import os
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, BinaryIO

import numpy as np
from astropy import units as u
from astropy.io import fits
from astropy.nddata import NDUncertainty
from astropy.wcs import WCS, FITSFixedWarning

from .errors import FitsLayoutError
from .fits_file_reader import FitsFileReader, HduView
from .fits_header import (
    DEFAULT_UNIT,
    UNCERTAINTY_TYPES,
    UNIT_KEYWORD,
    copy_card,
    is_structural_keyword,
    is_wcs_keyword,
    parse_unit,
)
from .fits_layout import FitsHdu
from .fits_pixels import normalize_slices, prefetch_rows
from .fits_read_options import FitsReadOptions
from .flags import flags_as_int32, read_flag_defs

_DEFAULT_OPTIONS = FitsReadOptions()


class SPHERExImageFitsReader(FitsFileReader):
    """Read the planes of a SPHEREx image FITS file, together or one at a time.

    The headers are read and the structure checked (every HDU present in full, an image plane, all
    planes of one shape) on construction; pixel data are read only when a plane is asked for, in file
    order.  Plain local files are read directly (one positioned read per plane, or per cutout), their
    scan and the WCS, flag definitions and metadata parsed from it cached per file (see
    `spherex.core.fits_layout`); tile-compressed files, streams and files opened with ``open_kwargs``
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

    def normalize_slices(self, slices: Any) -> tuple[slice, ...] | None:
        """Check a ``slices`` parameter against the image shape.

        Parameters
        ----------
        slices : `tuple` [`slice`, ...] or `slice` or `None`
            Cutout in numpy (row, column) order.

        Returns
        -------
        slices : `tuple` [`slice`, ...] or `None`
            One non-empty forward slice per axis with explicit bounds, or `None` for the whole image.

        Raises
        ------
        SPHERExImageError
            Raised if ``slices`` is not a tuple of slices, selects no pixels or has a negative step.
        """
        if slices is None:
            return None
        return normalize_slices(slices, self._shape, self.path)

    def read_image(self, slices: Any = None) -> np.ndarray:
        """Read the image plane (``slices``: cutout in numpy order; dtype as stored)."""
        return self.read_hdu_pixels(self._image_hdu, self.normalize_slices(slices))

    def read_variance(self, slices: Any = None) -> np.ndarray | None:
        """Read the uncertainty plane as stored (`None` without one); see `read_uncertainty`."""
        hdu = self._planes["variance"]
        return None if hdu is None else self.read_hdu_pixels(hdu, self.normalize_slices(slices))

    def read_uncertainty(self, slices: Any = None) -> NDUncertainty | None:
        """Read the uncertainty plane as an astropy uncertainty.

        Parameters
        ----------
        slices : `tuple` [`slice`, ...], optional
            Cutout in numpy (row, column) order; the whole plane if `None`.

        Returns
        -------
        uncertainty : `astropy.nddata.NDUncertainty` or `None`
            `~astropy.nddata.VarianceUncertainty` unless the ``UTYPE`` keyword (``key_uncertainty_type``)
            names another type; its unit is the ``BUNIT`` of the plane unless the image unit was given.
            `None` if the file has no uncertainty plane.
        """
        hdu = self._planes["variance"]
        if hdu is None:
            return None
        array = self.read_hdu_pixels(hdu, self.normalize_slices(slices))
        key = self.options.key_uncertainty_type
        uncertainty_class, unit = self.remember(
            f"uncertainty:{hdu.index}:{key}", lambda: self._uncertainty_type(hdu, key)
        )
        return uncertainty_class(array, unit=None if self.options.unit is not None else unit, copy=False)

    def _uncertainty_type(self, hdu: FitsHdu, key: str) -> tuple[type[NDUncertainty], u.UnitBase | None]:
        utype = hdu.header.get(key, "VarianceUncertainty")
        try:
            uncertainty_class = UNCERTAINTY_TYPES[utype]
        except (KeyError, TypeError):
            raise FitsLayoutError(
                self.path, f"HDU {hdu.name or hdu.index} has unknown uncertainty type {key}={utype!r}"
            ) from None
        unit = self._parse_unit(hdu.header)
        # The plane's unit follows from the image unit; an unreadable BUNIT here adds nothing.
        return uncertainty_class, None if isinstance(unit, u.UnrecognizedUnit) else unit

    def read_flags(self, slices: Any = None) -> np.ndarray | None:
        """Read the flags plane.

        Parameters
        ----------
        slices : `tuple` [`slice`, ...], optional
            Cutout in numpy (row, column) order; the whole plane if `None`.

        Returns
        -------
        flags : `numpy.ndarray` or `None`
            int32 bitmask (narrower integer planes are widened, uint32 reinterpreted bit for bit, an
            integer plane with ``BLANK``, which astropy returns as floats, restored to its integers);
            `None` if the file has no flags plane.

        Raises
        ------
        FitsLayoutError
            Raised if the plane does not hold integers that fit in 32 bits.
        """
        hdu = self._planes["flags"]
        if hdu is None:
            return None
        flags = self.read_hdu_pixels(hdu, self.normalize_slices(slices))
        return flags_as_int32(flags, hdu.header, self.path, hdu.name or str(hdu.index))

    def read_flag_defs(self) -> dict[str, int]:
        """Read the flag definitions (``MP_<NAME>`` keywords of the flags HDU; empty without one)."""
        hdu = self._planes["flags"]
        if hdu is None:
            return {}
        return dict(self.remember(f"flag_defs:{hdu.index}", lambda: read_flag_defs(hdu.header, self.path)))

    def read_mask(self, slices: Any = None) -> np.ndarray | None:
        """Read the mask plane as booleans (`True` = masked); `None` without one."""
        hdu = self._planes["mask"]
        if hdu is None:
            return None
        return self.read_hdu_pixels(hdu, self.normalize_slices(slices)).astype(bool)

    def read_unit(self) -> u.UnitBase:
        """Read the image unit.

        Returns
        -------
        unit : `astropy.units.UnitBase`
            The ``unit`` read option if given, else ``BUNIT`` of the image plane, else `DEFAULT_UNIT`
            (electron/s).  Unit strings astropy cannot parse are kept as `astropy.units.UnrecognizedUnit`.
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
            raise FitsLayoutError(
                self.path, f"invalid WCS in HDU {self._image_hdu.name or self._image_hdu.index} ({err})"
            ) from err

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
        cards = [card.image for card in self.primary_header.cards if self._is_metadata(card.keyword)]
        metadata = fits.Header.fromstring("".join(cards))
        if self._image_hdu.index != 0:
            for card in self.image_header.cards:
                keyword = card.keyword
                if not self._is_metadata(keyword) or keyword == "EXTTYPE":
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

    def read_component(self, component: str, slices: Any = None) -> Any:
        """Read one component of the image.

        Parameters
        ----------
        component : `str`
            One of `components`.
        slices : `tuple` [`slice`, ...], optional
            Cutout in numpy (row, column) order (ignored by ``metadata``).

        Returns
        -------
        value : `typing.Any`
            The array, WCS or header; `None` for a plane the file does not have.

        Raises
        ------
        KeyError
            Raised if ``component`` is not known.
        """
        if component not in self.components:
            raise KeyError(
                f"{self.path}: unknown SPHEREx image component {component!r}; known: {self.components}"
            )
        with self._reporting_damage():
            return self._read_component(component, slices)

    def _read_component(self, component: str, slices: Any) -> Any:
        match component:
            case "image":
                return self.read_image(slices)
            case "variance":
                return self.read_variance(slices)
            case "flags":
                return self.read_flags(slices)
            case "mask":
                return self.read_mask(slices)
            case "wcs":
                return self.read_wcs(slices)
            case "metadata":
                return self.read_metadata()
        raise KeyError(f"{self.path}: no reader for component {component!r}")

    def read_parts(self, slices: Any = None) -> dict[str, Any]:
        """Read everything needed to build a `~spherex.core.SPHERExImage`.

        Parameters
        ----------
        slices : `tuple` [`slice`, ...], optional
            Cutout in numpy (row, column) order; every plane and the WCS are cut alike.

        Returns
        -------
        parts : `dict` [`str`, `typing.Any`]
            Keyword arguments of the `~spherex.core.SPHERExImage` constructor: ``data``, ``unit``,
            ``uncertainty``, ``flags``, ``flag_defs``, ``mask``, ``wcs`` and ``meta``.
        """
        with self._reporting_damage():
            return self._read_parts(self.normalize_slices(slices))

    def _read_parts(self, slices: tuple[slice, ...] | None) -> dict[str, Any]:
        readers = {
            "data": (self._image_hdu, self.read_image),
            "flags": (self._planes["flags"], self.read_flags),
            "uncertainty": (self._planes["variance"], self.read_uncertainty),
            "mask": (self._planes["mask"], self.read_mask),
        }
        parts: dict[str, Any] = dict.fromkeys(readers)
        if slices is not None and self._fd is not None:
            plain = [hdu for hdu, _ in readers.values() if hdu is not None and hdu.raw_readable]
            if len(plain) > 1 and all(len(hdu.shape) == 2 for hdu in plain):
                prefetch_rows(self._fd, plain, slices)
        # In file order (IMAGE, FLAGS, VARIANCE as written), so that the kernel's read-ahead serves.
        for key, (hdu, read) in sorted(readers.items(), key=lambda item: _position(item[1][0])):
            if hdu is not None:
                parts[key] = read(slices)
        parts.update(
            unit=self.read_unit(),
            flag_defs=self.read_flag_defs(),
            wcs=self.read_wcs(slices),
            meta=self.read_metadata(),
        )
        return parts

    # -- helpers ------------------------------------------------------------------------------------------

    def _is_metadata(self, keyword: str) -> bool:
        return not (is_structural_keyword(keyword) or is_wcs_keyword(keyword) or keyword == UNIT_KEYWORD)

    def _parse_unit(self, header: fits.Header) -> u.UnitBase | None:
        bunit = header.get(UNIT_KEYWORD)
        if bunit is None or (isinstance(bunit, str) and not bunit.strip()):
            return None
        if not isinstance(bunit, str):
            raise FitsLayoutError(self.path, f"BUNIT = {bunit!r} is not a string")
        return parse_unit(bunit)


def _position(hdu: FitsHdu | None) -> int:
    return -1 if hdu is None else hdu.index


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
