"""Header helpers shared by the SPHEREx FITS reader and writer: keyword classes, units, metadata cards."""

from __future__ import annotations

__all__ = [
    "DEFAULT_UNIT",
    "UNCERTAINTY_TYPES",
    "UNCERTAINTY_TYPE_KEYWORD",
    "UNIT_KEYWORD",
    "check_pixel_dtype",
    "copy_card",
    "is_structural_keyword",
    "is_wcs_keyword",
    "metadata_to_header",
    "metadata_cards",
    "parse_unit",
    "unit_string",
]

import functools
import re
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
from astropy import units as u
from astropy.io import fits
from astropy.nddata import CCDData, InverseVariance, NDUncertainty, StdDevUncertainty, VarianceUncertainty
from astropy.utils.exceptions import AstropyWarning

from ..errors import SPHERExImageError

DEFAULT_UNIT = u.electron / u.s
"""Unit of images whose ``IMAGE`` HDU has no ``BUNIT``, as in the 2020 proof of concept."""

UNIT_KEYWORD = "BUNIT"
"""Unit keyword of an image plane: belongs to ``unit``, not to ``meta`` (`str`)."""

UNCERTAINTY_TYPE_KEYWORD = "UTYPE"
"""Keyword naming the uncertainty class, written by CCDData and the 2020 proof of concept (`str`)."""

UNCERTAINTY_TYPES: Mapping[str, type[NDUncertainty]] = {
    "VarianceUncertainty": VarianceUncertainty,
    "StdDevUncertainty": StdDevUncertainty,
    "InverseVariance": InverseVariance,
}
"""Uncertainty classes by the name a ``UTYPE`` keyword gives."""

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


@functools.lru_cache(maxsize=256)
def parse_unit(text: str) -> u.UnitBase:
    """Parse a ``BUNIT`` value as `astropy.nddata.CCDData.read` does, and as the FITS world writes it.

    Parameters
    ----------
    text : `str`
        Unit string, e.g. ``MJy/sr``, ``MJy sr-1``, ``(MJy/sr)^2`` (SPHEREx Level-2 variance), ``ADU`` or
        ``ELECTRONS/S`` (spellings CCDData accepts).

    Returns
    -------
    unit : `astropy.units.UnitBase`
        The unit.

    Raises
    ------
    ValueError
        Raised if no unit parser (astropy's generic, FITS or OGIP format) understands the string, as
        ``CCDData.read`` raises for such a ``BUNIT``.
    """
    text = text.strip()
    if text.lower() == "adu":
        text = "adu"  # CCDData.read's patch for files writing ADU
    known = CCDData.known_invalid_fits_unit_strings.get(text)
    if known is not None:
        return u.Unit(known)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyWarning)
        for candidate in dict.fromkeys((text, text.replace("^", "**"))):
            for unit_format in (None, "fits", "ogip"):
                try:
                    return u.Unit(candidate, format=unit_format)
                except ValueError:
                    continue
    raise ValueError(f"{text!r} cannot be interpreted as a unit")


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
    for card in metadata_cards(meta):
        keyword = card.keyword
        if is_structural_keyword(keyword) or is_wcs_keyword(keyword) or keyword == UNIT_KEYWORD:
            continue
        header.append(card, end=True)
    return header


def metadata_cards(meta: Mapping[str, Any] | None) -> list[fits.Card]:
    """Return every card of image metadata, as `metadata_to_header` converts them (none left out).

    Raises
    ------
    SPHERExImageError
        Raised if a value cannot be written to a FITS header.
    """
    if meta is None:
        return []
    if isinstance(meta, fits.Header):
        return [copy_card(card) for card in meta.cards]
    cards: list[fits.Card] = []
    for key, value in meta.items():
        cards.extend(_cards_from_item(str(key), value))
    return cards


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


def copy_card(card: fits.Card) -> fits.Card:
    """Return an independent copy of a card (headers share the cards appended to them).

    Parameters
    ----------
    card : `astropy.io.fits.Card`
        Card to copy.

    Returns
    -------
    copy : `astropy.io.fits.Card`
        A new card with the same image.
    """
    return fits.Card.fromstring(card.image)


def check_pixel_dtype(array: np.ndarray, what: str) -> None:
    """Refuse a plane FITS cannot hold.

    Parameters
    ----------
    array : `numpy.ndarray`
        Pixels.
    what : `str`
        Plane name, for the message.

    Raises
    ------
    SPHERExImageError
        Raised if ``array`` holds neither integers nor floating point numbers.
    """
    if array.dtype.kind not in "iuf":
        raise SPHERExImageError(
            f"The {what} plane has dtype {array.dtype}; FITS images hold integers or floating point numbers"
        )


# Cached: a unit outside the FITS standard makes astropy build "did you mean" suggestions before it
# falls back, ~2.5 ms per call, paid on every put of a small image otherwise.
@functools.lru_cache(maxsize=64)
def unit_string(unit: u.UnitBase | None) -> str:
    """Spell a unit for ``BUNIT``.

    Parameters
    ----------
    unit : `astropy.units.UnitBase`, optional
        Unit; `DEFAULT_UNIT` if `None`.

    Returns
    -------
    text : `str`
        The FITS spelling, or astropy's for units outside the FITS standard.
    """
    if unit is None:
        return unit_string(DEFAULT_UNIT)
    try:
        return unit.to_string("fits")
    except (ValueError, TypeError):
        # Units outside the FITS standard (e.g. "electron/s" spelled otherwise) keep astropy's spelling.
        return unit.to_string()
