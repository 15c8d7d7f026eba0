"""Observation metadata of one SPHEREx image file, read from its FITS headers."""

from __future__ import annotations

__all__ = ["FileMetadataError", "ObservationMetadata", "sky_footprint"]

import math
import re
from dataclasses import dataclass
from typing import Any

import astropy.units as u
import numpy as np
from astropy.io import fits
from astropy.time import Time
from astropy.wcs import WCS
from lsst.daf.butler import Timespan
from lsst.resources import ResourcePath, ResourcePathExpression
from lsst.sphgeom import ConvexPolygon, LonLat, UnitVector3d

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
            value = primary.get(key, image.get(key))
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
        exposure_time = get(exposure_key, float)
        if not 0 < exposure_time < 86400:
            raise FileMetadataError(
                name, f"{exposure_key}={exposure_time} is not a plausible exposure time (s)"
            )
        date_obs = get("DATE-OBS", str)
        try:
            begin = Time(date_obs, format="isot", scale="utc")
        except ValueError:
            raise FileMetadataError(name, f"DATE-OBS={date_obs!r} is not an ISO-8601 date") from None
        if not 2000 <= begin.datetime.year <= 2100:
            raise FileMetadataError(name, f"DATE-OBS={date_obs!r} is outside 2000-2100")
        end = begin + exposure_time * u.s

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
            timespan=Timespan(begin, end),
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
