"""Flag (bitmask) definitions of SPHEREx images and their FITS header form.

A SPHEREx ``FLAGS`` plane is an int32 bitmask.  The meaning of each bit is stored in the header of the
``FLAGS`` HDU as one ``MP_<NAME> = <bit>`` keyword per flag (``HIERARCH MP_<NAME>`` when the keyword is
longer than eight characters), with ``EXTTYPE = 'MASK'``: the convention IRSA's Firefly viewer uses to
overlay flag bits, and the one SPHEREx Level-2 images follow.
"""

from __future__ import annotations

__all__ = [
    "FLAG_KEYWORD_PREFIX",
    "LEVEL2_FLAG_BITS",
    "MAX_FLAG_BIT",
    "flag_defs_to_cards",
    "flags_as_int32",
    "read_flag_defs",
    "validate_flag_defs",
]

import re
from collections.abc import Mapping

import numpy as np
from astropy.io import fits

from ..errors import FitsLayoutError, SPHERExImageError

FLAG_KEYWORD_PREFIX = "MP_"
"""Prefix of the header keywords that name flag bits (`str`)."""

MAX_FLAG_BIT = 31
"""Highest bit an int32 ``FLAGS`` plane can hold (`int`)."""

LEVEL2_FLAG_BITS: Mapping[str, int] = {
    "TRANSIENT": 0,
    "OVERFLOW": 1,
    "SUR_ERROR": 2,
    "PHANTOM": 4,
    "REFERENCE": 5,
    "NONFUNC": 6,
    "DICHROIC": 7,
    "MISSING_DATA": 9,
    "HOT": 10,
    "COLD": 11,
    "FULLSAMPLE": 12,
    "PHANMISS": 14,
    "NONLINEAR": 15,
    "PERSIST": 17,
    "OUTLIER": 19,
    "SOURCE": 21,
}
"""Flag bits of SPHEREx Level-2 (calibrated) images, as in their ``FLAGS`` HDU headers."""

# FITS keywords (HIERARCH included) are upper case; keep names to characters every FITS reader accepts.
# 64 characters keeps "HIERARCH MP_<NAME> = 31" within one 80-character card.
_FLAG_NAME = re.compile(r"^[A-Z0-9_-]{1,64}$")


def validate_flag_defs(flag_defs: Mapping[str, int] | None) -> dict[str, int]:
    """Check flag definitions and return them in canonical form.

    Parameters
    ----------
    flag_defs : `~collections.abc.Mapping` [`str`, `int`] or `None`
        Flag name to bit number.  Names are case-insensitive (FITS keywords are upper case) and may hold
        letters, digits, ``_`` and ``-``.

    Returns
    -------
    flag_defs : `dict` [`str`, `int`]
        A new dictionary with upper-case names, in the given order; empty for `None`.

    Raises
    ------
    SPHERExImageError
        Raised if a name is not a valid keyword part, two names differ only by case, or a bit is not an
        integer in 0-31.
    """
    if flag_defs is None:
        return {}
    if not isinstance(flag_defs, Mapping):
        raise SPHERExImageError(f"flag_defs must map flag names to bits, not {type(flag_defs).__name__}")
    result: dict[str, int] = {}
    for name, bit in flag_defs.items():
        if not isinstance(name, str) or not _FLAG_NAME.match(name.upper()):
            raise SPHERExImageError(
                f"Flag name {name!r} is not usable in a FITS keyword: use 1-64 letters, digits, '_' or '-'"
            )
        key = name.upper()
        if key in result:
            raise SPHERExImageError(f"Flag name {name!r} is defined twice (flag names are case-insensitive)")
        if isinstance(bit, bool) or not isinstance(bit, int | np.integer):
            raise SPHERExImageError(f"Bit of flag {name!r} must be an integer, not {bit!r}")
        if not 0 <= int(bit) <= MAX_FLAG_BIT:
            raise SPHERExImageError(
                f"Bit {int(bit)} of flag {name!r} does not fit in the int32 FLAGS plane "
                f"(bits 0-{MAX_FLAG_BIT})"
            )
        result[key] = int(bit)
    return result


def flag_defs_to_cards(flag_defs: Mapping[str, int]) -> list[fits.Card]:
    """Return the header cards that define flag bits.

    Parameters
    ----------
    flag_defs : `~collections.abc.Mapping` [`str`, `int`]
        Validated flag definitions (see `validate_flag_defs`).

    Returns
    -------
    cards : `list` [`astropy.io.fits.Card`]
        One ``MP_<NAME>`` card per flag, ``HIERARCH`` when the keyword is longer than eight characters.
    """
    cards = []
    for name, bit in flag_defs.items():
        keyword = f"{FLAG_KEYWORD_PREFIX}{name}"
        if len(keyword) > 8:
            keyword = f"HIERARCH {keyword}"
        cards.append(fits.Card(keyword, bit))
    return cards


def read_flag_defs(header: fits.Header, path: str = "<memory>") -> dict[str, int]:
    """Read flag definitions from the ``MP_<NAME>`` keywords of a header.

    Parameters
    ----------
    header : `astropy.io.fits.Header`
        Header of a ``FLAGS`` HDU.
    path : `str`, optional
        File the header comes from, for error messages.

    Returns
    -------
    flag_defs : `dict` [`str`, `int`]
        Flag name (without the prefix) to bit, in header order; empty if the header defines no flags.

    Raises
    ------
    FitsLayoutError
        Raised if an ``MP_`` keyword does not hold an integer bit in 0-31.
    """
    flag_defs: dict[str, int] = {}
    for card in header.cards:
        keyword = card.keyword
        if not keyword.startswith(FLAG_KEYWORD_PREFIX) or len(keyword) == len(FLAG_KEYWORD_PREFIX):
            continue
        value = card.value
        if isinstance(value, bool) or not isinstance(value, int):
            raise FitsLayoutError(path, f"flag keyword {keyword} = {value!r} is not an integer bit number")
        if not 0 <= value <= MAX_FLAG_BIT:
            raise FitsLayoutError(
                path, f"flag keyword {keyword} = {value} is outside the int32 FLAGS plane (bits 0-31)"
            )
        flag_defs[keyword[len(FLAG_KEYWORD_PREFIX) :]] = value
    return flag_defs


def flags_as_int32(flags: np.ndarray, header: fits.Header, path: str, hdu_name: str) -> np.ndarray:
    """Return a flags plane read from FITS as the int32 bitmask it stores.

    Parameters
    ----------
    flags : `numpy.ndarray`
        The plane as astropy (or a direct read) returned it.
    header : `astropy.io.fits.Header`
        Its header (``BITPIX``, ``BLANK``, ``BSCALE``, ``BZERO``).
    path : `str`
        File, for messages.
    hdu_name : `str`
        HDU, for messages.

    Returns
    -------
    flags : `numpy.ndarray`
        int32: narrower integers widened, uint32 reinterpreted bit for bit, and an integer plane with
        ``BLANK`` (which astropy returns as floats with NaN) restored to its integers, ``BLANK`` pixels
        included.

    Raises
    ------
    FitsLayoutError
        Raised if the plane does not hold integers that fit in 32 bits.
    """
    blank = header.get("BLANK")
    restored = False
    if flags.dtype.kind == "f" and header.get("BITPIX") in (8, 16, 32) and _is_int(blank):
        fill = blank * header.get("BSCALE", 1) + header.get("BZERO", 0)
        flags = np.where(np.isnan(flags), fill, flags).astype(np.int64)
        restored = True
    if flags.dtype.kind not in "iu":
        raise FitsLayoutError(path, f"HDU {hdu_name} holds {flags.dtype}, not an integer bitmask")
    if flags.dtype.itemsize > 4:
        if not restored or (flags.size and (flags.min() < -(2**31) or flags.max() >= 2**32)):
            raise FitsLayoutError(path, f"HDU {hdu_name} holds {flags.dtype}; flags must fit in int32")
        return flags.astype(np.uint32 if flags.max(initial=0) >= 2**31 else np.int32).view(np.int32)
    if flags.dtype.kind == "u" and flags.dtype.itemsize == 4:
        return flags.astype(np.uint32).view(np.int32)
    if flags.dtype.itemsize < 4:
        return flags.astype(np.int32)
    return flags


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
