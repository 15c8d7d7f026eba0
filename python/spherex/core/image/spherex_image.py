"""The in-memory SPHEREx image: image, variance, flags with named bits, WCS and metadata."""

from __future__ import annotations

__all__ = ["SPHERExImage", "spherex_image_reader", "spherex_image_writer"]

import os
from collections.abc import Mapping
from typing import Any, BinaryIO, ClassVar

import numpy as np
from astropy.io import fits
from astropy.nddata import CCDData
from astropy.nddata import ccddata as _ccddata
from astropy.utils.decorators import sharedmethod

from ..errors import FitsLayoutError, SPHERExImageError
from ..fits.flags import validate_flag_defs
from ..fits.header import DEFAULT_UNIT
from ..fits.read_options import FitsReadOptions
from .fits_reader import SPHERExImageFitsReader
from .fits_writer import SPHERExImageFitsWriter


class SPHERExImage(CCDData):
    """A SPHEREx image: a `~astropy.nddata.CCDData` with an int32 flags bitmask and named flag bits.

    Parameters
    ----------
    data : `numpy.ndarray`-like or `~astropy.nddata.NDData`
        Image pixels (SPHEREx stores float32).  Kept by reference, as in CCDData.
    *args
        Further positional arguments of `~astropy.nddata.CCDData`.
    flags : `numpy.ndarray`, optional
        Integer bitmask of the shape of ``data``; stored as int32 (uint32 is reinterpreted bit for bit).
    flag_defs : `~collections.abc.Mapping` [`str`, `int`], optional
        Flag name to bit number (0-31), e.g. `~spherex.core.LEVEL2_FLAG_BITS`.  Names are stored upper
        case.
    unit : `astropy.units.Unit` or `str`, optional
        Unit of ``data``; electron/s (`~spherex.core.DEFAULT_UNIT`) if neither given nor carried by
        ``data``.
    **kwargs
        Further keyword arguments of `~astropy.nddata.CCDData`: ``uncertainty`` (normally a
        `~astropy.nddata.VarianceUncertainty`), ``mask``, ``wcs``, ``meta``.

    Raises
    ------
    SPHERExImageError
        Raised if flags, uncertainty or mask differ in shape from the data, the flags are not integers
        that fit in 32 bits, or a flag definition is invalid.

    Notes
    -----
    ``SPHERExImage.read(path)`` and ``image.write(path)`` use the SPHEREx FITS layout (see
    `spherex.core.image.fits`): ``meta`` goes to the header-only primary HDU, ``unit`` and
    ``wcs`` to the ``IMAGE`` HDU, flag definitions to the ``FLAGS`` HDU (so they are kept only for an
    image with flags).  On read, ``meta`` is an `astropy.io.fits.Header` holding the primary header
    cards (and image header cards that are neither structural, ``BUNIT`` nor WCS, for files of other
    producers); see `SPHERExImageFitsReader.read_metadata`.

    Slicing (``image[100:200, 50:150]``) cuts every plane and the WCS and keeps the flag definitions.
    """

    fits_reader_class: ClassVar[type[SPHERExImageFitsReader]] = SPHERExImageFitsReader
    """Reads the FITS layout; subclasses with richer layouts replace it."""

    fits_writer_class: ClassVar[type[SPHERExImageFitsWriter]] = SPHERExImageFitsWriter
    """Writes the FITS layout; subclasses with richer layouts replace it."""

    def __init__(
        self,
        data: Any,
        *args: Any,
        flags: Any = None,
        flag_defs: Mapping[str, int] | None = None,
        **kwargs: Any,
    ) -> None:
        if isinstance(data, SPHERExImage) and flag_defs is None:
            flag_defs = data.flag_defs
        if (
            kwargs.get("unit") is None
            and getattr(data, "unit", None) is None
            and len(args) < 3
            # CCDData's arithmetic wraps a plain operand (a number, an array) in the image's class with no
            # unit and relaxes its own unit rule meanwhile: the operand is then dimensionless, as there.
            and _ccddata._config_ccd_requires_unit
        ):
            kwargs["unit"] = DEFAULT_UNIT
        try:
            super().__init__(data, *args, flags=_as_int32_flags(flags), **kwargs)
        except SPHERExImageError:
            raise
        except ValueError as err:
            raise SPHERExImageError(f"Invalid SPHEREx image: {err}") from err
        self._flag_defs = validate_flag_defs(flag_defs)
        self._check_plane_shapes()

    def _check_plane_shapes(self) -> None:
        shape = np.shape(self.data)
        planes = {"uncertainty": self.uncertainty, "mask": self.mask, "flags": self.flags}
        for name, plane in planes.items():
            if plane is None:
                continue
            plane_shape = np.shape(plane.array if name == "uncertainty" else plane)
            if plane_shape != shape:
                raise SPHERExImageError(
                    f"The {name} plane has shape {plane_shape} but the image has {shape}; all planes must "
                    "have one shape"
                )

    @property
    def flags(self) -> np.ndarray | None:
        """Per-pixel int32 bitmask (`numpy.ndarray` or `None`)."""
        return self._flags

    @flags.setter
    def flags(self, value: Any) -> None:
        flags = _as_int32_flags(value)
        if flags is not None and flags.shape != np.shape(self.data):
            raise SPHERExImageError(
                f"The flags plane has shape {flags.shape} but the image has {np.shape(self.data)}"
            )
        self._flags = flags

    @property
    def flag_defs(self) -> dict[str, int]:
        """Flag name to bit number (`dict` [`str`, `int`]); empty when no flags are defined."""
        return self._flag_defs

    @flag_defs.setter
    def flag_defs(self, value: Mapping[str, int] | None) -> None:
        self._flag_defs = validate_flag_defs(value)

    def flag_mask(self, *names: str) -> np.ndarray:
        """Return where any of the named flags is set.

        Parameters
        ----------
        *names : `str`
            Flag names (case-insensitive); all defined flags if none is given.

        Returns
        -------
        mask : `numpy.ndarray`
            Boolean array of the image shape.

        Raises
        ------
        SPHERExImageError
            Raised if the image has no flags plane.
        KeyError
            Raised if a name is not in `flag_defs`.
        """
        if self.flags is None:
            raise SPHERExImageError("This SPHEREx image has no flags plane")
        bits = 0
        for name in names or tuple(self.flag_defs):
            try:
                bits |= 1 << self.flag_defs[name.upper()]
            except KeyError:
                raise KeyError(
                    f"Flag {name!r} is not defined; defined flags: {list(self.flag_defs)}"
                ) from None
        return (self.flags & np.int32(np.uint32(bits).view(np.int32))) != 0

    def _arithmetic(self, operation: Any, operand: Any, *args: Any, **kwargs: Any) -> tuple[Any, dict]:
        # astropy computes data, unit, uncertainty, mask, WCS and meta as for CCDData; the flags of the
        # result are the OR of the operands' flags (broadcast like the data), with their definitions.
        result, init_kwds = super()._arithmetic(operation, operand, *args, **kwargs)
        if kwargs.get("axis") is not None or operand is None:
            return result, init_kwds  # a reduction: no per-pixel bitmask survives it
        planes = [f for f in (self.flags, getattr(operand, "flags", None)) if f is not None]
        if planes:
            shape = np.shape(result)
            flags = np.zeros(shape, dtype=np.int32)
            for plane in planes:
                flags |= np.broadcast_to(plane, shape)
            init_kwds["flags"] = flags
            init_kwds["flag_defs"] = _merged_flag_defs(self.flag_defs, getattr(operand, "flag_defs", {}))
        return result, init_kwds

    def _slice(self, item: Any) -> dict[str, Any]:
        kwargs = super()._slice(item)
        kwargs["flags"] = None if self.flags is None else self.flags[item]
        kwargs["flag_defs"] = self.flag_defs
        return kwargs

    def to_hdulist(
        self, compression: str | None = None, quantize_level: float | None = None, checksum: bool = False
    ) -> fits.HDUList:
        """Return the image as HDUs in the SPHEREx FITS layout.

        Parameters
        ----------
        compression : `str`, optional
            Tile-compression algorithm for every plane (e.g. ``RICE_1``, ``GZIP_2``).
        quantize_level : `float`, optional
            Quantization of floating point planes when compressing.
        checksum : `bool`, optional
            Add ``CHECKSUM`` and ``DATASUM`` keywords when written.

        Returns
        -------
        hdul : `astropy.io.fits.HDUList`
            ``PRIMARY`` (header only, with ``meta``), ``IMAGE``, ``FLAGS``, ``VARIANCE``, ``MASK``.
        """
        return self.fits_writer_class(compression, quantize_level, checksum).to_hdulist(self)

    def merged_header(self) -> fits.Header:
        """Return the header ingest sees: the written primary header updated with the image header.

        Returns
        -------
        header : `astropy.io.fits.Header`
            ``meta`` cards, then ``BUNIT`` and the WCS, without structural keywords; the same as
            `SPHERExImageFitsReader.read_merged_header` gives for the written file.
        """
        hdul = self.fits_writer_class().to_hdulist(self)
        merged = fits.Header()
        for hdu in hdul[:2]:
            for card in hdu.header.cards:
                if card.keyword in ("SIMPLE", "BITPIX", "EXTEND", "XTENSION", "PCOUNT", "GCOUNT", "EXTNAME"):
                    continue
                if card.keyword.startswith("NAXIS"):
                    continue
                merged.append(card, end=True)
        return merged

    @classmethod
    def from_fits(
        cls,
        path: str | os.PathLike | BinaryIO,
        slices: Any = None,
        *,
        options: FitsReadOptions | None = None,
        open_kwargs: Mapping[str, Any] | None = None,
    ) -> SPHERExImage:
        """Read an image, or a cutout of it, from a FITS file.

        Parameters
        ----------
        path : `str` or `os.PathLike`
            File in the SPHEREx layout, a SPHEREx Level-2 file, or the original's / CCDData's layout.
        slices : `tuple` [`slice`, ...], optional
            Cutout in numpy (row, column) order; only the rows needed are read from uncompressed files
            and only the tiles needed from compressed ones.
        options : `FitsReadOptions`, optional
            Which HDU holds which plane, and a unit overriding ``BUNIT``.
        open_kwargs : `~collections.abc.Mapping`, optional
            Keyword arguments for `astropy.io.fits.open`.

        Returns
        -------
        image : `SPHERExImage`
            The image; ``meta`` holds the primary header cards (see
            `SPHERExImageFitsReader.read_metadata`).

        Raises
        ------
        FileNotFoundError
            Raised if ``path`` does not exist.
        FitsLayoutError
            Raised if the file is not a readable SPHEREx image.
        """
        with cls.fits_reader_class(
            path, memmap=slices is not None, options=options, open_kwargs=open_kwargs
        ) as reader:
            return cls.from_parts(reader.read_parts(slices), reader.path)

    @classmethod
    def from_parts(cls, parts: Mapping[str, Any], path: str) -> SPHERExImage:
        """Build an image from the parts a `SPHERExImageFitsReader` read.

        Parameters
        ----------
        parts : `~collections.abc.Mapping` [`str`, `typing.Any`]
            Constructor arguments (see `SPHERExImageFitsReader.read_parts`).
        path : `str`
            File the parts come from, for error messages.

        Returns
        -------
        image : `SPHERExImage`
            The image.

        Raises
        ------
        FitsLayoutError
            Raised if the parts are inconsistent (e.g. the variance unit does not match the image unit).
        """
        try:
            return cls(**parts)
        except FitsLayoutError:
            raise
        except SPHERExImageError as err:
            raise FitsLayoutError(path, f"inconsistent planes: {err}") from err


def _merged_flag_defs(first: Mapping[str, int], second: Mapping[str, int]) -> dict[str, int]:
    """Return the flag definitions of two operands, which must not give one name or bit two meanings."""
    merged = dict(first)
    bits = {bit: name for name, bit in first.items()}
    for name, bit in second.items():
        if merged.get(name, bit) != bit or bits.get(bit, name) != name:
            raise SPHERExImageError(
                f"Cannot combine the flags of images whose flag definitions differ: {name} is bit {bit} in "
                f"one and {'bit ' + str(merged[name]) if name in merged else bits[bit] + ' holds it'} in "
                "the other"
            )
        merged[name] = bit
        bits[bit] = name
    return merged


def _as_int32_flags(flags: Any) -> np.ndarray | None:
    if flags is None:
        return None
    array = np.asarray(flags)
    kind, itemsize = array.dtype.kind, array.dtype.itemsize
    if kind == "i" and itemsize == 4:
        # Already 32-bit (either byte order, as read from FITS): keep the array, do not copy.
        return array
    if kind == "u" and itemsize == 4:
        return array.astype(np.uint32, copy=False).view(np.int32)
    if kind == "b" or (kind in "iu" and itemsize < 4):
        return array.astype(np.int32)
    if kind not in "iu":
        raise SPHERExImageError(f"Flags must be an integer bitmask, not dtype {array.dtype}")
    if array.size and (array.min() < np.iinfo(np.int32).min or array.max() > np.iinfo(np.uint32).max):
        raise SPHERExImageError("Flags do not fit in a 32-bit bitmask")
    if array.size and array.max() > np.iinfo(np.int32).max:
        return array.astype(np.uint32).view(np.int32)
    return array.astype(np.int32)


def _keeping_unit_rule(name: str) -> sharedmethod:
    # CCDData's arithmetic switches astropy's "a CCDData needs a unit" rule off and back on, but not back
    # on when the operation raises (e.g. adding Jy to electron/s): every later image in the process would
    # then be built without a unit. The rule is restored however the operation ends.
    inner = CCDData.__dict__[name].__func__

    def method(self_or_cls: Any, operand: Any, operand2: Any = None, **kwargs: Any) -> Any:
        try:
            return inner(self_or_cls, operand, operand2, **kwargs)
        finally:
            _ccddata._config_ccd_requires_unit = True

    method.__doc__ = inner.__doc__
    method.__name__ = name
    return sharedmethod(method)


for _name in ("add", "subtract", "multiply", "divide"):
    setattr(SPHERExImage, _name, _keeping_unit_rule(_name))


# The 2020 proof of concept defined the astropy I/O functions here; they live in their own module.
from .io import _always_fits, spherex_image_reader, spherex_image_writer  # noqa: E402, F401
