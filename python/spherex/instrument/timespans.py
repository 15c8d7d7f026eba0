"""Exposure timespans from FITS ``DATE-OBS`` strings, without astropy's general time machinery."""

from __future__ import annotations

__all__ = ["observation_timespan"]

import datetime
import functools
import re
import warnings

import astropy.units as u
import erfa
from astropy.time import Time
from lsst.daf.butler import Timespan

_ISOT = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?$")
_EPOCH_ORDINAL = datetime.date(1970, 1, 1).toordinal()
_NSEC_PER_SEC = 1_000_000_000


def observation_timespan(date_obs: str, exposure_time: float) -> Timespan:
    """Return the timespan of an exposure from its UTC start (``DATE-OBS``) and length in seconds.

    Equal to ``Timespan(begin, begin + exposure_time * u.s)`` with ``begin = Time(date_obs,
    format="isot", scale="utc")``: the start to the nanosecond, the end within one (astropy adds the
    exposure time in floating-point days; here the sum is exact).  daf_butler stores a timespan as TAI
    nanoseconds since 1970, which for a plain ``YYYY-MM-DDThh:mm:ss[.fff]`` string are computed here
    directly (UTC calendar seconds plus TAI-UTC from ERFA's leap-second table), without astropy's
    general time machinery (2.6 ms per file).  Other spellings astropy accepts take astropy's path.

    Parameters
    ----------
    date_obs : `str`
        ``DATE-OBS``, ISO-8601 in UTC.
    exposure_time : `float`
        Exposure time in seconds.

    Returns
    -------
    timespan : `lsst.daf.butler.Timespan`
        From the start of the exposure to its end.

    Raises
    ------
    ValueError
        Raised if ``date_obs`` is not an ISO-8601 date, or is outside 2000-2100 (the message says which,
        quoting the value).
    """
    match = _ISOT.match(date_obs)
    if match is None:
        return _astropy_timespan(date_obs, exposure_time)
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    if not 2000 <= year <= 2100:
        raise ValueError(f"DATE-OBS={date_obs!r} is outside 2000-2100")
    try:
        date = datetime.date(year, month, day)
    except ValueError:
        raise ValueError(f"DATE-OBS={date_obs!r} is not an ISO-8601 date") from None
    if hour > 23 or minute > 59 or second > 60 or (second == 60 and not _is_leap_second(date, hour, minute)):
        # Second 60 exists only at the end of a day that has a leap second.
        raise ValueError(f"DATE-OBS={date_obs!r} is not an ISO-8601 date")
    fraction = int((match.group(7) or "0").ljust(9, "0"))
    day_seconds = hour * 3600 + minute * 60 + second
    # TAI - UTC at the start of the day: a leap second inserted at its end shows as second 60.
    tai_minus_utc = _tai_minus_utc(date)
    begin = (
        (date.toordinal() - _EPOCH_ORDINAL) * 86400 + day_seconds + tai_minus_utc
    ) * _NSEC_PER_SEC + fraction
    end = begin + round(exposure_time * _NSEC_PER_SEC)
    # Timespan's documented _nsec argument: the integer form daf_butler stores.
    return Timespan(None, None, _nsec=(begin, end))


@functools.lru_cache(maxsize=4096)
def _tai_minus_utc(date: datetime.date) -> int:
    """TAI - UTC in whole seconds at the start of a UTC day (ERFA's leap-second table, as astropy uses)."""
    with warnings.catch_warnings():
        # Dates past the table's last entry are "dubious" to ERFA; astropy then uses the last value too.
        warnings.simplefilter("ignore", erfa.ErfaWarning)
        return round(erfa.dat(date.year, date.month, date.day, 0.0))


def _is_leap_second(date: datetime.date, hour: int, minute: int) -> bool:
    following = date + datetime.timedelta(days=1)
    return (hour, minute) == (23, 59) and _tai_minus_utc(following) > _tai_minus_utc(date)


def _astropy_timespan(date_obs: str, exposure_time: float) -> Timespan:
    try:
        begin = Time(date_obs, format="isot", scale="utc")
    except ValueError:
        raise ValueError(f"DATE-OBS={date_obs!r} is not an ISO-8601 date") from None
    if not 2000 <= begin.datetime.year <= 2100:
        raise ValueError(f"DATE-OBS={date_obs!r} is outside 2000-2100")
    return Timespan(begin, begin + exposure_time * u.s)
