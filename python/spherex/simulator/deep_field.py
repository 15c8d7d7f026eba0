"""A simulated deep field: sources of known spectra seen through every band of every array.

``spherex-simulate --format level2 --deep-field RA DEC`` places a small patch of isolated point sources
with varied spectra (`~spherex.simulator.spectra`) at RA, DEC, points the arrays over it with
`~spherex.simulator.deep_field_pointing` so that each source crosses every wavelength of all six
arrays, draws the sources into each Level-2 image (`~spherex.simulator.source_rendering`), and writes
beside the files the truth (one row per source per image it falls on) and the target list that
``butler ingest-targets`` reads.
"""

from __future__ import annotations

__all__ = [
    "DEEP_FIELD_ISOLATION",
    "DEEP_FIELD_SPACING",
    "deep_field_sources",
    "simulate_deep_field",
    "targets_table",
]

import math
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from astropy.table import Table
from astropy.wcs import WCS
from lsst.daf.butler.progress import Progress

from ..instrument.detectors import ARRAY_SIZE, DETECTORS, get_detector
from ..instrument.level2_files import exposure_id_from_obsid, level2_filename
from .crowded_field import neighbour_sources
from .level2 import LEVEL2_VERSION, make_level2_image, simulated_obsid
from .pointing import deep_field_pointing, pixel_scale_deg
from .simulate import SimulationOutputError, _prepare_output_directory
from .sky_model import SkyModel, count_rate_calibration
from .source_rendering import render_sources, truth_table
from .spectra import SimulatedSource, make_source_spectra

DEEP_FIELD_SPACING = 16
"""Pixels between neighbouring deep-field sources (on the simulated array)."""

DEEP_FIELD_ISOLATION = 8.0
"""No catalogued star of the simulated sky lies within this many pixels of a deep-field source."""

_SOURCE_NOISE_STREAM = 8
"""Random-stream id of the photon noise of the deep-field sources."""


def deep_field_sources(
    ra: float,
    dec: float,
    count: int,
    size: int,
    seed: int,
    neighbours: int = 0,
    neighbour_flux_ratio: tuple[float, float] = (0.3, 1.0),
) -> list[SimulatedSource]:
    """Return the sources of a deep field: isolated, on a square grid about its centre.

    Parameters
    ----------
    ra, dec : `float`
        ICRS centre of the patch, degrees.
    count : `int`
        Number of sources (>= 1).
    size : `int`
        Pixels per side of the simulated arrays: sets the grid spacing (`DEEP_FIELD_SPACING` pixels)
        and the flux scale (fluxes grow with the pixel area of arrays smaller than 2040 pixels, so that
        signal-to-noise ratios are those of the real array).
    seed : `int`
        Survey seed: the spectra, and the catalogued stars the sources keep clear of.
    neighbours : `int`, optional
        Extra sources 0.5-3 pixels from the grid sources (`~spherex.simulator.crowded_field`).
    neighbour_flux_ratio : `tuple` [`float`, `float`], optional
        Range of a neighbour's flux over its grid source's.

    Returns
    -------
    sources : `list` [`SimulatedSource`]
        Named ``df01-continuum``, ``df02-ice``, ``df03-pah``, ... nearest the centre first, then the
        neighbours ``nb01-...``.

    Raises
    ------
    ValueError
        Raised if ``count`` isolated grid positions do not fit within a third of the array.
    """
    if count < 1:
        raise ValueError(f"A deep field needs at least one source, not {count}")
    centre = (size - 1) / 2.0
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [ra, dec]
    wcs.wcs.crpix = [centre + 1.0, centre + 1.0]
    wcs.wcs.cdelt = [-pixel_scale_deg(size), pixel_scale_deg(size)]
    wcs.pixel_shape = (size, size)
    stars = SkyModel(seed, size).stars(wcs, detector=1, margin=DEEP_FIELD_ISOLATION)

    reach = int(size / 3 // DEEP_FIELD_SPACING)
    grid = [(i, j) for i in range(-reach, reach + 1) for j in range(-reach, reach + 1)]
    grid.sort(key=lambda ij: (ij[0] ** 2 + ij[1] ** 2, ij[1], ij[0]))
    positions = []
    for i, j in grid:
        x, y = centre + i * DEEP_FIELD_SPACING, centre + j * DEEP_FIELD_SPACING
        if np.all(np.hypot(stars.x - x, stars.y - y) > DEEP_FIELD_ISOLATION):
            positions.append((x, y))
        if len(positions) == count:
            break
    else:
        raise ValueError(
            f"Only {len(positions)} isolated positions for deep-field sources fit on {size}-pixel arrays; "
            f"ask for fewer sources or a larger --size"
        )
    spectra = make_source_spectra(count, seed, flux_scale=(ARRAY_SIZE / size) ** 2)
    sources = []
    for index, ((x, y), spectrum) in enumerate(zip(positions, spectra, strict=True)):
        source_ra, source_dec = (float(v) for v in wcs.pixel_to_world_values(x, y))
        sources.append(SimulatedSource(f"df{index + 1:02d}-{spectrum.kind}", source_ra, source_dec, spectrum))
    return sources + neighbour_sources(sources, positions, wcs, neighbours, seed, neighbour_flux_ratio)


def targets_table(sources: Sequence[SimulatedSource]) -> Table:
    """Return the target list of sources, as ``butler ingest-targets`` reads it.

    Parameters
    ----------
    sources : `~collections.abc.Sequence` [`SimulatedSource`]
        The sources.

    Returns
    -------
    table : `astropy.table.Table`
        Columns ``name``, ``ra``, ``dec`` (ICRS degrees), ``kind``.
    """
    return Table(
        {
            "name": [source.name for source in sources],
            "ra": [source.ra for source in sources],
            "dec": [source.dec for source in sources],
            "kind": [source.kind for source in sources],
        }
    )


def _check_writable_file(path: Path, option: str) -> Path:
    """Fail before simulating if an output table cannot be written where asked."""
    path = Path(path).expanduser().absolute()
    if path.is_dir():
        raise SimulationOutputError(f"{option} {path} is a directory; give a file name")
    if not path.parent.is_dir():
        raise SimulationOutputError(f"{option} {path}: directory {path.parent} does not exist")
    if not os.access(path.parent, os.W_OK):
        raise SimulationOutputError(f"{option} {path}: directory {path.parent} is not writable")
    return path


def _write_atomically(table: Table, path: Path, table_format: str) -> None:
    """Write a table through a temporary file in the same directory, so no half-written file is left."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        table.write(temporary, format=table_format, overwrite=True)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def simulate_deep_field(
    outdir: str | os.PathLike,
    ra: float,
    dec: float,
    *,
    steps: int = 16,
    sources: int = 8,
    start_exposure: int = 0,
    size: int = ARRAY_SIZE,
    seed: int = 0,
    detectors: list[int] | None = None,
    truth: str | os.PathLike | None = None,
    targets: str | os.PathLike | None = None,
    neighbours: int = 0,
    neighbour_flux_ratio: tuple[float, float] = (0.3, 1.0),
    targets_with_neighbours: bool = True,
    version: int = LEVEL2_VERSION,
    processing_date: str = "2025-299",
    **shape: Any,
) -> list[Path]:
    """Write the Level-2 images of a deep field, with its truth and target list.

    Parameters
    ----------
    outdir : `str` or `os.PathLike`
        Directory for the Level-2 files; created if missing.
    ra, dec : `float`
        ICRS centre of the field, degrees.
    steps : `int`, optional
        Pointings along the arrays' wavelength axis per array: the field takes ``3 * steps``
        exposures (`~spherex.simulator.deep_field_pointing`); 16 samples each band about once per
        resolution element.
    sources : `int`, optional
        Number of sources of known spectra (`deep_field_sources`).
    start_exposure : `int`, optional
        First simulated exposure number.
    size : `int`, optional
        Pixels per side of the arrays.
    seed : `int`, optional
        Survey seed.
    detectors : `list` [`int`], optional
        Arrays to write in every exposure; all six by default (each exposure puts the field on two).
    truth : `str` or `os.PathLike`, optional
        ECSV file for the truth table (`~spherex.simulator.source_rendering.TRUTH_COLUMNS`).
    targets : `str` or `os.PathLike`, optional
        CSV file for the target list (`targets_table`).
    neighbours, neighbour_flux_ratio : `int`, `tuple` [`float`, `float`], optional
        Extra sources 0.5-3 pixels from the grid sources, and their flux ratios (`deep_field_sources`);
        the truth covers them all.
    targets_with_neighbours : `bool`, optional
        If `False`, ``targets`` lists the grid sources only (a catalogue that misses the neighbours).
    version, processing_date
        Pipeline version and ``<yyyy>-<doy>`` in the file names.
    **shape
        ``psf_zones``, ``psf_size``, ``wave_grid`` of `~spherex.simulator.level2.make_level2_image`.

    Returns
    -------
    paths : `list` [`pathlib.Path`]
        Level-2 files written, by exposure then detector.

    Raises
    ------
    ValueError
        Raised if an argument is out of range.
    SimulationOutputError
        Raised, before anything is simulated, if an output cannot be written.
    """
    if steps < 1:
        raise ValueError(f"--deep-field-steps must be at least 1, not {steps}")
    if not (math.isfinite(ra) and math.isfinite(dec) and -90.0 <= dec <= 90.0):
        raise ValueError(f"--deep-field RA DEC must be finite with -90 <= DEC <= 90, not {ra} {dec}")
    if not abs(dec) < 89.0:
        raise ValueError(f"A deep field must lie more than 1 degree from a celestial pole, not at Dec {dec}")
    # The last exposure must have an OBSID before any file is written.
    simulated_obsid(start_exposure + 3 * steps - 1, seed)
    truth_path = None if truth is None else _check_writable_file(Path(truth), "--truth")
    targets_path = None if targets is None else _check_writable_file(Path(targets), "--targets")
    if truth_path is not None and truth_path == targets_path:
        raise SimulationOutputError(f"--truth and --targets are the same file {truth_path}")
    field = deep_field_sources(ra % 360.0, dec, sources, size, seed, neighbours, neighbour_flux_ratio)
    outdir = _prepare_output_directory(outdir)

    detector_ids = [info.id for info in DETECTORS] if detectors is None else sorted(set(detectors))
    for detector in detector_ids:
        get_detector(detector)

    jobs = [(index, detector) for index in range(3 * steps) for detector in detector_ids]
    paths, rows = [], []
    for index, detector in Progress(__name__).wrap(jobs, desc="Simulating the deep field"):
        exposure = start_exposure + index
        # The field centre steps from the first row to the last: the central source sees both ends of
        # every band, the others come within one step of them (a wider sweep would only move the gap).
        pointing = deep_field_pointing(exposure, index, steps, ra, dec, size, seed, half_height=0.0)
        image = make_level2_image(exposure, detector, size=size, seed=seed, pointing=pointing, **shape)
        obs_id = image.meta["OBSID"][0]
        rows += render_sources(
            image,
            field,
            exposure=exposure_id_from_obsid(obs_id),
            detector=detector,
            electrons_per_unit=pointing.exptime / count_rate_calibration(detector),
            rng=np.random.default_rng([seed, _SOURCE_NOISE_STREAM, exposure, detector]),
        )
        path = outdir / level2_filename(obs_id, detector, version, processing_date)
        image.write(path, overwrite=True)
        paths.append(path)
    if truth_path is not None:
        _write_atomically(truth_table(rows), truth_path, "ascii.ecsv")
    if targets_path is not None:
        listed = field if targets_with_neighbours else field[:sources]
        _write_atomically(targets_table(listed), targets_path, "ascii.csv")
    return paths
