"""Observation metadata of one SPHEREx image file, read from its FITS headers."""

from __future__ import annotations

__all__ = [
    "FileMetadataError",
    "ObservationMetadata",
    "check_exposure_time",
    "check_mjd",
    "header_value",
    "sky_footprint",
    "time_scale",
]

import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.time import Time
from astropy.wcs import WCS
from lsst.daf.butler import Timespan
from lsst.resources import ResourcePath, ResourcePathExpression
from lsst.sphgeom import ConvexPolygon, LonLat, UnitVector3d

from ..geom import wcs_footprint
from .timespans import observation_timespan

_OBSID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}$")


class FileMetadataError(ValueError):
    """A file's headers cannot describe an observation.

    Parameters
    ----------
    path : `str`
        The file.
    problem : `str`
        What is wrong with it, in a few words.
    """

    def __init__(self, path: str, problem: str):
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


# Dates SPHEREx files may carry (launch 2025; a generous window, as for DATE-OBS): MJD of 2000-01-01 and
# 2100-01-01.  ERFA refuses dates far outside and raises an error, not a message naming the file.
_MJD_RANGE = (51544.0, 88069.0)
_MAX_EXPOSURE_TIME_S = 86400.0


def header_value(name: str, key: str, *headers: fits.Header) -> Any:
    """Return the value of ``key`` in the first header that has it, or `None`.

    Parameters
    ----------
    name : `str`
        The file, for messages.
    key : `str`
        Header keyword.
    *headers : `astropy.io.fits.Header`
        Headers to look in, in order.

    Returns
    -------
    value : `typing.Any`
        The value, or `None` if no header has the keyword.

    Raises
    ------
    FileMetadataError
        Raised if the card cannot be parsed (``EXPTIME = 12.3.4``, a raw control byte): astropy raises a
        `~astropy.io.fits.VerifyError` that names neither the file nor the keyword.
    """
    for header in headers:
        try:
            if key in header:
                return header[key]
        except (fits.VerifyError, ValueError, UnicodeDecodeError) as err:
            raise FileMetadataError(name, f"header card {key} cannot be parsed ({err})") from None
    return None


def check_exposure_time(name: str, value: Any, key: str = "EXPTIME") -> float:
    """Return an exposure time in seconds, or refuse it.

    Parameters
    ----------
    name : `str`
        The file, for messages.
    value : `typing.Any`
        The header value.
    key : `str`, optional
        Its keyword (``EXPTIME``, or ``XPOSURE`` in SPHEREx Level-2 files), for messages.

    Returns
    -------
    exposure_time : `float`
        The value, a finite number of seconds in (0, 86400).

    Raises
    ------
    FileMetadataError
        Raised if the value is not a number (``'abc'``), not finite, or not plausible (-5, 1e300).
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise FileMetadataError(name, f"header keyword {key}={value!r} is not a number")
    try:
        seconds = float(value)
    except ValueError:
        raise FileMetadataError(name, f"header keyword {key}={value!r} is not a number") from None
    if not math.isfinite(seconds):
        raise FileMetadataError(name, f"header keyword {key}={value!r} is not finite")
    if not 0 < seconds < _MAX_EXPOSURE_TIME_S:
        raise FileMetadataError(name, f"{key}={seconds:g} is not a plausible exposure time (s)")
    return seconds


def check_mjd(name: str, key: str, value: Any) -> float:
    """Return a modified Julian date of years 2000-2099, or refuse it.

    Parameters
    ----------
    name : `str`
        The file, for messages.
    key : `str`
        Its keyword (``MJD-BEG``, ``MJD-END``).
    value : `typing.Any`
        The header value.

    Returns
    -------
    mjd : `float`
        The date.

    Raises
    ------
    FileMetadataError
        Raised if the value is not a finite number or lies outside 2000-2100.
    """
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise FileMetadataError(name, f"header keyword {key}={value!r} is not a finite number")
    if not _MJD_RANGE[0] <= value < _MJD_RANGE[1]:
        raise FileMetadataError(name, f"{key}={value!r} is outside 2000-2100 (MJD 51544-88069)")
    return float(value)


def time_scale(name: str, timesys: Any) -> str:
    """Return the astropy time scale of a ``TIMESYS`` value (default UTC), or refuse it.

    Parameters
    ----------
    name : `str`
        The file, for messages.
    timesys : `typing.Any`
        The ``TIMESYS`` header value, or `None`.

    Returns
    -------
    scale : `str`
        One of `astropy.time.Time.SCALES` (``utc``, ``tai``, ``tt``, ...).

    Raises
    ------
    FileMetadataError
        Raised for a scale astropy does not know (``GPS`` is a time format there, not a scale).
    """
    scale = "utc" if timesys is None else str(timesys).strip().lower()
    if scale not in Time.SCALES:
        known = ", ".join(s.upper() for s in Time.SCALES)
        raise FileMetadataError(name, f"TIMESYS={timesys!r} is not a time scale astropy knows ({known})")
    return scale


def sky_footprint(wcs: WCS, shape: tuple[int, int]) -> ConvexPolygon:
    """Return the on-sky footprint of an image as a convex polygon.

    Parameters
    ----------
    wcs : `astropy.wcs.WCS`
        Celestial WCS of the image.
    shape : `tuple` [`int`, `int`]
        Image shape in numpy order (rows, columns).

    Returns
    -------
    region : `lsst.sphgeom.ConvexPolygon`
        Polygon through the outer corners of the corner pixels.
    """
    ny, nx = shape
    x = np.array([-0.5, nx - 0.5, nx - 0.5, -0.5])
    y = np.array([-0.5, -0.5, ny - 0.5, ny - 0.5])
    celestial = wcs if wcs.naxis == 2 else wcs.celestial
    ra, dec = celestial.pixel_to_world_values(x, y)
    return ConvexPolygon(
        [UnitVector3d(LonLat.fromDegrees(float(a), float(d))) for a, d in zip(ra, dec, strict=True)]
    )


@dataclass(frozen=True)
class ObservationMetadata:
    """What the registry needs to know about one image file.

    Built by `from_file` from the PRIMARY header (observation keywords) and the IMAGE header (shape and
    celestial WCS) of a file written by ``spherex-simulate``; the pixels are never read.
    """

    path: str
    exposure: int
    detector: int
    obs_id: str
    observation_type: str
    timespan: Timespan
    exposure_time: float
    group_name: str
    group_id: int
    tracking_ra: float | None
    tracking_dec: float | None
    sky_angle: float
    gaussian_jitter: float
    region: ConvexPolygon | None
    simulated: bool = False
    """Whether the file says it is simulated (a ``SIMSEED`` keyword, as ``spherex-simulate`` writes)."""

    @classmethod
    def from_file(
        cls,
        path: ResourcePathExpression,
        exposure: int | None = None,
        detector: int | None = None,
        on_sky: bool = True,
    ) -> ObservationMetadata:
        """Read the metadata of one file.

        Parameters
        ----------
        path : `lsst.resources.ResourcePathExpression`
            The FITS file (local path or URI).
        exposure, detector : `int`, optional
            Ids parsed from the file name; when given they must agree with the headers' EXPID and
            DETECTOR, and stand in for them when the headers lack them.
        on_sky : `bool`, optional
            Whether the file looks at the sky and must have a celestial WCS and boresight (`False` for
            dark frames, whose ``region`` is then `None`).

        Returns
        -------
        metadata : `ObservationMetadata`
            The file's observation metadata.

        Raises
        ------
        FileMetadataError
            Raised if the file is not readable FITS, lacks a required keyword, or a value is out of range.
        """
        uri = ResourcePath(path)
        name = uri.geturl() if uri.scheme not in ("", "file") else uri.ospath
        try:
            primary, image = _read_headers(uri)
        except FileMetadataError:
            raise
        except Exception as err:
            raise FileMetadataError(name, f"not a readable FITS file ({err})") from None
        return cls.from_headers(name, primary, image, exposure=exposure, detector=detector, on_sky=on_sky)

    @classmethod
    def from_headers(
        cls,
        name: str,
        primary: fits.Header,
        image: fits.Header,
        exposure: int | None = None,
        detector: int | None = None,
        on_sky: bool = True,
    ) -> ObservationMetadata:
        """Build the metadata of one file from headers already read.

        Parameters
        ----------
        name : `str`
            The file, for messages and `path`.
        primary : `astropy.io.fits.Header`
            Its PRIMARY header (observation keywords).
        image : `astropy.io.fits.Header`
            Its image header (shape and WCS; the PRIMARY header in the original layout).
        exposure, detector : `int`, optional
            Ids parsed from the file name, as for `from_file`.
        on_sky : `bool`, optional
            Whether the file looks at the sky, as for `from_file`.

        Returns
        -------
        metadata : `ObservationMetadata`
            The file's observation metadata.

        Raises
        ------
        FileMetadataError
            Raised if a required keyword is missing or a value is out of range.
        """

        def get(key: str, kind: type, required: bool = True) -> Any:
            value = header_value(name, key, primary, image)
            if value is None or (isinstance(value, str) and not value.strip()):
                if required:
                    raise FileMetadataError(name, f"missing header keyword {key}")
                return None
            try:
                converted = kind(value)
            except (TypeError, ValueError):
                raise FileMetadataError(
                    name, f"header keyword {key}={value!r} is not {kind.__name__}"
                ) from None
            if kind is float and not math.isfinite(converted):
                raise FileMetadataError(name, f"header keyword {key}={value!r} is not finite")
            return converted

        header_exposure = get("EXPID", int, required=exposure is None)
        header_detector = get("DETECTOR", int, required=detector is None)
        for key, from_name, from_header in (
            ("EXPID", exposure, header_exposure),
            ("DETECTOR", detector, header_detector),
        ):
            if from_name is not None and from_header is not None and from_name != from_header:
                raise FileMetadataError(
                    name, f"file name says {key.lower()} {from_name} but header {key}={from_header}"
                )
        exposure = exposure if exposure is not None else header_exposure
        detector = detector if detector is not None else header_detector
        if not 0 <= exposure < 10**9:
            raise FileMetadataError(name, f"exposure id {exposure} is out of range 0-999999999")
        if not 1 <= detector <= 6:
            raise FileMetadataError(name, f"detector {detector} is not one of SPHEREx's arrays 1-6")

        obs_id = get("OBSID", str)
        if not _OBSID_PATTERN.match(obs_id) or ".." in obs_id:
            raise FileMetadataError(name, f"OBSID {obs_id!r} has characters not allowed in an observation id")
        group_name = get("GROUPNAM", str, required=False) or ""
        if group_name and (not _OBSID_PATTERN.match(group_name) or ".." in group_name):
            # The group name is part of the datastore path template: keep it one plain path component.
            raise FileMetadataError(
                name, f"GROUPNAM {group_name!r} has characters not allowed in a group name"
            )
        # XPOSURE (the integration time, as SPHEREx Level-2 headers give it) wins over EXPTIME.
        exposure_key = "XPOSURE" if primary.get("XPOSURE", image.get("XPOSURE")) is not None else "EXPTIME"
        exposure_time = check_exposure_time(name, get(exposure_key, float), exposure_key)
        try:
            timespan = observation_timespan(get("DATE-OBS", str), exposure_time)
        except ValueError as err:
            raise FileMetadataError(name, str(err)) from None

        shape = (image.get("NAXIS2"), image.get("NAXIS1"))
        if image.get("NAXIS") != 2 or not all(isinstance(n, int) and n > 0 for n in shape):
            raise FileMetadataError(name, "IMAGE is not a 2-d image")
        region = cls._footprint(name, image, shape) if on_sky else None
        return cls(
            path=name,
            exposure=exposure,
            detector=detector,
            obs_id=obs_id,
            observation_type=get("IMAGETYP", str, required=False) or "science",
            timespan=timespan,
            exposure_time=exposure_time,
            group_name=group_name,
            group_id=get("GROUPID", int, required=False) or 0,
            tracking_ra=get("RA_BORE", float, required=on_sky),
            tracking_dec=get("DEC_BORE", float, required=on_sky),
            sky_angle=get("ROLL", float, required=False) or 0.0,
            gaussian_jitter=get("JITTER", float, required=False) or 0.0,
            region=region,
            simulated="SIMSEED" in primary or "SIMSEED" in image,
        )

    @staticmethod
    def _footprint(name: str, image: fits.Header, shape: tuple[int, int]) -> ConvexPolygon:
        """Return the sky footprint from the IMAGE header's celestial WCS."""
        region = wcs_footprint(image, shape)
        if region is not None:
            return region
        try:
            wcs = WCS(image)
        except Exception as err:
            raise FileMetadataError(name, f"IMAGE header has no usable WCS ({err})") from None
        if not wcs.has_celestial:
            raise FileMetadataError(name, "IMAGE header has no celestial WCS")
        try:
            return sky_footprint(wcs, shape)
        except Exception as err:
            raise FileMetadataError(name, f"IMAGE WCS does not map the image onto the sky ({err})") from None


def _read_headers(uri: ResourcePath) -> tuple[fits.Header, fits.Header]:
    """Return the PRIMARY header and the image header (``IMAGE``, or PRIMARY in the original layout)."""
    with uri.as_local() as local, fits.open(local.ospath, lazy_load_hdus=True) as hdus:
        primary = hdus[0].header
        names = [hdu.name for hdu in hdus]
        if "IMAGE" in names:
            image = hdus["IMAGE"].header
        elif primary.get("NAXIS", 0) == 2:
            image = primary
        else:
            raise FileMetadataError(
                uri.ospath if uri.scheme in ("", "file") else str(uri), "no IMAGE extension"
            )
    return primary, image
