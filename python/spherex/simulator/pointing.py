"""Where and when the simulated survey points: exposure times, boresights and the WCS of each array.

The simulated survey scans like SPHEREx does: the boresight steps along a great circle through the
ecliptic poles, and that circle turns with the Earth's orbit (about one degree per day).  Each
exposure's pointing is a function of the seed and the exposure id alone, so any exposure can be
simulated on its own, in any process, and always lands in the same place.
"""

from __future__ import annotations

__all__ = [
    "CADENCE_S",
    "EXPOSURE_SPAN_S",
    "EXPTIME_S",
    "FIELD_SPAN_DEG",
    "POINTING_ERROR_ARCSEC",
    "SCAN_STEP_DEG",
    "SURVEY_START",
    "Pointing",
    "array_wcs",
    "deep_field_pointing",
    "exposure_pointing",
    "pixel_scale_deg",
    "planning_period",
]

from dataclasses import dataclass

import numpy as np
from astropy.time import Time, TimeDelta
from astropy.wcs import WCS

from ..instrument.detectors import ARRAY_SIZE, PIXEL_SCALE_ARCSEC, get_detector
from .celestial import ECLIPTIC_TO_ICRS, local_east_north, position_angle_of, radec_to_vector, vector_to_radec

EXPTIME_S = 113.5826
"""Integration time of one SPHEREx exposure, seconds (``XPOSURE`` of IRSA's real Level-2 headers, our
tests/data fixtures)."""

EXPOSURE_SPAN_S = 118.19
"""Time from the start to the end of one exposure, seconds: ``MJD-END - MJD-BEG`` of the same real headers
(60815.1248247288 - 60815.1234567890 d), longer than the integration by the frames read before and after
the samples that count."""

CADENCE_S = 150.0
"""Time between the starts of consecutive simulated exposures, seconds (integration plus slew)."""

SURVEY_START = Time("2025-05-01T00:00:00", scale="utc")
"""Start of exposure 0; exposure ``n`` starts ``n * CADENCE_S`` later."""

FIELD_SPAN_DEG = PIXEL_SCALE_ARCSEC * ARRAY_SIZE / 3600.0
"""Side of one array's field on the sky, degrees (2040 pixels of 6.15 arcsec, ~3.5 deg).

Simulated arrays smaller than 2040 pixels keep this footprint and get coarser pixels.
"""

SCAN_STEP_DEG = 2.5
"""Step of the boresight along the scan between consecutive exposures, degrees.

Smaller than `FIELD_SPAN_DEG`, so consecutive exposures overlap by about one degree along the scan.
"""

POINTING_ERROR_ARCSEC = 10.0
"""RMS difference between the commanded and the achieved boresight, per axis, arcsec."""

_SCAN_PRECESSION_DEG_PER_DAY = 360.0 / 365.25
_JITTER_RANGE_ARCSEC = (0.3, 1.0)
"""RMS pointing jitter per axis, arcsec (made up: small enough to leave the PSF of IRSA's headers)."""
_POINTING_STREAM = 1
"""Random-stream id that separates pointing draws from the other draws made from the same seed."""


@dataclass(frozen=True)
class Pointing:
    """Time and attitude of one simulated exposure.

    Parameters
    ----------
    exposure : `int`
        Exposure id.
    start : `astropy.time.Time`
        Start of the integration (UTC).
    exptime : `float`
        Integration time, seconds.
    ra, dec : `float`
        ICRS position of the boresight, degrees.
    roll : `float`
        Position angle (east of north) of the arrays' +y (column) axis at the boresight, degrees.
        The scan runs along +y.
    jitter : `float`
        RMS pointing jitter during the integration, per axis, arcsec.
    span : `float`, optional
        Seconds from the start to the end of the exposure (`EXPOSURE_SPAN_S`), the integration within.
    """

    exposure: int
    start: Time
    exptime: float
    ra: float
    dec: float
    roll: float
    jitter: float
    span: float = EXPOSURE_SPAN_S

    @property
    def end(self) -> Time:
        """End of the exposure (UTC): ``span`` after its start, as ``MJD-END`` of IRSA's headers."""
        return self.start + TimeDelta(self.span, format="sec")


def pixel_scale_deg(size: int) -> float:
    """Return the pixel scale of a simulated array.

    Parameters
    ----------
    size : `int`
        Pixels along each side of the simulated array.

    Returns
    -------
    scale : `float`
        Degrees per pixel: `FIELD_SPAN_DEG` / ``size`` (6.15 arcsec for the real 2040-pixel array).
    """
    return FIELD_SPAN_DEG / size


def exposure_pointing(exposure: int, seed: int) -> Pointing:
    """Return the time and attitude of one simulated exposure.

    Parameters
    ----------
    exposure : `int`
        Exposure id (>= 0).
    seed : `int`
        Survey seed (>= 0); it fixes where the scan starts.

    Returns
    -------
    pointing : `Pointing`
        The exposure's start time, boresight, roll and jitter.
    """
    survey = np.random.default_rng([seed, _POINTING_STREAM])
    lon0, theta0 = survey.uniform(0.0, 360.0, size=2)
    days = exposure * CADENCE_S / 86400.0
    lon = np.radians(lon0 + _SCAN_PRECESSION_DEG_PER_DAY * days)
    theta = np.radians((theta0 + exposure * SCAN_STEP_DEG) % 360.0)

    # The boresight runs along the meridian circle of ecliptic longitude `lon`.
    meridian = np.array([np.cos(lon), np.sin(lon), 0.0])
    pole = np.array([0.0, 0.0, 1.0])
    commanded = ECLIPTIC_TO_ICRS @ (np.cos(theta) * meridian + np.sin(theta) * pole)
    scan_direction = ECLIPTIC_TO_ICRS @ (-np.sin(theta) * meridian + np.cos(theta) * pole)

    draws = np.random.default_rng([seed, _POINTING_STREAM, exposure])
    error_east, error_north = np.radians(draws.normal(0.0, POINTING_ERROR_ARCSEC / 3600.0, size=2))
    jitter = float(draws.uniform(*_JITTER_RANGE_ARCSEC))
    east, north = local_east_north(commanded)
    boresight = commanded + error_east * east + error_north * north
    boresight /= np.linalg.norm(boresight)
    tangent = scan_direction - (scan_direction @ boresight) * boresight

    ra, dec = vector_to_radec(boresight)
    return Pointing(
        exposure=exposure,
        start=SURVEY_START + TimeDelta(exposure * CADENCE_S, format="sec"),
        exptime=EXPTIME_S,
        ra=float(ra),
        dec=float(dec),
        roll=position_angle_of(boresight, tangent),
        jitter=jitter,
    )


def deep_field_pointing(
    exposure: int, index: int, steps: int, ra: float, dec: float, size: int, seed: int, half_height: float
) -> Pointing:
    """Return one pointing of the deep-field pattern, which steps every band of every array over a patch.

    SPHEREx's linear variable filters change wavelength along the arrays' y axis, and arrays 1-3 lie
    side by side along x (4-6 see the same sky).  The pattern has ``3 * steps`` pointings: pointings
    ``0 .. steps - 1`` put the patch centre on the middle column of arrays 1 and 4, the next ``steps``
    on arrays 2 and 5, the last on arrays 3 and 6; within each, the patch centre steps evenly from row
    ``-half_height`` to row ``size - 1 + half_height``, so that every source of a patch of half-height
    ``half_height`` pixels crosses every row, hence every wavelength, of every array.  The arrays' y
    axis points north at the patch centre.

    Parameters
    ----------
    exposure : `int`
        Exposure id; sets the start time and jitter (as `exposure_pointing`).
    index : `int`
        Pointing in the pattern, ``0 .. 3 * steps - 1``.
    steps : `int`
        Pointings along y per array (>= 1).
    ra, dec : `float`
        ICRS centre of the patch, degrees (``|dec| < 89``).
    size : `int`
        Pixels per side of the simulated arrays.
    seed : `int`
        Survey seed.
    half_height : `float`
        Half-height of the patch along y, pixels.

    Returns
    -------
    pointing : `Pointing`
        Time and jitter of ``exposure``; boresight and roll of the pattern.

    Raises
    ------
    ValueError
        Raised if ``index`` is outside the pattern or the patch is too close to a celestial pole.
    """
    if not 0 <= index < 3 * steps:
        raise ValueError(f"Deep-field pointing {index} is outside the pattern of 3 x {steps} pointings")
    if not abs(dec) < 89.0:
        raise ValueError(f"A deep field must lie more than 1 degree from a celestial pole, not at Dec {dec}")
    field_offset, step = divmod(index, steps)
    row = (size - 1) / 2.0
    if steps > 1:
        row = -half_height + step * (size - 1 + 2.0 * half_height) / (steps - 1)
    along_y = np.radians((row - (size - 1) / 2.0) * pixel_scale_deg(size))
    along_x = (field_offset - 1) * 2.0 * np.arctan(np.radians(FIELD_SPAN_DEG / 2.0))

    # Roll 0 at the patch: y north, x = -east (as array_wcs orients them).  Move the boresight from the
    # patch by -along_x along x, then by -along_y along y, carrying the axes with it.
    patch = radec_to_vector(ra, dec)
    east, north = local_east_north(patch)
    boresight = np.cos(along_x) * patch + np.sin(along_x) * east
    y_axis = north
    boresight, y_axis = (
        np.cos(along_y) * boresight - np.sin(along_y) * y_axis,
        np.cos(along_y) * y_axis + np.sin(along_y) * boresight,
    )
    base = exposure_pointing(exposure, seed)
    bore_ra, bore_dec = vector_to_radec(boresight)
    return Pointing(
        exposure=exposure,
        start=base.start,
        exptime=base.exptime,
        ra=float(bore_ra),
        dec=float(bore_dec),
        roll=position_angle_of(boresight, y_axis),
        jitter=base.jitter,
        span=base.span,
    )


def array_wcs(pointing: Pointing, detector: int, size: int) -> WCS:
    """Return the celestial WCS of one array in one exposure.

    Arrays 1-3 lie side by side across the scan (along the arrays' x axis), edge to edge without gap or
    overlap, array 2 centred on the boresight; the dichroic gives arrays 4-6 the fields of 1-3.  Each
    array has its own gnomonic (TAN) projection about its centre, with north-up-east-left parity.

    Parameters
    ----------
    pointing : `Pointing`
        The exposure's attitude.
    detector : `int`
        Detector id, 1-6.
    size : `int`
        Pixels along each side of the simulated array.

    Returns
    -------
    wcs : `astropy.wcs.WCS`
        The array's WCS (0-based pixel coordinates in the astropy API, ``CRPIX`` at the array centre).

    Raises
    ------
    LookupError
        Raised if ``detector`` is not 1-6.
    """
    info = get_detector(detector)
    boresight = radec_to_vector(pointing.ra, pointing.dec)
    east, north = local_east_north(boresight)
    roll = np.radians(pointing.roll)
    y_axis = np.sin(roll) * east + np.cos(roll) * north
    x_axis = -np.cos(roll) * east + np.sin(roll) * north

    # The centres lie on the great circle through the boresight along the x axis.  Each array's side
    # edges are then great circles through that circle's pole, and spacing the centres by the angle
    # between the two side edges of one (gnomonic) array makes neighbouring edges coincide exactly.
    offset = info.field_offset * 2.0 * np.arctan(np.radians(FIELD_SPAN_DEG / 2.0))
    centre = np.cos(offset) * boresight + np.sin(offset) * x_axis
    ra, dec = vector_to_radec(centre)
    angle = np.radians(position_angle_of(centre, y_axis))

    scale = pixel_scale_deg(size)
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.cunit = ["deg", "deg"]
    wcs.wcs.radesys = "ICRS"
    wcs.wcs.crval = [float(ra), float(dec)]
    wcs.wcs.crpix = [(size + 1) / 2.0, (size + 1) / 2.0]
    wcs.wcs.cdelt = [-scale, scale]
    wcs.wcs.pc = [[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]
    wcs.pixel_shape = (size, size)
    return wcs


def planning_period(time: Time) -> tuple[int, str]:
    """Return the survey planning period (ISO calendar week) containing a time.

    Parameters
    ----------
    time : `astropy.time.Time`
        A time, e.g. the start of an exposure.

    Returns
    -------
    group_id : `int`
        ``year * 100 + week`` of the ISO week holding ``time`` (UTC), e.g. ``202518``.
    group_name : `str`
        Its name, e.g. ``SIM_2025W18``.
    """
    year, week, _ = time.utc.to_datetime().isocalendar()
    return year * 100 + week, f"SIM_{year}W{week:02d}"
