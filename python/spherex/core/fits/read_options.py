"""Which HDU holds which plane: the reader's options, with the keywords of astropy's CCDData reader.

By default planes are found by name (``IMAGE``, ``FLAGS``, ``VARIANCE`` or ``UNCERT``, ``MASK``), with
fall-backs for the layouts of the 2020 proof of concept and of `~astropy.nddata.CCDData`.  The keywords
``hdu``, ``hdu_uncertainty``, ``hdu_mask``, ``hdu_flags`` and ``key_uncertainty_type`` of
`astropy.nddata.fits_ccddata_reader` (and of the 2020 ``spherex_image_reader``, which added
``hdu_flags``) name a plane's HDU by index or by name, or leave a plane out (`None`).
"""

from __future__ import annotations

__all__ = ["AUTO", "FitsReadOptions", "HduSelector"]

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from astropy import units as u

from ..errors import FitsLayoutError, SPHERExImageError
from .header import UNCERTAINTY_TYPE_KEYWORD, parse_unit
from .layout import FitsHdu


class _Auto(enum.Enum):
    AUTO = "AUTO"

    def __repr__(self) -> str:
        return "AUTO"


AUTO: Final = _Auto.AUTO
"""Find a plane by name, with the fall-backs of the 2020 layout (the default of every selector)."""

HduSelector = int | str | None | _Auto
"""An HDU index, an ``EXTNAME``, `None` (leave the plane out) or `AUTO`."""

# Where the 2020 proof of concept's writer put the planes behind its unnamed image extension (HDU 1);
# its reader's defaults were hdu_flags=2 and hdu_uncertainty=3.
_2020_FLAGS_INDEX = 2
_2020_UNCERTAINTY_INDEX = 3


OTHER_PLANE_NAMES = frozenset({"FLAGS", "MASK", "VARIANCE", "UNCERT", "PSFIMAGE", "ZODI", "PSF"})
"""``EXTNAME`` of the planes that are not the image, in this package's, CCDData's and IRSA's layouts."""


@dataclass(frozen=True)
class FitsReadOptions:
    """Where the reader finds each plane, and the unit to give the image.

    Parameters
    ----------
    hdu : `int` or `str`, optional
        HDU of the image.  `None` (default): the ``IMAGE`` extension, else the primary HDU if it holds
        data, else the first unnamed image extension with data (the 2020 layout).  ``0`` means what it
        means to `astropy.nddata.fits_ccddata_reader`: the primary HDU, or the first extension with data.
    unit : `astropy.units.Unit` or `str`, optional
        Unit of the image, overriding ``BUNIT`` (as ``CCDData.read`` does); the uncertainty is then
        taken in this unit too.
    hdu_uncertainty, hdu_mask, hdu_flags : `int`, `str`, `None` or `AUTO`, optional
        HDU of each plane by index or ``EXTNAME``; `None` leaves the plane out; a named HDU the file
        does not have gives no plane, as in astropy.  `AUTO` (default) finds ``VARIANCE`` (or
        ``UNCERT``), ``MASK`` and ``FLAGS`` by name and, in the 2020 layout, an unnamed uncertainty or
        flags plane at HDU 3 or 2.
    key_uncertainty_type : `str`, optional
        Keyword of the uncertainty HDU naming the uncertainty class (``UTYPE``, as CCDData writes).
    hdu_psf : `str` or `None`, optional
        ``EXTNAME`` of the image's ``psf`` kernel (``PSFIMAGE``, as CCDData writes); `None` leaves it out.

    Raises
    ------
    SPHERExImageError
        Raised if a selector is neither an index, a name, `None` nor `AUTO`, or ``unit`` is not a unit.
    """

    hdu: int | str | None = None
    unit: u.UnitBase | str | None = None
    hdu_uncertainty: HduSelector = AUTO
    hdu_mask: HduSelector = AUTO
    hdu_flags: HduSelector = AUTO
    key_uncertainty_type: str = UNCERTAINTY_TYPE_KEYWORD
    hdu_psf: str | None = "PSFIMAGE"

    def __post_init__(self) -> None:
        if self.hdu is AUTO:
            object.__setattr__(self, "hdu", None)
        for name in ("hdu", "hdu_uncertainty", "hdu_mask", "hdu_flags"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | str | None | _Auto):
                raise SPHERExImageError(f"{name}={value!r}: give an HDU index, an EXTNAME or None")
        if self.hdu_psf is not None and not (isinstance(self.hdu_psf, str) and self.hdu_psf.strip()):
            raise SPHERExImageError(f"hdu_psf={self.hdu_psf!r}: give an EXTNAME or None")
        if not isinstance(self.key_uncertainty_type, str) or not self.key_uncertainty_type:
            raise SPHERExImageError(f"key_uncertainty_type={self.key_uncertainty_type!r} must be a keyword")
        if isinstance(self.unit, str):
            object.__setattr__(self, "unit", parse_unit(self.unit))
        elif self.unit is not None and not isinstance(self.unit, u.UnitBase):
            raise SPHERExImageError(f"unit={self.unit!r} is not an astropy unit or a unit string")

    def find_image(
        self, hdus: Sequence[FitsHdu], by_name: dict[str, FitsHdu], path: str, name: str
    ) -> FitsHdu:
        """Return the HDU holding the image.

        Parameters
        ----------
        hdus : `~collections.abc.Sequence` [`FitsHdu`]
            Every HDU of the file.
        by_name : `dict` [`str`, `FitsHdu`]
            The first HDU of each name.
        path : `str`
            File name, for messages.
        name : `str`
            ``EXTNAME`` of the image in this package's layout (``IMAGE``).

        Returns
        -------
        hdu : `FitsHdu`
            The image HDU.

        Raises
        ------
        FitsLayoutError
            Raised if the HDU asked for does not exist or is not an image, or no HDU holds an image.
        """
        selector = self.hdu
        if selector is None:
            hdu = by_name.get(name)
            if hdu is not None and hdu.index > 0:
                return _check_image(hdu, path)
        elif selector != 0:
            hdu = _select(selector, hdus, by_name)
            if hdu is None:
                raise FitsLayoutError(path, f"hdu={selector!r}: no such HDU; HDUs present: {_names(hdus)}")
            return _check_image(hdu, path)
        for hdu in hdus:
            # The primary HDU (CCDData's layout), else the first image extension with data, as astropy
            # does (an unnamed one behind a header-only primary in the 2020 layout, ``SCI`` as HST writes
            # it); by default not one named as another plane, so that a file without its IMAGE is not
            # read as its FLAGS.
            if hdu.index > 0 and selector is None and hdu.name.upper() in OTHER_PLANE_NAMES:
                continue
            if hdu.is_image and hdu.shape and min(hdu.shape) > 0:
                return hdu
        raise FitsLayoutError(path, f"no {name} HDU and no HDU with an image; HDUs present: {_names(hdus)}")

    def find_plane(
        self,
        plane: str,
        names: Sequence[str],
        hdus: Sequence[FitsHdu],
        by_name: dict[str, FitsHdu],
        image: FitsHdu,
        path: str,
    ) -> FitsHdu | None:
        """Return the HDU of the uncertainty, mask or flags plane.

        Parameters
        ----------
        plane : `str`
            ``uncertainty``, ``mask`` or ``flags``.
        names : `~collections.abc.Sequence` [`str`]
            ``EXTNAME`` values the plane goes by, first found wins.
        hdus : `~collections.abc.Sequence` [`FitsHdu`]
            Every HDU of the file.
        by_name : `dict` [`str`, `FitsHdu`]
            The first HDU of each name.
        image : `FitsHdu`
            The image HDU (never also another plane).
        path : `str`
            File name, for messages.

        Returns
        -------
        hdu : `FitsHdu` or `None`
            `None` if the plane is left out or the file does not have it.

        Raises
        ------
        FitsLayoutError
            Raised if the HDU is not an image.
        """
        selector = getattr(self, f"hdu_{plane}")
        if selector is None:
            return None
        if selector is not AUTO:
            hdu = _select(selector, hdus, by_name)
            return None if hdu is None or hdu is image else _check_image(hdu, path)
        for name in names:
            hdu = by_name.get(name)
            if hdu is not None and hdu.index > 0 and hdu is not image:
                return _check_image(hdu, path)
        fallback = {"flags": _2020_FLAGS_INDEX, "uncertainty": _2020_UNCERTAINTY_INDEX}.get(plane)
        if fallback is not None and image.index == 1 and image.name == "" and fallback < len(hdus):
            # The 2020 layout: unnamed planes in the places its reader looked by default.
            hdu = hdus[fallback]
            if hdu.name == "" and hdu.is_image and hdu.shape == image.shape:
                return hdu
        return None


def _select(selector: int | str, hdus: Sequence[FitsHdu], by_name: dict[str, FitsHdu]) -> FitsHdu | None:
    if isinstance(selector, int):
        return hdus[selector] if -len(hdus) <= selector < len(hdus) else None
    return by_name.get(selector.strip().upper())


def _check_image(hdu: FitsHdu, path: str) -> FitsHdu:
    if not hdu.is_image:
        raise FitsLayoutError(path, f"HDU {hdu.index} ({hdu.name or 'unnamed'}) is a table, not an image")
    return hdu


def _names(hdus: Sequence[FitsHdu]) -> list[Any]:
    return [hdu.name or hdu.index for hdu in hdus]
