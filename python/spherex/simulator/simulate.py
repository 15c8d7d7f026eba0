"""Write simulated SPHEREx exposures and dark frames as SPHEREx image files.

For each exposure and array the simulator writes two files:

- ``sim_exposure_{exposure:06d}_array_{detector}.fits``: the raw image, sky + stars + dark current +
  noise, with the variance of that noise and the pixel flags;
- ``sim_exposure_{exposure:06d}_array_{detector}_dark_current.fits``: the dark frame valid from that
  exposure on, the mean of `DARK_FRAMES_COMBINED` dark exposures of the same array, so that
  raw - dark leaves sky + stars.

Every random draw comes from a stream named by the seed, a purpose and the exposure and detector ids,
so the output depends on nothing else: not on the order the files are made in, nor on the number of
worker processes.
"""

from __future__ import annotations

__all__ = [
    "DARK_FILENAME",
    "DARK_FRAMES_COMBINED",
    "MIN_SIZE",
    "ORIGIN",
    "RAW_FILENAME",
    "SOURCE_FLAG_THRESHOLD",
    "SimulationOutputError",
    "dark_filename",
    "make_array_images",
    "raw_filename",
    "simulate",
    "simulate_array",
]

import logging
import multiprocessing
import os
import tempfile
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from astropy import units as u
from astropy.io import fits
from astropy.nddata import VarianceUncertainty
from lsst.daf.butler.progress import Progress

from ..core import LEVEL2_FLAG_BITS, SPHERExImage
from ..instrument.detectors import ARRAY_SIZE, DETECTORS, get_detector
from .detector_model import FULL_WELL_E, READ_NOISE_E, DetectorModel, detector_model
from .pointing import Pointing, array_wcs, exposure_pointing, planning_period
from .sky_model import SkyModel, psf_sigma_pixels, render_point_sources

_LOG = logging.getLogger(__name__)

RAW_FILENAME = "sim_exposure_{exposure:06d}_array_{detector}.fits"
"""Name of a simulated raw image file (`str.format` template)."""

DARK_FILENAME = "sim_exposure_{exposure:06d}_array_{detector}_dark_current.fits"
"""Name of a simulated dark frame file (`str.format` template)."""

DARK_FRAMES_COMBINED = 16
"""Number of dark exposures averaged into one dark frame."""

SOURCE_FLAG_THRESHOLD = 0.25
"""``SOURCE`` marks pixels receiving more star light than this fraction of their noise sigma."""

MIN_SIZE = 16
"""Smallest simulated array, pixels per side."""

ORIGIN = "spherex_butler_poc simulator"
"""Value of the ``ORIGIN`` header keyword."""

_MAX_EXPOSURE = 10**9
"""Exclusive upper bound of exposure ids (`spherex.instrument.SimulatorInstrument.exposure_max`)."""

_RAW_NOISE_STREAM = 4
_DARK_NOISE_STREAM = 5
_UNIT = u.electron / u.s


class SimulationOutputError(OSError):
    """The simulator cannot create or write to its output directory."""


def raw_filename(exposure: int, detector: int) -> str:
    """Return the file name of a simulated raw image.

    Parameters
    ----------
    exposure : `int`
        Exposure id.
    detector : `int`
        Detector id, 1-6.

    Returns
    -------
    name : `str`
        E.g. ``sim_exposure_000003_array_2.fits``.
    """
    return RAW_FILENAME.format(exposure=exposure, detector=detector)


def dark_filename(exposure: int, detector: int) -> str:
    """Return the file name of a simulated dark frame.

    Parameters
    ----------
    exposure : `int`
        Exposure id the dark frame is valid from.
    detector : `int`
        Detector id, 1-6.

    Returns
    -------
    name : `str`
        E.g. ``sim_exposure_000003_array_2_dark_current.fits``.
    """
    return DARK_FILENAME.format(exposure=exposure, detector=detector)


def make_array_images(
    exposure: int, detector: int, *, size: int = ARRAY_SIZE, seed: int = 0, pointing: Pointing | None = None
) -> tuple[SPHERExImage, SPHERExImage]:
    """Simulate one array in one exposure, in memory.

    Parameters
    ----------
    exposure : `int`
        Exposure id (>= 0).
    detector : `int`
        Detector id, 1-6.
    size : `int`, optional
        Pixels along each side of the array; the array always covers ~3.5 x 3.5 deg of sky.
    seed : `int`, optional
        Survey seed (>= 0).  The same seed gives bit-identical images.
    pointing : `Pointing`, optional
        Where the exposure points (e.g. a `deep_field_pointing`); the survey's `exposure_pointing`
        by default.

    Returns
    -------
    raw : `spherex.core.SPHERExImage`
        Sky + stars + dark current + noise, electron/s, with its variance, flags and WCS.
    dark : `spherex.core.SPHERExImage`
        The dark frame valid from this exposure on: dark current + its own (smaller) noise.

    Raises
    ------
    LookupError
        Raised if ``detector`` is not 1-6.
    """
    pointing = exposure_pointing(exposure, seed) if pointing is None else pointing
    wcs = array_wcs(pointing, detector, size)
    hardware = detector_model(detector, size, seed)
    sky = SkyModel(seed, size)

    sigma = psf_sigma_pixels(detector, pointing.jitter)
    stars = sky.stars(wcs, detector, margin=4.0 * sigma + 1.0)
    star_light = hardware.response * render_point_sources(stars, sigma, size)
    rate = hardware.response * sky.background(wcs, detector) + star_light + hardware.dark_current

    rng = np.random.default_rng([seed, _RAW_NOISE_STREAM, exposure, detector])
    data, variance = _expose(rate, pointing.exptime, hardware, frames=1, rng=rng)
    flags = hardware.flags.copy()
    saturated = rate * pointing.exptime >= FULL_WELL_E
    data[saturated] = FULL_WELL_E / pointing.exptime
    flags[saturated] |= 1 << LEVEL2_FLAG_BITS["OVERFLOW"]
    flags[star_light > SOURCE_FLAG_THRESHOLD * np.sqrt(variance)] |= 1 << LEVEL2_FLAG_BITS["SOURCE"]
    raw = SPHERExImage(
        data.astype(np.float32),
        unit=_UNIT,
        uncertainty=VarianceUncertainty(variance.astype(np.float32)),
        flags=flags,
        flag_defs=dict(LEVEL2_FLAG_BITS),
        wcs=wcs,
        meta=_header(pointing, detector, seed, "science", frames=1, psf_sigma=sigma),
    )

    rng = np.random.default_rng([seed, _DARK_NOISE_STREAM, exposure, detector])
    dark_data, dark_variance = _expose(
        hardware.dark_current, pointing.exptime, hardware, frames=DARK_FRAMES_COMBINED, rng=rng
    )
    dark = SPHERExImage(
        dark_data.astype(np.float32),
        unit=_UNIT,
        uncertainty=VarianceUncertainty(dark_variance.astype(np.float32)),
        flags=hardware.flags.copy(),
        flag_defs=dict(LEVEL2_FLAG_BITS),
        meta=_header(pointing, detector, seed, "dark", frames=DARK_FRAMES_COMBINED, psf_sigma=None),
    )
    return raw, dark


def _expose(
    rate: np.ndarray, exptime: float, hardware: DetectorModel, frames: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Return the measured count rate of the mean of ``frames`` exposures, and its variance.

    Shot noise of the collected charge and read noise of each frame; the variance is that of the
    noise model (not an estimate from the noisy pixels), as a calibrated pipeline would report it.
    """
    electrons = rng.poisson(rate * (exptime * frames)).astype(np.float64)
    electrons += rng.normal(0.0, hardware.read_noise * np.sqrt(frames), size=rate.shape)
    data = electrons / (exptime * frames)
    variance = rate / (exptime * frames) + hardware.read_noise**2 / (exptime**2 * frames)
    return data, variance


def _header(
    pointing: Pointing, detector: int, seed: int, image_type: str, frames: int, psf_sigma: float | None
) -> fits.Header:
    """Return the primary-header metadata of a simulated file."""
    info = get_detector(detector)
    group_id, group_name = planning_period(pointing.start)
    end = pointing.end
    cards: list[tuple[str, object, str]] = [
        ("TELESCOP", "SPHEREx", "Telescope"),
        ("INSTRUME", "simulator", "Instrument (simulated SPHEREx)"),
        ("ORIGIN", ORIGIN, "Software that wrote this file"),
        ("IMAGETYP", image_type, "Type of image: science or dark"),
        ("OBSID", f"sim_{pointing.exposure:06d}", "Observation id"),
        ("EXPID", pointing.exposure, "Exposure id"),
        ("DETECTOR", detector, "Detector array id (1-6), also the band number"),
        ("DETNAME", info.full_name, "Detector array name"),
        ("WAVEMIN", info.lmin, "[um] Shortest wavelength seen by the array"),
        ("WAVEMAX", info.lmax, "[um] Longest wavelength seen by the array"),
        ("TIMESYS", "UTC", "Time scale of DATE-OBS and DATE-END"),
        ("DATE-OBS", pointing.start.isot, "Start of the exposure (UTC)"),
        ("MJD-OBS", float(pointing.start.mjd), "[d] Start of the exposure (MJD, UTC)"),
        ("DATE-END", end.isot, "End of the exposure (UTC)"),
        ("MJD-END", float(end.mjd), "[d] End of the exposure (MJD, UTC)"),
        ("EXPTIME", pointing.exptime, "[s] Integration time of one exposure"),
        ("NCOMBINE", frames, "Number of exposures averaged into this image"),
        ("RA_BORE", pointing.ra, "[deg] ICRS right ascension of the boresight"),
        ("DEC_BORE", pointing.dec, "[deg] ICRS declination of the boresight"),
        ("ROLL", pointing.roll, "[deg] Position angle of array +y, east of north"),
        ("JITTER", pointing.jitter, "[arcsec] RMS pointing jitter per axis"),
        ("GROUPID", group_id, "Planning period id (ISO year * 100 + week)"),
        ("GROUPNAM", group_name, "Planning period name"),
        ("RDNOISE", READ_NOISE_E, "[electron] Read noise of one exposure"),
        ("SIMSEED", seed, "Simulator seed"),
    ]
    if psf_sigma is not None:
        cards.append(("PSFSIGMA", psf_sigma, "[pixel] Gaussian PSF sigma, jitter included"))
    return fits.Header(cards)


def simulate_array(
    outdir: str | os.PathLike, exposure: int, detector: int, *, size: int = ARRAY_SIZE, seed: int = 0
) -> tuple[Path, Path]:
    """Simulate one array in one exposure and write the raw image and the dark frame.

    Parameters
    ----------
    outdir : `str` or `os.PathLike`
        Existing directory to write to; files already there are overwritten.
    exposure : `int`
        Exposure id (>= 0).
    detector : `int`
        Detector id, 1-6.
    size : `int`, optional
        Pixels along each side of the array.
    seed : `int`, optional
        Survey seed (>= 0).

    Returns
    -------
    raw_path, dark_path : `pathlib.Path`
        The files written.

    Raises
    ------
    OSError
        Raised if a file cannot be written.
    """
    raw, dark = make_array_images(exposure, detector, size=size, seed=seed)
    raw_path = Path(outdir, raw_filename(exposure, detector))
    dark_path = Path(outdir, dark_filename(exposure, detector))
    raw.write(raw_path, overwrite=True)
    dark.write(dark_path, overwrite=True)
    _LOG.debug("Wrote %s and %s.", raw_path, dark_path)
    return raw_path, dark_path


def simulate(
    outdir: str | os.PathLike,
    *,
    exposures: int = 2,
    start_exposure: int = 0,
    size: int = ARRAY_SIZE,
    seed: int = 0,
    workers: int = 1,
    detectors: Iterable[int] | None = None,
) -> list[Path]:
    """Simulate exposures of the SPHEREx arrays and write raw images and dark frames.

    Parameters
    ----------
    outdir : `str` or `os.PathLike`
        Directory to write to; created if missing.  Files already there are overwritten.
    exposures : `int`, optional
        Number of exposures (>= 1).
    start_exposure : `int`, optional
        Id of the first exposure (>= 0); ids run consecutively from it.
    size : `int`, optional
        Pixels along each side of the simulated arrays (>= `MIN_SIZE`); 2040 is the real array.
    seed : `int`, optional
        Survey seed (>= 0).  The same seed gives bit-identical pixels whatever ``workers`` is, and the
        same sky (stars, pointings) in separate runs, e.g. with different ``start_exposure``.
    workers : `int`, optional
        Number of worker processes (>= 1); 1 works in this process.
    detectors : `~collections.abc.Iterable` [`int`], optional
        Detector ids to simulate (each 1-6); all six by default.

    Returns
    -------
    paths : `list` [`pathlib.Path`]
        The files written, raw image then dark frame, by exposure then detector.

    Raises
    ------
    ValueError
        Raised if an argument is out of range.
    LookupError
        Raised if a detector id is not 1-6.
    SimulationOutputError
        Raised if ``outdir`` cannot be created or written to.
    OSError
        Raised if a file cannot be written.
    """
    _check_at_least("exposures", exposures, 1)
    _check_at_least("start_exposure", start_exposure, 0)
    _check_at_least("size", size, MIN_SIZE)
    _check_at_least("seed", seed, 0)
    _check_at_least("workers", workers, 1)
    if start_exposure + exposures > _MAX_EXPOSURE:
        raise ValueError(
            f"Exposure ids must be below {_MAX_EXPOSURE}; got up to {start_exposure + exposures - 1}."
        )
    if detectors is None:
        detector_ids = [info.id for info in DETECTORS]
    else:
        detector_ids = sorted({get_detector(int(d)).id for d in detectors})
        if not detector_ids:
            raise ValueError("No detectors to simulate: give at least one detector id (1-6).")
    outdir = _prepare_output_directory(outdir)

    jobs = [(e, d) for e in range(start_exposure, start_exposure + exposures) for d in detector_ids]
    _LOG.info(
        "Simulating %d exposure(s) x %d array(s) of %d x %d pixels (seed %d) into %s.",
        exposures,
        len(detector_ids),
        size,
        size,
        seed,
        outdir,
    )
    progress = Progress(__name__)
    results: list[tuple[Path, Path]] = []
    if workers == 1 or len(jobs) == 1:
        for exposure, detector in progress.wrap(jobs, desc="Simulating arrays"):
            results.append(simulate_array(outdir, exposure, detector, size=size, seed=seed))
    else:
        # "spawn" starts clean workers: forking a process that may hold threads (a test runner, a
        # notebook) can deadlock.  Each job draws from its own random streams, so results do not depend
        # on which worker runs it.
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=context) as pool:
            futures = [
                pool.submit(simulate_array, outdir, exposure, detector, size=size, seed=seed)
                for exposure, detector in jobs
            ]
            for future in progress.wrap(futures, desc="Simulating arrays"):
                results.append(future.result())
    return [path for pair in results for path in pair]


def _check_at_least(name: str, value: int, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{name} must be an integer, not {value!r}.")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}; got {value}.")


def _prepare_output_directory(outdir: str | os.PathLike) -> Path:
    """Create ``outdir`` if needed and check that files can be written in it."""
    path = Path(outdir).expanduser().absolute()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise SimulationOutputError(
            f"Cannot create output directory {path}: {err.strerror or err}. Choose a writable OUTDIR."
        ) from err
    try:
        # A real write is the only reliable test: os.access is always true for root, even on a
        # read-only file system.
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as err:
        raise SimulationOutputError(
            f"Cannot write to output directory {path}: {err.strerror or err}. Choose a writable OUTDIR."
        ) from err
    return path
