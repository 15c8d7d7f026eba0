"""Point sources of known spectra drawn into simulated Level-2 images, and the truth of what was drawn.

Every pixel of a SPHEREx array sees its own band (the linear variable filter), so a source adds to
pixel ``i`` of its PSF stamp the flux density its spectrum has, averaged over that pixel's band
(`~spherex.simulator.spectra.SourceSpectrum.band_average` at `SPHERExLevel2Image.wavelength_at` of the
pixel), times the fraction of its light the pixel receives (`~spherex.core.psf_stamp`, the PSF zone the
file itself carries), converted to MJy/sr with the pixel solid angle at the source
(`~spherex.core.microjansky_to_mjy_per_sr`).  The truth of a source on an image is its flux density at
the fractional position of its centre, the quantity forced PSF photometry estimates.
"""

from __future__ import annotations

__all__ = ["TRUTH_COLUMNS", "render_sources", "truth_table"]

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from astropy import units as u
from astropy.table import Table

from ..core import (
    LEVEL2_FLAG_BITS,
    SPHERExLevel2Image,
    microjansky_to_mjy_per_sr,
    pixel_solid_angle,
    psf_stamp,
)
from .spectra import SimulatedSource

TRUTH_COLUMNS: dict[str, tuple[Any, u.UnitBase | None, str]] = {
    "name": (str, None, "Source name"),
    "kind": (str, None, "Kind of spectrum: continuum, ice or pah"),
    "ra": (float, u.deg, "ICRS right ascension"),
    "dec": (float, u.deg, "ICRS declination"),
    "exposure": (np.int64, None, "Butler exposure id of the image (as butler ingest-spherex gives it)"),
    "detector": (np.int64, None, "Detector array, 1-6 (Butler detector id)"),
    "x": (float, u.pix, "0-based column of the source on the image"),
    "y": (float, u.pix, "0-based row of the source on the image"),
    "wavelength": (float, u.micron, "Central wavelength of the LVF at (x, y)"),
    "bandwidth": (float, u.micron, "Bandwidth of the LVF at (x, y)"),
    "flux": (float, u.uJy, "True flux density: the spectrum averaged over the band at (x, y)"),
}
"""Columns of the truth table: name -> (dtype, unit, description)."""

_SOURCE_FLAG_THRESHOLD = 0.25
"""``SOURCE`` marks pixels receiving more source light than this fraction of their noise sigma (as the
raw simulation does for its stars)."""


def _stamp_half_size(image: SPHERExLevel2Image) -> int:
    """Image pixels either side of a source that hold the whole oversampled PSF plane."""
    plane = np.shape(image.psf_model.cube)[-1]
    return math.ceil(plane / image.psf_model.oversampling / 2.0) + 1


def render_sources(
    image: SPHERExLevel2Image,
    sources: Sequence[SimulatedSource],
    *,
    exposure: int,
    detector: int,
    electrons_per_unit: float | None = None,
    rng: np.random.Generator | None = None,
) -> list[dict[str, Any]]:
    """Add point sources to a Level-2 image, in place, and return the truth of each source on it.

    Parameters
    ----------
    image : `~spherex.core.SPHERExLevel2Image`
        Image in MJy/sr with WCS, PSF cube, wavelength table, variance and flags; modified in place.
    sources : `~collections.abc.Sequence` [`SimulatedSource`]
        Sources to draw; those whose PSF misses the image are skipped.
    exposure, detector : `int`
        Butler data ID values of the image, written in the truth rows.
    electrons_per_unit : `float`, optional
        Electrons collected per MJy/sr of signal in the exposure: the source's photon noise adds
        ``signal / electrons_per_unit`` to each pixel's variance.  `None` adds no photon noise.
    rng : `numpy.random.Generator`, optional
        Draws the added noise (Gaussian, of exactly the variance added to the ``VARIANCE`` plane); `None`
        renders without noise (and leaves the variance alone), for tests of the truth.

    Returns
    -------
    truth : `list` [`dict`]
        One row (`TRUTH_COLUMNS`) per source whose centre lies on the image (``-0.5 <= x < columns -
        0.5``, the same for y).
    """
    rows_n, columns_n = np.shape(image.data)
    half_size = _stamp_half_size(image)
    signal = np.zeros((rows_n, columns_n))
    truth = []
    for source in sources:
        x, y = (float(v) for v in image.wcs.world_to_pixel_values(source.ra, source.dec))
        if not (math.isfinite(x) and math.isfinite(y)):
            continue  # behind the projection: nowhere near the image
        stamp, bbox = psf_stamp(image, x, y, half_size)
        if stamp.size == 0:
            continue
        solid_angle = float(pixel_solid_angle(image.wcs, x, y))
        rows, columns = np.mgrid[bbox]
        wavelength, bandwidth = image.wavelength_at(columns, rows)
        flux = source.spectrum.band_average(wavelength, bandwidth)
        signal[bbox] += microjansky_to_mjy_per_sr(flux, solid_angle) * stamp
        if -0.5 <= x < columns_n - 0.5 and -0.5 <= y < rows_n - 0.5:
            centre_wavelength, centre_bandwidth = (float(v) for v in image.wavelength_at(x, y))
            truth.append(
                {
                    "name": source.name,
                    "kind": source.kind,
                    "ra": source.ra,
                    "dec": source.dec,
                    "exposure": exposure,
                    "detector": detector,
                    "x": x,
                    "y": y,
                    "wavelength": centre_wavelength,
                    "bandwidth": centre_bandwidth,
                    "flux": float(source.spectrum.band_average(centre_wavelength, centre_bandwidth)),
                }
            )

    data = np.asarray(image.data)
    if rng is not None:
        variance = image.uncertainty.array
        added = np.zeros_like(signal) if electrons_per_unit is None else signal / electrons_per_unit
        noisy = signal + rng.normal(size=signal.shape) * np.sqrt(added)
        data += noisy.astype(data.dtype)
        variance += added.astype(variance.dtype)
        if image.flags is not None:
            bright = signal > _SOURCE_FLAG_THRESHOLD * np.sqrt(variance)
            image.flags[bright] |= np.int32(1 << LEVEL2_FLAG_BITS["SOURCE"])
    else:
        data += signal.astype(data.dtype)
    return truth


def truth_table(rows: Iterable[dict[str, Any]]) -> Table:
    """Return the truth rows as an astropy Table with units and descriptions.

    Parameters
    ----------
    rows : `~collections.abc.Iterable` [`dict`]
        Rows from `render_sources`.

    Returns
    -------
    table : `astropy.table.Table`
        Columns `TRUTH_COLUMNS`, sorted by name, exposure and detector.
    """
    rows = list(rows)
    table = Table()
    for name, (dtype, unit, description) in TRUTH_COLUMNS.items():
        table[name] = np.array([row[name] for row in rows], dtype=dtype)
        table[name].unit = unit
        table[name].description = description
    if len(table):
        table.sort(["name", "exposure", "detector"])
    return table
