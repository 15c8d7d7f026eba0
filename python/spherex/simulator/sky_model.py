"""The simulated sky: a smooth zodiacal background and a fixed catalogue of point sources.

The sky is a function of the seed and of sky position only, so every array of every exposure that looks
at a patch of sky sees the same background level and the same stars there.  Stars are generated on
demand in fixed cells of about one square degree, each cell drawing from its own random stream, so
looking at part of the sky never depends on which other parts were looked at first.
"""

from __future__ import annotations

__all__ = [
    "BRIGHTEST_STAR",
    "FAINTEST_STAR",
    "STARS_PER_PIXEL",
    "SkyModel",
    "StarField",
    "count_rate_calibration",
    "psf_sigma_pixels",
    "render_point_sources",
    "zodiacal_brightness",
    "zodiacal_surface_brightness",
]

import math
from dataclasses import dataclass

import numpy as np
from astropy.wcs import WCS

from ..instrument.detectors import PIXEL_SCALE_ARCSEC, DetectorInfo, get_detector
from .celestial import ECLIPTIC_TO_ICRS, radec_to_vector
from .pointing import FIELD_SPAN_DEG

STARS_PER_PIXEL = 1.0e-3
"""Mean number of catalogued stars per pixel of a simulated array.

The catalogue depth follows the simulated pixel size, so a small test array holds a few isolated stars
and a full 2040-pixel array about four thousand, instead of a confused blend.
"""

FAINTEST_STAR = 3.0
"""Faintest catalogued star, total count rate in band 1, electron/s."""

BRIGHTEST_STAR = 3.0e4
"""Brightest catalogued star, total count rate in band 1, electron/s."""

_COUNT_SLOPE = 1.5
"""Euclidean source counts: N(>F) is proportional to F ** -1.5."""

_SPECTRAL_SLOPE_RANGE = (-2.0, 0.5)
"""Range of power-law slopes of the stars' count-rate spectra, per unit of band centre wavelength."""

# Zodiacal light in MJy/sr: sunlight scattered by interplanetary dust (solar colour, a 5800 K black body)
# plus the dust's own thermal emission (a 286 K black body, the dust temperature at 1 AU of the DIRBE
# model, Kelsall et al. 1998, ApJ 508, 44).  In I_nu the scattered part falls beyond ~1 micron and the
# thermal part rises steeply toward 5 micron, so the sum has its minimum near 3.5 micron, where the
# near-infrared sky is darkest.  The two amplitudes on the ecliptic (0.6 MJy/sr of scattered light at
# 1 micron, 0.9 MJy/sr of thermal emission at 5 micron) and the fall to 0.4 of the ecliptic level at the
# poles are made up, chosen so that the levels span the ~0.1-1 MJy/sr of real SPHEREx ZODI planes.
_ZODI_SCATTERED_AT_1_MICRON = 0.6
_ZODI_THERMAL_AT_5_MICRON = 0.9
_SUN_TEMPERATURE_K = 5800.0
_DUST_TEMPERATURE_K = 286.0
_ZODI_POLE_FRACTION = 0.4
_ZODI_SCALE_HEIGHT_DEG = 25.0

# Photometric calibration: a 20 cm aperture (SPHEREx's), a made-up end-to-end efficiency of 0.5, and
# the solid angle of a real 6.15 arcsec pixel.  A pixel seeing I_nu collects I_nu * Omega * A * eta /
# (h * R) photons a second through a filter of resolving power R.
_TELESCOPE_APERTURE_M = 0.2
_EFFICIENCY = 0.5
_PLANCK = 6.62607015e-34

# PSF: the optics' blur, the diffraction limit at the band centre and the pointing jitter, in quadrature.
# 4.0 arcsec of optical blur reproduces the PSF_FWHM of IRSA's real headers (our tests/data fixtures:
# 6.06 arcsec on a D5 QR2 image, 6.56 arcsec on a D6 QR1 image, both with 6.15 arcsec pixels) with the
# simulator's typical jitter; that the blur is the same in the short-wavelength bands is made up.
_OPTICS_FWHM_ARCSEC = 4.0
_FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))

_CELL_DEG = 1.0
_BACKGROUND_NODES = 9
_STAR_STREAM = 2
"""Random-stream id that separates catalogue draws from the other draws made from the same seed."""


def _band_centre(info: DetectorInfo) -> float:
    return 0.5 * (info.lmin + info.lmax)


def psf_sigma_pixels(detector: int, jitter_arcsec: float = 0.0) -> float:
    """Return the Gaussian PSF width of an array, including pointing jitter.

    The PSF combines the optics' blur (4.0 arcsec FWHM) with the diffraction limit of SPHEREx's 20 cm
    aperture at the band centre and the exposure's jitter, all in quadrature: a FWHM of 0.7-1.1 pixels
    of the real 6.15 arcsec array, as IRSA's headers have it.  The width is kept in pixels when a smaller
    simulated array has coarser pixels, so small test arrays are sampled like the real one; such an
    array's PSF is then as many times wider on the sky as its pixels are, and its headers say so
    (``PSF_FWHM`` and the PSF extension's ``CDELT`` are in its own pixels' arcsec).

    Parameters
    ----------
    detector : `int`
        Detector id, 1-6.
    jitter_arcsec : `float`, optional
        RMS pointing jitter per axis, arcsec (on the real array's 6.15 arcsec pixels).

    Returns
    -------
    sigma : `float`
        Gaussian sigma, pixels.
    """
    wavelength_m = _band_centre(get_detector(detector)) * 1e-6
    diffraction_arcsec = math.degrees(1.03 * wavelength_m / _TELESCOPE_APERTURE_M) * 3600.0
    optics_sigma = math.hypot(_OPTICS_FWHM_ARCSEC, diffraction_arcsec) / _FWHM_PER_SIGMA
    return math.hypot(optics_sigma, jitter_arcsec) / PIXEL_SCALE_ARCSEC


def count_rate_calibration(detector: int) -> float:
    """Return the surface brightness that gives a pixel one electron a second.

    Parameters
    ----------
    detector : `int`
        Detector id, 1-6 (sets the resolving power).

    Returns
    -------
    calibration : `float`
        MJy/sr per electron/s: about 0.19 in bands 1-4 (R ~ 40) and 0.6 in bands 5-6 (R ~ 120).
    """
    pixel_sr = math.radians(PIXEL_SCALE_ARCSEC / 3600.0) ** 2
    area_m2 = math.pi * (_TELESCOPE_APERTURE_M / 2.0) ** 2
    electrons_per_mjy_sr = (
        1e-20 * pixel_sr * area_m2 * _EFFICIENCY / (_PLANCK * get_detector(detector).resolving_power)
    )
    return 1.0 / electrons_per_mjy_sr


def _planck_shape(wavelength: np.ndarray | float, temperature: float) -> np.ndarray:
    """Return a black body's I_nu at ``wavelength`` (micron), up to a constant factor."""
    x = 14387.77 / (np.asarray(wavelength, dtype=float) * temperature)
    return x**3 / np.expm1(x)


def zodiacal_surface_brightness(wavelength: np.ndarray | float) -> np.ndarray:
    """Return the zodiacal light on the ecliptic at some wavelengths.

    Parameters
    ----------
    wavelength : `numpy.ndarray` or `float`
        Wavelengths, micron.

    Returns
    -------
    brightness : `numpy.ndarray`
        MJy/sr: 0.6 at 1 micron, a minimum of ~0.17 near 3.5 micron, ~1 at 5 micron.
    """
    scattered = _planck_shape(wavelength, _SUN_TEMPERATURE_K) / _planck_shape(1.0, _SUN_TEMPERATURE_K)
    thermal = _planck_shape(wavelength, _DUST_TEMPERATURE_K) / _planck_shape(5.0, _DUST_TEMPERATURE_K)
    return _ZODI_SCATTERED_AT_1_MICRON * scattered + _ZODI_THERMAL_AT_5_MICRON * thermal


def zodiacal_brightness(detector: int, ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    """Return the zodiacal background count rate per pixel at sky positions.

    The level is `zodiacal_surface_brightness` at the band centre (so its minimum is in band 4), over
    `count_rate_calibration`, and falls smoothly from the ecliptic to 0.4 of its value at the poles.

    Parameters
    ----------
    detector : `int`
        Detector id, 1-6 (sets the band).
    ra, dec : `numpy.ndarray`
        ICRS positions, degrees.

    Returns
    -------
    rate : `numpy.ndarray`
        Count rate per pixel, electron/s.
    """
    centre = _band_centre(get_detector(detector))
    level = float(zodiacal_surface_brightness(centre)) / count_rate_calibration(detector)
    ecliptic_z = radec_to_vector(ra, dec) @ ECLIPTIC_TO_ICRS[:, 2]
    latitude = np.degrees(np.arcsin(np.clip(np.abs(ecliptic_z), 0.0, 1.0)))
    shape = _ZODI_POLE_FRACTION + (1.0 - _ZODI_POLE_FRACTION) * np.exp(-latitude / _ZODI_SCALE_HEIGHT_DEG)
    return level * shape


@dataclass(frozen=True)
class StarField:
    """Catalogued stars that fall on (or just off) one array.

    Parameters
    ----------
    ra, dec : `numpy.ndarray`
        ICRS positions, degrees.
    x, y : `numpy.ndarray`
        0-based pixel positions on the array.
    flux : `numpy.ndarray`
        Total count rate of each star in the array's band, electron/s.
    """

    ra: np.ndarray
    dec: np.ndarray
    x: np.ndarray
    y: np.ndarray
    flux: np.ndarray

    def __len__(self) -> int:
        return len(self.flux)


class SkyModel:
    """The sky seen by the simulator for one seed and one simulated array size.

    Parameters
    ----------
    seed : `int`
        Survey seed (>= 0).
    size : `int`
        Pixels along each side of the simulated arrays; sets the catalogue depth (`STARS_PER_PIXEL`).
    """

    def __init__(self, seed: int, size: int) -> None:
        self.seed = seed
        self.size = size
        self.star_density = STARS_PER_PIXEL * size**2 / FIELD_SPAN_DEG**2
        """Mean number of catalogued stars per square degree."""

    def background(self, wcs: WCS, detector: int) -> np.ndarray:
        """Return the zodiacal background image of one array.

        The background is evaluated on a coarse grid of sky positions and interpolated bilinearly: it
        changes by a few per cent across an array, far more slowly than the grid spacing.

        Parameters
        ----------
        wcs : `astropy.wcs.WCS`
            The array's WCS.
        detector : `int`
            Detector id, 1-6.

        Returns
        -------
        image : `numpy.ndarray`
            Count rate per pixel, electron/s, shape ``(size, size)``.
        """
        nodes = np.linspace(0.0, self.size - 1.0, _BACKGROUND_NODES)
        node_x, node_y = np.meshgrid(nodes, nodes)
        ra, dec = wcs.wcs_pix2world(node_x, node_y, 0)
        grid = zodiacal_brightness(detector, ra, dec)
        weights = _linear_interpolation_weights(nodes, self.size)
        return weights @ grid @ weights.T

    def stars(self, wcs: WCS, detector: int, margin: float = 0.0) -> StarField:
        """Return the catalogued stars on one array.

        Parameters
        ----------
        wcs : `astropy.wcs.WCS`
            The array's WCS.
        detector : `int`
            Detector id, 1-6 (sets the band the fluxes are given in).
        margin : `float`, optional
            Also return stars up to this many pixels beyond the array's edges (whose light spills on).

        Returns
        -------
        stars : `StarField`
            The stars, with pixel positions from ``wcs``.
        """
        centre = (self.size - 1) / 2.0
        centre_ra, centre_dec = (float(v) for v in wcs.wcs_pix2world(centre, centre, 0))
        radius = FIELD_SPAN_DEG / math.sqrt(2.0) + (margin + 1.0) * FIELD_SPAN_DEG / self.size
        ra, dec, flux_ref, slope = self._catalogue_near(centre_ra, centre_dec, radius)
        near = radec_to_vector(ra, dec) @ radec_to_vector(centre_ra, centre_dec) > math.cos(
            math.radians(radius)
        )
        ra, dec, flux_ref, slope = ra[near], dec[near], flux_ref[near], slope[near]
        x, y = wcs.wcs_world2pix(ra, dec, 0)
        on = (x > -0.5 - margin) & (x < self.size - 0.5 + margin)
        on &= (y > -0.5 - margin) & (y < self.size - 0.5 + margin)
        band_ratio = _band_centre(get_detector(detector)) / _band_centre(get_detector(1))
        flux = flux_ref[on] * band_ratio ** slope[on]
        return StarField(ra=ra[on], dec=dec[on], x=x[on], y=y[on], flux=flux)

    def _catalogue_near(
        self, ra: float, dec: float, radius: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Return every catalogued star in the cells that may hold stars within ``radius`` of a point."""
        n_bands = round(180.0 / _CELL_DEG)
        first = max(0, math.floor((dec - radius + 90.0) / _CELL_DEG))
        last = min(n_bands - 1, math.floor((dec + radius + 90.0) / _CELL_DEG))
        covers_pole = abs(dec) + radius >= 90.0
        half_width = (
            180.0
            if covers_pole
            else math.degrees(
                math.asin(min(1.0, math.sin(math.radians(radius)) / math.cos(math.radians(dec))))
            )
        )
        chunks = []
        for band in range(first, last + 1):
            n_cells = self._cells_in_band(band)
            width = 360.0 / n_cells
            if half_width >= 180.0:
                cells = range(n_cells)
            else:
                lo = math.floor((ra - half_width) / width)
                hi = math.floor((ra + half_width) / width)
                cells = sorted({cell % n_cells for cell in range(lo, hi + 1)})
            chunks.extend(self._cell_stars(band, cell, n_cells) for cell in cells)
        return tuple(np.concatenate(column) for column in zip(*chunks, strict=True))  # type: ignore[return-value]

    @staticmethod
    def _cells_in_band(band: int) -> int:
        mid_dec = -90.0 + (band + 0.5) * _CELL_DEG
        return max(1, round(360.0 * math.cos(math.radians(mid_dec)) / _CELL_DEG))

    def _cell_stars(
        self, band: int, cell: int, n_cells: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Draw the stars of one catalogue cell: positions uniform on the sphere, power-law fluxes."""
        rng = np.random.default_rng([self.seed, _STAR_STREAM, band, cell])
        sin_lo = math.sin(math.radians(-90.0 + band * _CELL_DEG))
        sin_hi = math.sin(math.radians(-90.0 + (band + 1) * _CELL_DEG))
        width = 360.0 / n_cells
        area = width * (sin_hi - sin_lo) * math.degrees(1.0)
        count = rng.poisson(self.star_density * area)
        ra = (cell + rng.random(count)) * width
        dec = np.degrees(np.arcsin(sin_lo + rng.random(count) * (sin_hi - sin_lo)))
        faint = FAINTEST_STAR**-_COUNT_SLOPE
        bright = BRIGHTEST_STAR**-_COUNT_SLOPE
        flux = (faint - rng.random(count) * (faint - bright)) ** (-1.0 / _COUNT_SLOPE)
        slope = rng.uniform(*_SPECTRAL_SLOPE_RANGE, size=count)
        return ra, dec, flux, slope


def render_point_sources(stars: StarField, sigma: float, size: int) -> np.ndarray:
    """Render stars with a Gaussian PSF integrated over each pixel.

    Each star is drawn on a small stamp (+-4 sigma) and the stamps are summed into the image in one
    vectorised step; flux falling off the array is lost, as it would be.

    Parameters
    ----------
    stars : `StarField`
        Stars with 0-based pixel positions and total count rates.
    sigma : `float`
        Gaussian PSF sigma, pixels.
    size : `int`
        Pixels along each side of the image.

    Returns
    -------
    image : `numpy.ndarray`
        Count rate per pixel, electron/s, shape ``(size, size)``.
    """
    if len(stars) == 0:
        return np.zeros((size, size))
    half = math.ceil(4.0 * sigma) + 1
    offsets = np.arange(-half, half + 1)
    columns = np.rint(stars.x).astype(np.int64)[:, None] + offsets
    rows = np.rint(stars.y).astype(np.int64)[:, None] + offsets
    profile_x = _pixel_integrated_gaussian(columns, stars.x[:, None], sigma)
    profile_y = _pixel_integrated_gaussian(rows, stars.y[:, None], sigma)
    stamps = stars.flux[:, None, None] * profile_y[:, :, None] * profile_x[:, None, :]
    rows_3d = np.broadcast_to(rows[:, :, None], stamps.shape)
    columns_3d = np.broadcast_to(columns[:, None, :], stamps.shape)
    inside = (rows_3d >= 0) & (rows_3d < size) & (columns_3d >= 0) & (columns_3d < size)
    flat_index = rows_3d[inside] * size + columns_3d[inside]
    image = np.bincount(flat_index, weights=stamps[inside], minlength=size * size)
    return image.reshape(size, size)


def _pixel_integrated_gaussian(pixel: np.ndarray, centre: np.ndarray, sigma: float) -> np.ndarray:
    """Return the fraction of a unit 1-d Gaussian falling in each pixel (pixel centres at integers)."""
    scale = 1.0 / (math.sqrt(2.0) * sigma)
    return 0.5 * (_erf((pixel + 0.5 - centre) * scale) - _erf((pixel - 0.5 - centre) * scale))


def _erf(x: np.ndarray) -> np.ndarray:
    """Return the error function (Abramowitz & Stegun 7.1.26, absolute error < 1.5e-7)."""
    sign = np.sign(x)
    x = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * x)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return sign * (1.0 - poly * np.exp(-x * x))


def _linear_interpolation_weights(nodes: np.ndarray, size: int) -> np.ndarray:
    """Return the ``(size, len(nodes))`` matrix interpolating node values linearly onto pixels."""
    spacing = nodes[1] - nodes[0]
    pixels = np.arange(size, dtype=float)[:, None]
    return np.clip(1.0 - np.abs(pixels - nodes[None, :]) / spacing, 0.0, None)
