"""FITS layout of SPHEREx images: the reader and the writer.

Layout written (one HDU per plane, in this order):

========== ======================================================================================
HDU        Contents
========== ======================================================================================
PRIMARY    Header only (``NAXIS = 0``): the observation metadata (``meta``), e.g. ``DATE-OBS``,
           ``EXPTIME``, ``OBSID``, ``DETECTOR``.  Keeping the primary HDU free of data allows every
           plane, the image included, to be tile-compressed.
IMAGE      The image (dtype as given, normally float32), ``BUNIT`` and the celestial WCS.
FLAGS      int32 bitmask, ``EXTTYPE = 'MASK'`` and one ``MP_<NAME> = <bit>`` keyword per flag
           (``HIERARCH MP_<NAME>`` for long names): the convention of IRSA's Firefly viewer.
VARIANCE   Variance of the image, ``BUNIT`` = the square of the image unit.
MASK       uint8 (1 = masked), written only when the image has a mask.
========== ======================================================================================

Only ``IMAGE`` carries the WCS (the planes share the pixel grid).  The reader also accepts SPHEREx
Level-2 files (further HDUs such as ``ZODI``, ``PSF`` and ``WCS-WAVE`` are ignored), the layout of the
2020 proof of concept and of `astropy.nddata.CCDData` (image in the primary HDU, uncertainty in
``VARIANCE`` or ``UNCERT`` with a ``UTYPE`` keyword) and tile-compressed planes
(`astropy.io.fits.CompImageHDU`).
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_UNIT",
    "SPHERExImageFitsReader",
    "SPHERExImageFitsWriter",
    "is_structural_keyword",
    "is_wcs_keyword",
    "metadata_to_header",
    "parse_unit",
]

import contextlib
import functools
import os
import re
import warnings
from collections.abc import Iterator, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, BinaryIO, Self

import numpy as np
from astropy import units as u
from astropy.io import fits
from astropy.nddata import (
    CCDData,
    InverseVariance,
    NDUncertainty,
    StdDevUncertainty,
    VarianceUncertainty,
)
from astropy.utils.exceptions import AstropyWarning
from astropy.wcs import WCS, WCSHDO_P17, FITSFixedWarning, WCSHDO_all
from astropy.wcs.wcs import WCSHDO_SIP

from .errors import FitsLayoutError, SPHERExImageError
from .fits_file import PARSE_ERRORS, open_fits
from .fits_write_options import FitsWriteOptions
from .flags import flag_defs_to_cards, read_flag_defs

if TYPE_CHECKING:
    from .spherex_image import SPHERExImage

DEFAULT_UNIT = u.electron / u.s
"""Unit of images whose ``IMAGE`` HDU has no ``BUNIT``, as in the 2020 proof of concept."""

_STRUCTURAL = re.compile(
    r"^(SIMPLE|BITPIX|NAXIS\d*|EXTEND|XTENSION|PCOUNT|GCOUNT|EXTNAME|EXTVER|EXTLEVEL|BSCALE|BZERO|BLANK"
    r"|CHECKSUM|DATASUM|THEAP|TFIELDS|TTYPE\d+|TFORM\d+|TUNIT\d+|TNULL\d+|TSCAL\d+|TZERO\d+|TDIM\d+"
    r"|ZIMAGE|ZSIMPLE|ZEXTEND|ZTENSION|ZPCOUNT|ZGCOUNT|ZBITPIX|ZNAXIS\d*|ZTILE\d+|ZCMPTYPE|ZNAME\d+"
    r"|ZVAL\d+|ZQUANTIZ|ZDITHER0|ZBLOCKED|ZHECKSUM|ZDATASUM|ZMASKCMP|END)$"
)
_WCS = re.compile(
    r"^(WCSAXES|WCSNAME|CRPIX\d+|CRVAL\d+|CDELT\d+|CUNIT\d+|CTYPE\d+|CROTA\d+|CRDER\d+|CSYER\d+|CNAME\d+"
    r"|CD\d+_\d+|PC\d+_\d+|PV\d+_\d+|PS\d+_\d+|LONPOLE|LATPOLE|RADESYS|RADECSYS|EQUINOX|MJDREF[IF]?"
    r"|(A|B|AP|BP)_(ORDER|DMAX|\d+_\d+))[A-Z]?$"
)
# All of wcslib's extensions, SIP distortions, and 17 significant digits so that the WCS read back maps
# pixels to the sky bit for bit as the one written (wcslib's default of 14 digits loses ~1e-14 deg).
_WCS_WRITE_FLAGS = WCSHDO_all | WCSHDO_P17 | WCSHDO_SIP
# Unit keyword of an image plane: belongs to ``unit``, not to ``meta``.
_BITPIX_DTYPES = {
    8: np.dtype("u1"),
    16: np.dtype(">i2"),
    32: np.dtype(">i4"),
    64: np.dtype(">i8"),
    -32: np.dtype(">f4"),
    -64: np.dtype(">f8"),
}
"""numpy dtype of the pixels stored with each FITS ``BITPIX`` (FITS data are big-endian)."""
_UNIT_KEYWORD = "BUNIT"
# Written by CCDData for its uncertainty HDU; read to honour the original's files.
_UNCERTAINTY_TYPE_KEYWORD = "UTYPE"
_UNCERTAINTY_TYPES: Mapping[str, type[NDUncertainty]] = {
    "VarianceUncertainty": VarianceUncertainty,
    "StdDevUncertainty": StdDevUncertainty,
    "InverseVariance": InverseVariance,
}


def is_structural_keyword(keyword: str) -> bool:
    """Tell whether a header keyword describes the HDU structure rather than the observation.

    Parameters
    ----------
    keyword : `str`
        Header keyword.

    Returns
    -------
    structural : `bool`
        `True` for keywords astropy writes from the data (``BITPIX``, ``NAXISn``, ``EXTNAME``, checksums,
        tile-compression keywords, ...), which never go into ``meta``.
    """
    return bool(_STRUCTURAL.match(keyword.upper()))


def is_wcs_keyword(keyword: str) -> bool:
    """Tell whether a header keyword is part of a FITS world coordinate system (SIP included).

    Parameters
    ----------
    keyword : `str`
        Header keyword.

    Returns
    -------
    wcs : `bool`
        `True` for WCS keywords (any alternate description letter), which belong to ``wcs``, not ``meta``.
    """
    return bool(_WCS.match(keyword.upper()))


def _normalize_slices(slices: Any, shape: tuple[int, ...], path: str) -> tuple[slice, ...]:
    """Turn a ``slices`` read parameter into one non-empty, forward slice per axis."""
    if isinstance(slices, slice):
        slices = (slices,)
    if not isinstance(slices, Sequence) or not all(isinstance(s, slice) for s in slices):
        raise SPHERExImageError(
            f"{path}: the 'slices' parameter must be a tuple of Python slices in numpy (row, column) order, "
            f"not {slices!r}"
        )
    if len(slices) > len(shape):
        raise SPHERExImageError(f"{path}: {len(slices)} slices given for an image of shape {shape}")
    full = tuple(slices) + (slice(None),) * (len(shape) - len(slices))
    result = []
    for axis, (item, n) in enumerate(zip(full, shape, strict=True)):
        if item.step is not None and item.step < 1:
            raise SPHERExImageError(f"{path}: slice {item} on axis {axis} must have a positive step")
        start, stop, step = item.indices(n)
        if stop <= start:
            raise SPHERExImageError(
                f"{path}: slice {item} on axis {axis} selects no pixels of an image of shape {shape}"
            )
        result.append(slice(start, stop, step))
    return tuple(result)


class SPHERExImageFitsReader:
    """Read the planes of a SPHEREx image FITS file, together or one at a time.

    The file is opened and its structure checked (every HDU present in full, an ``IMAGE`` plane, all
    planes of one shape) on construction; pixel data are read only when a plane is asked for.  Use as a
    context manager, or call `close`.

    Parameters
    ----------
    path : `str`, `os.PathLike` or file-like
        File to read.
    memmap : `bool`, optional
        Memory-map the file.  Cutouts (``slices``) then read only the pages they touch; whole planes are
        always copied into memory, so the returned arrays never depend on the file staying in place.

    Raises
    ------
    FileNotFoundError
        Raised if ``path`` does not exist.
    FitsLayoutError
        Raised if the file is not FITS, is truncated, has no image, or its planes differ in shape.

    Notes
    -----
    Subclasses for richer layouts (SPHEREx Level-2 images with ``ZODI``, ``PSF`` and ``WCS-WAVE``) extend
    `read_parts` with the further planes and `components` with their names.
    """

    image_hdu_name: str = "IMAGE"
    flags_hdu_name: str = "FLAGS"
    variance_hdu_names: tuple[str, ...] = ("VARIANCE", "UNCERT")
    mask_hdu_name: str = "MASK"

    components: tuple[str, ...] = ("image", "variance", "flags", "mask", "wcs", "metadata")
    """Names `read_component` knows."""

    def __init__(self, path: str | os.PathLike | BinaryIO, *, memmap: bool = False) -> None:
        self._memmap = memmap
        self._hdul, self.path = open_fits(path, memmap=memmap)
        try:
            with self._reporting_damage():
                # First HDU of each EXTNAME (as HDUList lookups find), without HDUList's per-lookup scan.
                self._by_name: dict[str, Any] = {}
                for hdu in self._hdul:
                    self._by_name.setdefault(hdu.name.upper(), hdu)
                self._image_hdu = self._find_image_hdu()
                self._shape = self._plane_shape(self._image_hdu, "image")
                self._check_plane_shapes()
        except BaseException:
            self._hdul.close()
            raise

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the file."""
        self._hdul.close()

    @property
    def hdul(self) -> fits.HDUList:
        """The open file (`astropy.io.fits.HDUList`), for subclasses reading further HDUs."""
        return self._hdul

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of every plane, numpy order (`tuple` [`int`, ...])."""
        return self._shape

    @property
    def primary_header(self) -> fits.Header:
        """Header of the primary HDU (`astropy.io.fits.Header`)."""
        return self._hdul[0].header

    @property
    def image_header(self) -> fits.Header:
        """Header of the image plane (`astropy.io.fits.Header`, without tile-compression keywords)."""
        return self._image_hdu.header

    # -- structure ---------------------------------------------------------------------------------------

    def _find_image_hdu(self) -> fits.hdu.base.ExtensionHDU | fits.PrimaryHDU:
        hdu = self._by_name.get(self.image_hdu_name)
        if hdu is not None and hdu is not self._hdul[0]:
            if not isinstance(hdu, fits.ImageHDU | fits.CompImageHDU):
                raise FitsLayoutError(
                    self.path, f"HDU {self.image_hdu_name} is a {type(hdu).__name__}, not an image"
                )
            return hdu
        primary = self._hdul[0]
        if primary.header.get("NAXIS", 0) > 0:
            # The 2020 proof of concept (and CCDData) kept the image in the primary HDU.
            return primary
        raise FitsLayoutError(
            self.path,
            f"no {self.image_hdu_name} HDU and no image in the primary HDU; HDUs present: "
            f"{[hdu.name for hdu in self._hdul]}",
        )

    def _plane_hdu(self, names: str | Sequence[str]) -> Any:
        for name in (names,) if isinstance(names, str) else names:
            hdu = self._by_name.get(name)
            if hdu is not None and hdu is not self._hdul[0]:
                if not isinstance(hdu, fits.ImageHDU | fits.CompImageHDU):
                    raise FitsLayoutError(self.path, f"HDU {name} is a {type(hdu).__name__}, not an image")
                return hdu
        return None

    def _plane_shape(self, hdu: Any, what: str) -> tuple[int, ...]:
        shape = tuple(hdu.shape)
        if len(shape) != 2 or min(shape) < 1:
            raise FitsLayoutError(
                self.path, f"the {what} plane (HDU {hdu.name}) has shape {shape}, not a 2-d image"
            )
        return shape

    def _check_plane_shapes(self) -> None:
        for what, names in (
            ("flags", self.flags_hdu_name),
            ("variance", self.variance_hdu_names),
            ("mask", self.mask_hdu_name),
        ):
            hdu = self._plane_hdu(names)
            if hdu is not None and tuple(hdu.shape) != self._shape:
                raise FitsLayoutError(
                    self.path,
                    f"the {what} plane (HDU {hdu.name}) has shape {tuple(hdu.shape)} but the image has "
                    f"{self._shape}; all planes must have one shape",
                )

    # -- planes -------------------------------------------------------------------------------------------

    def _read_pixels(self, hdu: Any, slices: tuple[slice, ...] | None) -> np.ndarray:
        try:
            if slices is None:
                data = hdu.data
                return np.array(data) if self._memmap else data
            scaled = "BSCALE" in hdu.header or "BZERO" in hdu.header
            if self._memmap and not scaled and not isinstance(hdu, fits.CompImageHDU):
                rows = self._read_row_span(hdu, slices)
                if rows is not None:
                    return rows
                # A view of the memory map touches only the pages of the cutout.
                return np.array(hdu.data[slices])
            return np.asarray(hdu.section[slices])
        except PARSE_ERRORS as err:
            raise FitsLayoutError(self.path, f"cannot read the pixels of HDU {hdu.name} ({err})") from err

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
        return _normalize_slices(slices, self._shape, self.path)

    def read_image(self, slices: Any = None) -> np.ndarray:
        """Read the image plane.

        Parameters
        ----------
        slices : `tuple` [`slice`, ...], optional
            Cutout in numpy (row, column) order; the whole plane if `None`.

        Returns
        -------
        image : `numpy.ndarray`
            Pixels, dtype as stored.
        """
        return self._read_pixels(self._image_hdu, self.normalize_slices(slices))

    def read_variance(self, slices: Any = None) -> np.ndarray | None:
        """Read the variance plane.

        Parameters
        ----------
        slices : `tuple` [`slice`, ...], optional
            Cutout in numpy (row, column) order; the whole plane if `None`.

        Returns
        -------
        variance : `numpy.ndarray` or `None`
            Variance, dtype as stored; `None` if the file has no ``VARIANCE`` (or ``UNCERT``) HDU.  A
            CCDData ``UNCERT`` plane holding another uncertainty type is returned as stored; see
            `read_uncertainty`.
        """
        hdu = self._plane_hdu(self.variance_hdu_names)
        return None if hdu is None else self._read_pixels(hdu, self.normalize_slices(slices))

    def read_uncertainty(self, slices: Any = None) -> NDUncertainty | None:
        """Read the uncertainty plane as an astropy uncertainty.

        Parameters
        ----------
        slices : `tuple` [`slice`, ...], optional
            Cutout in numpy (row, column) order; the whole plane if `None`.

        Returns
        -------
        uncertainty : `astropy.nddata.NDUncertainty` or `None`
            `~astropy.nddata.VarianceUncertainty` unless a ``UTYPE`` keyword (written by CCDData) names
            another type; its unit is the ``BUNIT`` of the plane when that is given.  `None` if the file
            has no uncertainty plane.
        """
        hdu = self._plane_hdu(self.variance_hdu_names)
        if hdu is None:
            return None
        array = self._read_pixels(hdu, self.normalize_slices(slices))
        utype = hdu.header.get(_UNCERTAINTY_TYPE_KEYWORD, "VarianceUncertainty")
        try:
            uncertainty_class = _UNCERTAINTY_TYPES[utype]
        except KeyError:
            raise FitsLayoutError(
                self.path,
                f"HDU {hdu.name} has unknown uncertainty type {_UNCERTAINTY_TYPE_KEYWORD}={utype!r}",
            ) from None
        unit = self._parse_unit(hdu.header)
        if isinstance(unit, u.UnrecognizedUnit):
            # The plane's unit follows from the image unit; an unreadable BUNIT here adds nothing.
            unit = None
        return uncertainty_class(array, unit=unit, copy=False)

    def _read_row_span(self, hdu: Any, slices: tuple[slice, ...]) -> np.ndarray | None:
        """Read a cutout of an uncompressed 2-d plane with one read of the rows it spans.

        Faulting the cutout in through the memory map lets the kernel's read-ahead pull in far more of
        the file than the cutout needs (half of it, measured on a 2040x2040 plane); one ``pread`` of the
        contiguous rows reads ``cutout rows x row length`` bytes and nothing else.

        Returns
        -------
        cutout : `numpy.ndarray` or `None`
            The cutout (file byte order), or `None` when the plane is not a 2-d image of a named file
            (the caller then slices the memory map).
        """
        header = hdu.header
        dtype = _BITPIX_DTYPES.get(header.get("BITPIX"))
        info = hdu.fileinfo()
        name = getattr(info.get("file") if info else None, "name", None)
        if dtype is None or header.get("NAXIS") != 2 or len(slices) != 2 or not isinstance(name, str):
            return None
        rows, columns = slices
        width = int(header["NAXIS1"])
        count = (rows.stop - rows.start) * width
        offset = info["datLoc"] + rows.start * width * dtype.itemsize
        nbytes = count * dtype.itemsize
        fd = os.open(name, os.O_RDONLY)
        try:
            if hasattr(os, "posix_fadvise"):
                # The rows are all that is wanted: no read-ahead beyond them (6 of 48 MiB, not 12).
                os.posix_fadvise(fd, offset, nbytes, os.POSIX_FADV_RANDOM)
            buffer = os.pread(fd, nbytes, offset)
        finally:
            os.close(fd)
        if len(buffer) != nbytes:
            raise FitsLayoutError(self.path, f"HDU {hdu.name} ends inside its data (truncated file)")
        block = np.frombuffer(buffer, dtype=dtype)
        return np.array(block.reshape(-1, width)[:: rows.step, columns])

    def read_flags(self, slices: Any = None) -> np.ndarray | None:
        """Read the flags plane.

        Parameters
        ----------
        slices : `tuple` [`slice`, ...], optional
            Cutout in numpy (row, column) order; the whole plane if `None`.

        Returns
        -------
        flags : `numpy.ndarray` or `None`
            int32 bitmask (narrower integer planes are widened, uint32 reinterpreted bit for bit); `None`
            if the file has no ``FLAGS`` HDU.

        Raises
        ------
        FitsLayoutError
            Raised if the plane does not hold integers that fit in 32 bits.
        """
        hdu = self._plane_hdu(self.flags_hdu_name)
        if hdu is None:
            return None
        flags = self._read_pixels(hdu, self.normalize_slices(slices))
        if flags.dtype.kind not in "iu":
            raise FitsLayoutError(self.path, f"HDU {hdu.name} holds {flags.dtype}, not an integer bitmask")
        if flags.dtype.itemsize > 4:
            raise FitsLayoutError(self.path, f"HDU {hdu.name} holds {flags.dtype}; flags must fit in int32")
        if flags.dtype.kind == "u" and flags.dtype.itemsize == 4:
            return flags.astype(np.uint32).view(np.int32)
        if flags.dtype.itemsize < 4:
            return flags.astype(np.int32)
        return flags

    def read_flag_defs(self) -> dict[str, int]:
        """Read the flag definitions (``MP_<NAME>`` keywords of the ``FLAGS`` HDU).

        Returns
        -------
        flag_defs : `dict` [`str`, `int`]
            Flag name to bit; empty if there is no ``FLAGS`` HDU or it defines no flags.
        """
        hdu = self._plane_hdu(self.flags_hdu_name)
        return {} if hdu is None else read_flag_defs(hdu.header, self.path)

    def read_mask(self, slices: Any = None) -> np.ndarray | None:
        """Read the mask plane.

        Parameters
        ----------
        slices : `tuple` [`slice`, ...], optional
            Cutout in numpy (row, column) order; the whole plane if `None`.

        Returns
        -------
        mask : `numpy.ndarray` or `None`
            Boolean mask (`True` = masked); `None` if the file has no ``MASK`` HDU.
        """
        hdu = self._plane_hdu(self.mask_hdu_name)
        if hdu is None:
            return None
        return self._read_pixels(hdu, self.normalize_slices(slices)).astype(bool)

    def read_unit(self) -> u.UnitBase:
        """Read the image unit.

        Returns
        -------
        unit : `astropy.units.UnitBase`
            ``BUNIT`` of the image plane, or `DEFAULT_UNIT` (electron/s) when it is absent or blank.
            Unit strings astropy cannot parse are kept as `astropy.units.UnrecognizedUnit`.
        """
        return self._parse_unit(self.image_header) or DEFAULT_UNIT

    def read_wcs(self, slices: Any = None) -> WCS | None:
        """Read the world coordinate system of the image plane.

        Parameters
        ----------
        slices : `tuple` [`slice`, ...], optional
            Cutout in numpy (row, column) order; the WCS is sliced to match.

        Returns
        -------
        wcs : `astropy.wcs.WCS` or `None`
            `None` if the image header has no WCS keywords.
        """
        header = self.image_header
        if not any(is_wcs_keyword(key) for key in header):
            return None
        try:
            with warnings.catch_warnings():
                # Fix-ups astropy makes to legacy headers are expected, not the reader's business.
                warnings.simplefilter("ignore", FITSFixedWarning)
                wcs = WCS(header, relax=True)
        except (ValueError, KeyError, MemoryError) as err:
            raise FitsLayoutError(self.path, f"invalid WCS in HDU {self._image_hdu.name} ({err})") from err
        slices = self.normalize_slices(slices)
        return wcs if slices is None else wcs.slice(slices)

    def read_metadata(self) -> fits.Header:
        """Read the observation metadata.

        Returns
        -------
        metadata : `astropy.io.fits.Header`
            The cards of the primary header, then the cards of the image header not already present,
            leaving out in both structural keywords (`is_structural_keyword`), ``BUNIT`` and WCS
            keywords (`is_wcs_keyword`), which belong to ``unit`` and ``wcs``.  For files this package
            writes, that is exactly the primary header less its structural cards.
        """
        metadata = fits.Header()
        for card in self.primary_header.cards:
            if self._is_metadata(card.keyword):
                metadata.append(_copy_card(card), end=True)
        if self._image_hdu is not self._hdul[0]:
            for card in self.image_header.cards:
                keyword = card.keyword
                if not self._is_metadata(keyword) or keyword == "EXTTYPE":
                    continue
                if keyword in ("COMMENT", "HISTORY", "") or keyword not in metadata:
                    metadata.append(_copy_card(card), end=True)
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
                    merged.append(_copy_card(card), end=True)
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
        return dict(
            data=self.read_image(slices),
            unit=self.read_unit(),
            uncertainty=self.read_uncertainty(slices),
            flags=self.read_flags(slices),
            flag_defs=self.read_flag_defs(),
            mask=self.read_mask(slices),
            wcs=self.read_wcs(slices),
            meta=self.read_metadata(),
        )

    # -- helpers ------------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _reporting_damage(self) -> Iterator[None]:
        """Turn what astropy raises for damaged headers or data into `FitsLayoutError`.

        astropy parses card values and reads pixels lazily, so damage can surface at any access.
        """
        try:
            yield
        except SPHERExImageError:
            raise
        except (FileNotFoundError, PermissionError):
            raise
        except PARSE_ERRORS as err:
            raise FitsLayoutError(self.path, f"damaged file ({type(err).__name__}: {err})") from err

    def _is_metadata(self, keyword: str) -> bool:
        return not (is_structural_keyword(keyword) or is_wcs_keyword(keyword) or keyword == _UNIT_KEYWORD)

    def _parse_unit(self, header: fits.Header) -> u.UnitBase | None:
        bunit = header.get(_UNIT_KEYWORD)
        if bunit is None or (isinstance(bunit, str) and not bunit.strip()):
            return None
        if not isinstance(bunit, str):
            raise FitsLayoutError(self.path, f"BUNIT = {bunit!r} is not a string")
        return parse_unit(bunit)


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

    Raises
    ------
    SPHERExImageError
        Raised if ``compression`` is not a known algorithm.

    Notes
    -----
    Subclasses for richer layouts extend `to_hdulist`, appending their HDUs after those of this class.
    """

    def __init__(
        self, compression: str | None = None, quantize_level: float | None = None, checksum: bool = False
    ) -> None:
        self.options = FitsWriteOptions(compression, quantize_level, checksum)

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
            ``PRIMARY`` (header only), ``IMAGE``, then ``FLAGS``, ``VARIANCE`` and ``MASK`` when present.

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
        _check_pixel_dtype(data, "image")
        wcs_cards = self._wcs_cards(image)
        primary = fits.PrimaryHDU(header=self._primary_header(image))
        hdus: list[Any] = [primary]

        image_header = fits.Header()
        image_header[_UNIT_KEYWORD] = (_unit_string(image.unit), "Unit of the image")
        image_header.extend(wcs_cards)
        hdus.append(self._plane_hdu(data, image_header, "IMAGE"))

        if image.flags is not None:
            flags_header = fits.Header()
            # Firefly overlays integer planes with EXTTYPE = 'MASK' bit by bit, naming bits from MP_ keys.
            flags_header["EXTTYPE"] = ("MASK", "bitmask; MP_<NAME> = bit name the flags")
            flags_header.extend(flag_defs_to_cards(image.flag_defs))
            hdus.append(self._plane_hdu(np.asarray(image.flags, dtype=np.int32), flags_header, "FLAGS"))

        if image.uncertainty is not None:
            variance = image.uncertainty.represent_as(VarianceUncertainty)
            variance_array = np.asarray(variance.array)
            _check_pixel_dtype(variance_array, "variance")
            variance_header = fits.Header()
            variance_header[_UNIT_KEYWORD] = (_unit_string(variance.unit), "Unit of the variance")
            hdus.append(self._plane_hdu(variance_array, variance_header, "VARIANCE"))

        if image.mask is not None:
            hdus.append(self._plane_hdu(np.asarray(image.mask).astype(np.uint8), fits.Header(), "MASK"))
        return fits.HDUList(hdus)

    def write(self, image: SPHERExImage, path: str | os.PathLike, overwrite: bool = False) -> None:
        """Write an image to a FITS file.

        Parameters
        ----------
        image : `~spherex.core.SPHERExImage`
            Image to write.
        path : `str` or `os.PathLike`
            Output file.
        overwrite : `bool`, optional
            Replace an existing file.

        Raises
        ------
        FileExistsError
            Raised if ``path`` exists and ``overwrite`` is `False`.
        SPHERExImageError
            Raised if the image cannot be represented in FITS (see `to_hdulist`).
        """
        path = os.fspath(path)
        hdul = self.to_hdulist(image)
        if not overwrite and os.path.exists(path):
            raise FileExistsError(f"{path}: file exists; pass overwrite=True to replace it")
        with warnings.catch_warnings():
            # Long MP_ keywords are written as HIERARCH on purpose.
            warnings.filterwarnings("ignore", message=".*HIERARCH card will be created.*")
            hdul.writeto(path, overwrite=overwrite, checksum=self.options.checksum)

    # -- helpers ------------------------------------------------------------------------------------------

    def _plane_hdu(self, data: np.ndarray, header: fits.Header, name: str) -> fits.ImageHDU:
        return self.options.image_hdu(data, header, name)

    def _wcs_cards(self, image: SPHERExImage) -> list[fits.Card]:
        if image.wcs is None:
            return []
        wcs = image.wcs
        if wcs.naxis != 2:
            raise SPHERExImageError(f"The WCS of a SPHEREx image must have 2 axes, not {wcs.naxis}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AstropyWarning)
            header = wcs.to_header(relax=_WCS_WRITE_FLAGS)
        return list(header.cards)

    def _primary_header(self, image: SPHERExImage) -> fits.Header:
        return metadata_to_header(image.meta)


@functools.lru_cache(maxsize=256)
def parse_unit(text: str) -> u.UnitBase:
    """Parse a ``BUNIT`` value as astropy and the FITS world write it.

    Parameters
    ----------
    text : `str`
        Unit string, e.g. ``MJy/sr``, ``MJy sr-1`` or ``(MJy/sr)^2`` (SPHEREx Level-2 variance).

    Returns
    -------
    unit : `astropy.units.UnitBase`
        The unit; an `astropy.units.UnrecognizedUnit` keeping the text when no parser understands it.
    """
    text = text.strip()
    # Accept the spellings CCDData accepts ("ELECTRONS/S" ...).
    text = CCDData.known_invalid_fits_unit_strings.get(text, text)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyWarning)
        for candidate in dict.fromkeys((text, text.replace("^", "**"))):
            for unit_format in (None, "fits", "ogip"):
                try:
                    return u.Unit(candidate, format=unit_format)
                except ValueError:
                    continue
        return u.Unit(text, parse_strict="silent")


def metadata_to_header(meta: Mapping[str, Any] | None) -> fits.Header:
    """Convert image metadata to the cards of the primary header.

    Parameters
    ----------
    meta : `astropy.io.fits.Header` or `~collections.abc.Mapping`, optional
        Image ``meta``.  Mapping values may be ``(value, comment)`` tuples; ``COMMENT`` and ``HISTORY``
        may hold lists.  Keys longer than eight characters become ``HIERARCH`` keywords.

    Returns
    -------
    header : `astropy.io.fits.Header`
        New cards, leaving out structural keywords, ``BUNIT`` and WCS keywords (those come from the
        image's ``unit`` and ``wcs``).

    Raises
    ------
    SPHERExImageError
        Raised if a value cannot be written to a FITS header.
    """
    header = fits.Header()
    if meta is None:
        return header
    cards: list[fits.Card] = []
    if isinstance(meta, fits.Header):
        cards = [_copy_card(card) for card in meta.cards]
    else:
        for key, value in meta.items():
            cards.extend(_cards_from_item(str(key), value))
    for card in cards:
        keyword = card.keyword
        if is_structural_keyword(keyword) or is_wcs_keyword(keyword) or keyword == _UNIT_KEYWORD:
            continue
        header.append(card, end=True)
    return header


def _cards_from_item(key: str, value: Any) -> list[fits.Card]:
    """Convert one ``meta`` item to header cards."""
    if key.upper().startswith("HIERARCH "):
        key = key[len("HIERARCH ") :].strip()
    keyword = key.upper()
    if keyword in ("COMMENT", "HISTORY"):
        values = value if isinstance(value, list | tuple) else [value]
        return [fits.Card(keyword, str(v)) for v in values]
    comment = ""
    if isinstance(value, tuple):
        if len(value) != 2:
            raise SPHERExImageError(f"meta[{key!r}] = {value!r}: a tuple must be (value, comment)")
        value, comment = value
    if isinstance(value, np.generic):
        value = value.item()
    if value is not None and not isinstance(value, str | bool | int | float | complex):
        raise SPHERExImageError(
            f"meta[{key!r}] = {value!r}: a FITS header holds strings, numbers, booleans or None, "
            f"not {type(value).__name__}"
        )
    if len(keyword) > 8 or not re.match(r"^[A-Z0-9_-]*$", keyword):
        keyword = f"HIERARCH {key}"
    try:
        card = fits.Card(keyword, value, comment)
        card.verify("exception")
        # Force formatting now so an over-long card fails here, naming the key.
        str(card)
    except (ValueError, fits.VerifyError) as err:
        raise SPHERExImageError(
            f"meta[{key!r}] = {value!r} cannot be written to a FITS header ({err})"
        ) from err
    return [card]


def _copy_card(card: fits.Card) -> fits.Card:
    """Return an independent copy of a card (headers share the cards appended to them)."""
    return fits.Card.fromstring(card.image)


def _check_pixel_dtype(array: np.ndarray, what: str) -> None:
    if array.dtype.kind not in "iuf":
        raise SPHERExImageError(
            f"The {what} plane has dtype {array.dtype}; FITS images hold integers or floating point numbers"
        )


def _unit_string(unit: u.UnitBase | None) -> str:
    if unit is None:
        return _unit_string(DEFAULT_UNIT)
    try:
        return unit.to_string("fits")
    except (ValueError, TypeError):
        # Units outside the FITS standard (e.g. "electron/s" spelled otherwise) keep astropy's spelling.
        return unit.to_string()
