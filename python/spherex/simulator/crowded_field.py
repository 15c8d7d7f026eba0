"""Neighbours for a simulated deep field: pairs at 0.5-3 pixels, the blends of real SPHEREx data.

With SPHEREx's 6.15 arcsec pixels a second source within a few pixels of a target is common in real
fields and is the dominant systematic of forced photometry (issue 22).  `neighbour_sources` places
``count`` extra point sources next to the deep field's own, cycling through the separations of
`NEIGHBOUR_SEPARATIONS` (pixels), at random position angles, with continuum fluxes a log-uniform fraction
(``flux_ratio``) of their primary's and spectra of their own.
"""

from __future__ import annotations

__all__ = ["NEIGHBOUR_SEPARATIONS", "neighbour_sources"]

import dataclasses
from collections.abc import Sequence

import numpy as np
from astropy.wcs import WCS

from .spectra import SimulatedSource, make_source_spectra

NEIGHBOUR_SEPARATIONS = (0.5, 1.0, 1.5, 2.0, 3.0)
"""Separations (pixels) of neighbours from their primaries, in turn (made up: the range the issue's
bias table spans)."""

_NEIGHBOUR_STREAM = 11
"""Random-stream id of the neighbours' angles, flux ratios and spectra."""


def neighbour_sources(
    primaries: Sequence[SimulatedSource],
    positions: Sequence[tuple[float, float]],
    wcs: WCS,
    count: int,
    seed: int,
    flux_ratio: tuple[float, float] = (0.3, 1.0),
) -> list[SimulatedSource]:
    """Return neighbours of a deep field's sources.

    Parameters
    ----------
    primaries : `~collections.abc.Sequence` [`SimulatedSource`]
        The deep field's sources.
    positions : `~collections.abc.Sequence` [`tuple` [`float`, `float`]]
        Their 0-based pixel positions in ``wcs``.
    wcs : `astropy.wcs.WCS`
        The field's tangent-plane WCS (the arrays' pixel scale).
    count : `int`
        Number of neighbours: neighbour ``k`` belongs to primary ``k % len(primaries)`` at separation
        ``NEIGHBOUR_SEPARATIONS[k % 5]``.
    seed : `int`
        Survey seed.
    flux_ratio : `tuple` [`float`, `float`], optional
        Range of the neighbour's 2-micron continuum over its primary's (log-uniform).

    Returns
    -------
    neighbours : `list` [`SimulatedSource`]
        Named ``nbNN-<kind>``.

    Raises
    ------
    ValueError
        Raised for a negative count or a flux-ratio range that is not positive and increasing.
    """
    if count < 0:
        raise ValueError(f"The number of neighbours must be >= 0, not {count}")
    low, high = flux_ratio
    if not 0 < low <= high:
        raise ValueError(f"The neighbour flux ratio range must be 0 < low <= high, not {low} {high}")
    if count == 0:
        return []
    rng = np.random.default_rng([seed, _NEIGHBOUR_STREAM])
    angles = rng.uniform(0.0, 2 * np.pi, size=count)
    ratios = 10 ** rng.uniform(np.log10(low), np.log10(high), size=count)
    spectra = make_source_spectra(count, seed + _NEIGHBOUR_STREAM)
    neighbours = []
    for k in range(count):
        primary = primaries[k % len(primaries)]
        x, y = positions[k % len(primaries)]
        separation = NEIGHBOUR_SEPARATIONS[k % len(NEIGHBOUR_SEPARATIONS)]
        nx, ny = x + separation * np.cos(angles[k]), y + separation * np.sin(angles[k])
        ra, dec = (float(v) for v in wcs.pixel_to_world_values(nx, ny))
        spectrum = dataclasses.replace(spectra[k], flux_2um=float(ratios[k] * primary.spectrum.flux_2um))
        neighbours.append(SimulatedSource(f"nb{k + 1:02d}-{spectrum.kind}", ra, dec, spectrum))
    return neighbours
