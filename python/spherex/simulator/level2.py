"""Simulated SPHEREx Level-2 spectral images, in IRSA's layout and with IRSA's file names.

Each simulated exposure becomes a Level-2 observation: the raw simulation (`make_array_images`) less
its dark, calibrated to MJy/sr, with the zodiacal light model, a Gaussian PSF cube and a wavelength
table that follows the array's linear variable filter.  ``spherex-simulate --format level2`` writes
them, so that ``butler ingest-spherex`` and the tests run without network access.
"""

from __future__ import annotations

__all__ = [
    "LEVEL2_PIPELINE_VERSION",
    "LEVEL2_PSF_OVERSAMPLING",
    "LEVEL2_VERSION",
    "LVF_CURVATURE",
    "lvf_wavelength",
    "make_level2_image",
    "simulate_level2",
    "simulated_obsid",
]

import dataclasses
import os
from pathlib import Path

import numpy as np
from astropy import units as u
from astropy.nddata import VarianceUncertainty
from lsst.daf.butler.progress import Progress

from ..core import Level2PSF, SpectralLookup, SPHERExLevel2Image
from ..instrument.detectors import ARRAY_SIZE, DETECTORS, get_detector
from ..instrument.level2_files import level2_filename
from .detector_model import detector_model
from .pointing import Pointing, exposure_pointing, pixel_scale_deg, planning_period
from .psf_zones import zone_psf_cube
from .simulate import _prepare_output_directory, make_array_images
from .sky_model import SkyModel, count_rate_calibration, psf_sigma_pixels

LEVEL2_VERSION = 20
"""Pipeline version written into simulated file names (``l2b-v20``)."""

LEVEL2_PSF_OVERSAMPLING = 10
"""PSF pixels per image pixel, as in IRSA's files."""

LEVEL2_PIPELINE_VERSION = "6.4+psffix1"
"""PRIMARY ``VERSION`` of simulated files: that of the l2b-v20 cutout IRSA's PSF tutorial prints (a re-issued
file whose PSF zone labels are right, as the simulator's are)."""

LVF_CURVATURE = 0.03
"""Fraction of a band's (log) wavelength range by which the middle iso-wavelength contour bows between the
centre and the edges of an array (made up: IRSA gives the wavelength as a 2-d table, WCS-WAVE, not as a
function of the row, but no curvature we could take)."""

_SMALL_SLEWS = 4


def simulated_obsid(exposure: int, seed: int = 0) -> str:
    """Return the observation id of a simulated exposure.

    Parameters
    ----------
    exposure : `int`
        Simulated exposure number (0-39999).
    seed : `int`, optional
        Survey seed (sets the time, hence the planning period).

    Returns
    -------
    obs_id : `str`
        ``<yyyy>W<ww>_1A_<large slew>_<small slew>``: four small slews per large slew, as SPHEREx does.
    """
    group_id, _ = planning_period(exposure_pointing(exposure, seed).start)
    large, small = divmod(exposure, _SMALL_SLEWS)
    if large > 9999:
        raise ValueError(f"Simulated Level-2 exposures are numbered 0-39999, not {exposure}")
    return f"{group_id // 100}W{group_id % 100:02d}_1A_{large:04d}_{small + 1}"


def make_level2_image(
    exposure: int,
    detector: int,
    *,
    pointing: Pointing | None = None,
    size: int = ARRAY_SIZE,
    seed: int = 0,
    psf_zones: int = 11,
    psf_size: int = 101,
    wave_grid: int = 11,
) -> SPHERExLevel2Image:
    """Simulate one Level-2 spectral image in memory.

    Parameters
    ----------
    exposure : `int`
        Simulated exposure number.
    detector : `int`
        Detector array, 1-6.
    pointing : `~spherex.simulator.Pointing`, optional
        Where the exposure points (e.g. a `~spherex.simulator.deep_field_pointing`); the survey's
        `~spherex.simulator.exposure_pointing` by default.
    size : `int`, optional
        Pixels per side (2040 as the real arrays).
    seed : `int`, optional
        Survey seed.
    psf_zones : `int`, optional
        PSF zones per side (11 as QR2).
    psf_size : `int`, optional
        Pixels per side of each oversampled PSF (101 as IRSA's).
    wave_grid : `int`, optional
        Control points per side of the wavelength table (7 or 9 in the QR1 files IRSA's tutorials print,
        11 in QR2).

    Returns
    -------
    image : `~spherex.core.SPHERExLevel2Image`
        MJy/sr image with variance, flags, zodi, PSF cube, wavelength table, WCS and IRSA keywords.
    """
    info = get_detector(detector)
    pointing = exposure_pointing(exposure, seed) if pointing is None else pointing
    raw, dark = make_array_images(exposure, detector, size=size, seed=seed, pointing=pointing)
    response = detector_model(detector, size, seed).response
    calibration = count_rate_calibration(detector)
    zodi = (response * SkyModel(seed, size).background(raw.wcs, detector) * calibration).astype(np.float32)
    data = ((np.asarray(raw.data) - np.asarray(dark.data)) * calibration).astype(np.float32)
    variance = (np.asarray(raw.uncertainty.array) + np.asarray(dark.uncertainty.array)) * calibration**2

    nodes = np.round(np.linspace(1, size, wave_grid))
    gx, gy = np.meshgrid(nodes, nodes)
    wavelength = lvf_wavelength(detector, (gx - 1) / (size - 1), (gy - 1) / (size - 1))
    lookup = SpectralLookup(nodes, nodes, np.stack([wavelength, wavelength / info.resolving_power], axis=-1))

    sigma = psf_sigma_pixels(detector, pointing.jitter) * LEVEL2_PSF_OVERSAMPLING
    grid = (np.arange(psf_size) - (psf_size - 1) / 2) ** 2
    kernel = np.exp(-(grid[:, None] + grid[None, :]) / (2 * sigma**2))
    # Zones as in IRSA's PSF headers: XCTR of zone i is (i + 0.5) * 2040 / 11 + 0.5 (93.227, 278.682, ...),
    # the first zone one pixel wider than the others (XWID 186.45, then 185.45).  Planes x-fast.
    step = size / psf_zones
    centres = (np.arange(psf_zones) + 0.5) * step + 0.5
    widths = np.full(psf_zones, step)
    widths[0] += 1.0
    cx, cy = np.meshgrid(centres, centres)
    wx, wy = np.meshgrid(widths, widths)
    cube = np.repeat((kernel / kernel.sum())[None].astype(np.float32), psf_zones**2, axis=0)
    psf = Level2PSF(
        cube,
        cx.ravel(),
        cy.ravel(),
        oversampling=LEVEL2_PSF_OVERSAMPLING,
        x_widths=wx.ravel(),
        y_widths=wy.ravel(),
    )

    # Each zone its own PSF, so that photometry with the wrong zone shows.
    zones = zone_psf_cube(sigma / LEVEL2_PSF_OVERSAMPLING, psf.x_centers, psf.y_centers, size, psf_size)
    psf = dataclasses.replace(psf, cube=zones)

    begin, end = pointing.start, pointing.end
    pixel_arcsec = pixel_scale_deg(size) * 3600.0
    meta = [
        ("VERSION", LEVEL2_PIPELINE_VERSION, "Pipeline version"),
        ("TELESCOP", "SPHEREx", "Telescope"),
        ("OBSID", simulated_obsid(exposure, seed), "Observation id"),
        ("DETECTOR", detector, "Detector array (1-6)"),
        ("TIMESYS", "UTC", "Time scale"),
        ("MJD-BEG", float(begin.mjd), "[d] Start of the exposure"),
        ("MJD-AVG", float((begin.mjd + end.mjd) / 2), "[d] Middle of the exposure"),
        ("MJD-END", float(end.mjd), "[d] End of the exposure"),
        ("DATE-BEG", begin.isot, "Start of the exposure"),
        ("XPOSURE", pointing.exptime, "[s] Integration time"),
        # In arcsec of this array's pixels (98 arcsec on a 128-pixel array), whose sampling the PSF keeps.
        ("PSF_FWHM", float(2.3548 * sigma / LEVEL2_PSF_OVERSAMPLING * pixel_arcsec), "[arcsec] PSF FWHM"),
        ("SIMSEED", seed, "Simulator seed: this file is simulated"),
    ]
    return SPHERExLevel2Image(
        data,
        unit=u.MJy / u.sr,
        uncertainty=VarianceUncertainty(variance.astype(np.float32)),
        flags=raw.flags,
        flag_defs=raw.flag_defs,
        wcs=raw.wcs,
        meta={key: (value, comment) for key, value, comment in meta},
        zodi=zodi,
        psf_model=psf,
        spectral_lookup=lookup,
    )


def lvf_wavelength(detector: int, fx: np.ndarray, fy: np.ndarray) -> np.ndarray:
    """Return the central wavelength of an array's linear variable filter across the array.

    IRSA's data-product page: each array sits behind linear variable filters "with a band center that
    varies along one axis of the array", of one resolving power per band (R = 39-41 in bands 1-3, 35, 112,
    128).  A constant R = lambda / delta lambda along that axis (y) makes the wavelength log-linear in y:
    it falls from the band's longest wavelength on the bottom row to its shortest on the top row, by the
    same factor each pixel.  Iso-wavelength contours are not rows but arcs (why IRSA's WCS-WAVE table is
    2-d), bowing by up to `LVF_CURVATURE` of the band
    between the middle and the sides of the array; the bow fades toward the first and last rows, so
    that every column, the middle one too, sees the whole band.

    Parameters
    ----------
    detector : `int`
        Detector id, 1-6.
    fx, fy : `numpy.ndarray`
        Positions as fractions of the array, 0 (first column or row) to 1 (last).

    Returns
    -------
    wavelength : `numpy.ndarray`
        Micron, from ``lmin`` to ``lmax`` of the band.
    """
    info = get_detector(detector)
    cx = np.asarray(fx, dtype=float) - 0.5
    fy = np.asarray(fy, dtype=float)
    along = fy + LVF_CURVATURE * (1.0 - 4.0 * cx**2) * 4.0 * fy * (1.0 - fy)
    return info.lmax * (info.lmin / info.lmax) ** along


def simulate_level2(
    outdir: str | os.PathLike,
    *,
    exposures: int = 2,
    start_exposure: int = 0,
    size: int = ARRAY_SIZE,
    seed: int = 0,
    detectors: list[int] | None = None,
    version: int = LEVEL2_VERSION,
    processing_date: str = "2025-299",
    **shape: int,
) -> list[Path]:
    """Write simulated Level-2 spectral images, named as IRSA names them.

    Parameters
    ----------
    outdir : `str` or `os.PathLike`
        Directory to write to; created if missing.
    exposures, start_exposure : `int`, optional
        Number and first simulated exposure.
    size : `int`, optional
        Pixels per side.
    seed : `int`, optional
        Survey seed.
    detectors : `list` [`int`], optional
        Arrays to simulate; all six by default.
    version : `int`, optional
        Pipeline version in the file names.
    processing_date : `str`, optional
        ``<yyyy>-<doy>`` in the file names.
    **shape : `int`
        ``psf_zones``, ``psf_size``, ``wave_grid`` of `make_level2_image` (small values for tests).

    Returns
    -------
    paths : `list` [`pathlib.Path`]
        Files written, by exposure then detector.
    """
    outdir = _prepare_output_directory(outdir)
    detector_ids = [info.id for info in DETECTORS] if detectors is None else sorted(set(detectors))
    jobs = [(e, d) for e in range(start_exposure, start_exposure + exposures) for d in detector_ids]
    paths = []
    for exposure, detector in Progress(__name__).wrap(jobs, desc="Simulating Level-2 images"):
        image = make_level2_image(exposure, detector, size=size, seed=seed, **shape)
        path = outdir / level2_filename(image.meta["OBSID"][0], detector, version, processing_date)
        image.write(path, overwrite=True)
        paths.append(path)
    return paths
