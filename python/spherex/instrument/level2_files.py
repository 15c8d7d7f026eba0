"""SPHEREx Level-2 file names, observation ids and the observation metadata of their headers.

IRSA names Level-2 spectral images
``level2_<planning period>_<large slew>_<small slew>D<detector>_spx_l2b-v<version>-<yyyy>-<doy>.fits``,
e.g. ``level2_2025W43_1A_0516_1D5_spx_l2b-v20-2025-299.fits``; the ``OBSID`` keyword holds
``<planning period>_<large slew>_<small slew>`` (``2025W43_1A_0516_1``).
"""

from __future__ import annotations

__all__ = [
    "LEVEL2_FILENAME",
    "LEVEL2_REGEX",
    "Level2FileName",
    "exposure_id_from_obsid",
    "level2_filename",
    "obsid_from_exposure_id",
    "read_level2_observation",
]

import contextlib
import math
import re
import string
import warnings
from dataclasses import dataclass

from astropy.io import fits
from astropy.time import Time
from astropy.wcs import WCS, FITSFixedWarning
from lsst.daf.butler import Timespan
from lsst.resources import ResourcePath

from ..archive import RemoteReadError
from ..core import FitsLayoutError, open_fits
from ..formatters.range_reads import open_byte_ranges
from .observation import (
    FileMetadataError,
    ObservationMetadata,
    check_exposure_time,
    check_mjd,
    header_value,
    sky_footprint,
    time_scale,
)

LEVEL2_REGEX = r"level2_(\d{4}W\d{2}_\d[A-Z]_\d{4}_\d)D(\d)_spx_l2b-v(\d+)-(\d{4}-\d{3})\.fits(\.fz|\.gz)?$"
"""Selects Level-2 spectral image files; the groups are OBSID, detector, version, processing date."""

LEVEL2_FILENAME = "level2_{obs_id}D{detector}_spx_l2b-v{version}-{processing_date}.fits"
"""Name of a Level-2 spectral image file (`str.format` template)."""

_OBSID = re.compile(r"^(\d{4})W(\d{2})_(\d)([A-Z])_(\d{4})_(\d)$")


def exposure_id_from_obsid(obs_id: str) -> int:
    """Return the exposure id of an observation id, stably and without collisions.

    Parameters
    ----------
    obs_id : `str`
        ``<yyyy>W<ww>_<n><L>_<large slew>_<small slew>``, e.g. ``2025W43_1A_0516_1``.

    Returns
    -------
    exposure : `int`
        The fields as decimal digits ``yy ww n LL ssss s`` (``LL`` = letter A-Z as 00-25), e.g.
        ``254310005161``: below 10**12 (`~spherex.instrument.SPHERExInstrument.exposure_max`), one id
        per OBSID of years 2000-2099, and readable.

    Raises
    ------
    ValueError
        Raised if ``obs_id`` does not have that form.
    """
    match = _OBSID.match(obs_id)
    if match is None:
        raise ValueError(
            f"OBSID {obs_id!r} is not of the form <yyyy>W<ww>_<n><L>_<llll>_<s>, e.g. 2025W43_1A_0516_1"
        )
    year, week, half, letter, large, small = match.groups()
    if not 2000 <= int(year) <= 2099 or not 1 <= int(week) <= 53:
        raise ValueError(f"OBSID {obs_id!r} has a planning period outside 2000W01-2099W53")
    exposure = int(year) - 2000
    for value, width in ((int(week), 100), (int(half), 10), (string.ascii_uppercase.index(letter), 100)):
        exposure = exposure * width + value
    return (exposure * 10000 + int(large)) * 10 + int(small)


def obsid_from_exposure_id(exposure: int) -> str:
    """Return the observation id of an exposure id made by `exposure_id_from_obsid`.

    Parameters
    ----------
    exposure : `int`
        Exposure id.

    Returns
    -------
    obs_id : `str`
        E.g. ``2025W43_1A_0516_1``.
    """
    exposure, small = divmod(exposure, 10)
    exposure, large = divmod(exposure, 10000)
    exposure, letter = divmod(exposure, 100)
    exposure, half = divmod(exposure, 10)
    year, week = divmod(exposure, 100)
    return f"{2000 + year}W{week:02d}_{half}{string.ascii_uppercase[letter]}_{large:04d}_{small}"


def level2_filename(obs_id: str, detector: int, version: int, processing_date: str) -> str:
    """Return IRSA's file name of a Level-2 spectral image.

    Parameters
    ----------
    obs_id : `str`
        Observation id, e.g. ``2025W43_1A_0516_1``.
    detector : `int`
        Detector array, 1-6.
    version : `int`
        Pipeline version, e.g. 20.
    processing_date : `str`
        ``<yyyy>-<day of year>``, e.g. ``2025-299``.

    Returns
    -------
    name : `str`
        E.g. ``level2_2025W43_1A_0516_1D5_spx_l2b-v20-2025-299.fits``.
    """
    return LEVEL2_FILENAME.format(
        obs_id=obs_id, detector=detector, version=version, processing_date=processing_date
    )


@dataclass(frozen=True)
class Level2FileName:
    """What the name of a Level-2 file says.

    Parameters
    ----------
    obs_id : `str`
        Observation id.
    detector : `int`
        Detector array, 1-6.
    version : `int`
        Pipeline version (``v20`` -> 20).
    processing_date : `str`
        ``<yyyy>-<doy>``.
    """

    obs_id: str
    detector: int
    version: int
    processing_date: str

    @classmethod
    def parse(cls, name: str) -> Level2FileName | None:
        """Parse a file name.

        Parameters
        ----------
        name : `str`
            File name (base name or path).

        Returns
        -------
        parsed : `Level2FileName` or `None`
            `None` if the name is not that of a Level-2 file.
        """
        match = re.search(LEVEL2_REGEX, name)
        if match is None:
            return None
        return cls(match.group(1), int(match.group(2)), int(match.group(3)), match.group(4))

    @property
    def exposure(self) -> int:
        """Exposure id of the observation (`int`)."""
        return exposure_id_from_obsid(self.obs_id)


def read_level2_observation(uri: ResourcePath, name: Level2FileName) -> ObservationMetadata:
    """Read the observation metadata of a Level-2 file from its ``IMAGE`` header.

    Parameters
    ----------
    uri : `lsst.resources.ResourcePath`
        The file.
    name : `Level2FileName`
        What its name says; ``OBSID`` and ``DETECTOR`` in the header must agree.

    Returns
    -------
    metadata : `ObservationMetadata`
        Exposure id from the OBSID, timespan from ``MJD-BEG``/``MJD-END``, exposure time from ``XPOSURE``
        (the integration time), footprint from the celestial WCS, boresight = the array centre;
        ``group_name`` is the planning period.

    Raises
    ------
    FileMetadataError
        Raised if the file is not a readable Level-2 image or a header keyword is missing or wrong.
    """
    path = uri.ospath if uri.scheme in ("", "file") else uri.geturl()
    try:
        # open_fits also checks that every HDU is complete: a truncated file fails here, by name.  A
        # remote file is read by byte ranges: its headers (every HDU's, for that check), not its pixels.
        with contextlib.ExitStack() as stack:
            if uri.isLocal:
                source = uri.ospath
            else:
                source = stack.enter_context(open_byte_ranges(uri))
            hdus = stack.enter_context(open_fits(source)[0])
            names = [hdu.name for hdu in hdus]
            if "IMAGE" not in names:
                raise FileMetadataError(
                    path, f"no IMAGE extension (HDUs: {names}); not a Level-2 spectral image"
                )
            header = hdus[0].header.copy()
            header.update(hdus["IMAGE"].header)
    except (FileMetadataError, FileNotFoundError, PermissionError, RemoteReadError):
        raise
    except FitsLayoutError as err:
        raise FileMetadataError(path, err.problem) from None
    except Exception as err:
        raise FileMetadataError(path, f"not a readable FITS file ({err})") from None

    def number(key: str) -> float:
        value = header_value(path, key, header)
        if value is None:
            raise FileMetadataError(path, f"missing header keyword {key}")
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise FileMetadataError(path, f"header keyword {key}={value!r} is not a finite number")
        return float(value)

    obs_id = header_value(path, "OBSID", header)
    if obs_id is None:
        raise FileMetadataError(path, "missing header keyword OBSID")
    if str(obs_id).strip() != name.obs_id:
        raise FileMetadataError(path, f"file name says OBSID {name.obs_id} but header OBSID={obs_id!r}")
    detector = number("DETECTOR")
    if detector != name.detector:
        raise FileMetadataError(
            path, f"file name says detector {name.detector} but header DETECTOR={detector:g}"
        )
    try:
        exposure = exposure_id_from_obsid(name.obs_id)
    except ValueError as err:
        raise FileMetadataError(path, str(err)) from None
    begin_mjd = check_mjd(path, "MJD-BEG", number("MJD-BEG"))
    end_mjd = check_mjd(path, "MJD-END", number("MJD-END"))
    if not end_mjd > begin_mjd:
        raise FileMetadataError(path, f"MJD-END={end_mjd} is not after MJD-BEG={begin_mjd}")
    scale = time_scale(path, header_value(path, "TIMESYS", header))
    try:
        begin = Time(begin_mjd, format="mjd", scale=scale)
        end = Time(end_mjd, format="mjd", scale=scale)
    except ValueError:
        raise FileMetadataError(
            path, f"TIMESYS={header.get('TIMESYS')!r} is not a time scale astropy knows"
        ) from None
    # XPOSURE is the integration time (113.58 s), shorter than the MJD-BEG..MJD-END span (118.2 s) that
    # the timespan keeps; EXPTIME is read for files of other producers.
    span = (end_mjd - begin_mjd) * 86400.0
    keyword = next((key for key in ("XPOSURE", "EXPTIME") if key in header), None)
    exposure_time = span if keyword is None else header_value(path, keyword, header)
    exposure_time = check_exposure_time(path, exposure_time, keyword or "MJD-END - MJD-BEG")
    if exposure_time > span + 1e-3:
        raise FileMetadataError(
            path, f"{keyword}={exposure_time} s is not within the MJD-BEG..MJD-END span of the exposure"
        )

    shape = (header.get("NAXIS2"), header.get("NAXIS1"))
    if header.get("NAXIS") != 2 or not all(isinstance(n, int) and n > 0 for n in shape):
        raise FileMetadataError(path, "IMAGE is not a 2-d image")
    try:
        region, (ra, dec) = _footprint_and_centre(header, shape)
    except Exception as err:
        raise FileMetadataError(path, f"IMAGE header has no usable celestial WCS ({err})") from None
    period = name.obs_id.rsplit("_", 2)[0]
    return ObservationMetadata(
        path=path,
        exposure=exposure,
        detector=name.detector,
        obs_id=name.obs_id,
        observation_type="science",
        timespan=Timespan(begin.utc, end.utc),
        exposure_time=exposure_time,
        group_name=period,
        group_id=exposure // 10**5,
        tracking_ra=ra,
        tracking_dec=dec,
        sky_angle=0.0,
        gaussian_jitter=0.0,
        region=region,
        simulated="SIMSEED" in header,
    )


def _footprint_and_centre(header: fits.Header, shape: tuple[int, int]) -> tuple:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        wcs = WCS(header)
    if not wcs.has_celestial:
        raise ValueError("no celestial axes")
    ra, dec = wcs.celestial.pixel_to_world_values((shape[1] - 1) / 2.0, (shape[0] - 1) / 2.0)
    return sky_footprint(wcs.celestial, shape), (float(ra), float(dec))
