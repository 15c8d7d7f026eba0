"""Point sources of known spectra for the simulated sky: continua, water-ice absorption, PAH emission.

Each `SimulatedSource` has a `SourceSpectrum`, the flux density (microJy) as a function of wavelength
(micron), so that what SPHEREx's linear variable filters see of it is known exactly: `band_average`
is the mean flux density over a pixel's band ``[wavelength - bandwidth / 2, wavelength + bandwidth / 2]``
(a top-hat; made up, as is every number here: the shapes are schematic, not fits to real sources).

- continuum: a power law ``F_nu = F_2 (wavelength / 2 micron) ** slope``;
- ice: a continuum times ``1 - depth * exp(-(wavelength - 3.05) ** 2 / (2 * 0.12 ** 2))``, the 3.05
  micron water-ice band (depth 0.3-0.6 of the continuum at 3.05 micron);
- pah: a continuum plus a Gaussian line at 3.29 micron (sigma 0.018 micron, FWHM ~0.04), whose peak is
  0.5-1.5 times the continuum there.
"""

from __future__ import annotations

__all__ = [
    "ICE_SIGMA",
    "ICE_WAVELENGTH",
    "PAH_SIGMA",
    "PAH_WAVELENGTH",
    "SOURCE_KINDS",
    "SimulatedSource",
    "SourceSpectrum",
    "make_source_spectra",
]

from dataclasses import dataclass

import numpy as np

ICE_WAVELENGTH = 3.05
"""Centre of the water-ice absorption band, micron."""

ICE_SIGMA = 0.12
"""Gaussian width of the simulated ice band, micron (FWHM ~0.28 micron; made up)."""

PAH_WAVELENGTH = 3.29
"""Centre of the PAH emission feature, micron."""

PAH_SIGMA = 0.018
"""Gaussian width of the simulated PAH line, micron (made up)."""

SOURCE_KINDS = ("continuum", "ice", "pah")
"""Kinds of simulated spectra, in the order `make_source_spectra` cycles through them."""

_REFERENCE_WAVELENGTH = 2.0
# Gauss-Legendre nodes for the band average: exact for polynomials of degree < 32, so for the smooth
# spectra here (the narrowest feature, the PAH line, is wider than a quarter of any band) far below 1e-6.
_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(16)
_SPECTRUM_STREAM = 7
"""Random-stream id that separates the spectra draws from the other draws made from the same seed."""


@dataclass(frozen=True)
class SourceSpectrum:
    """The spectrum of one simulated point source.

    Parameters
    ----------
    flux_2um : `float`
        Continuum flux density at 2 micron, microJy.
    slope : `float`
        Power-law index of the continuum, ``F_nu`` proportional to ``wavelength ** slope``.
    ice_depth : `float`, optional
        Fraction of the continuum absorbed at `ICE_WAVELENGTH` (0: no ice band).
    pah_peak : `float`, optional
        Peak of the PAH line at `PAH_WAVELENGTH` as a fraction of the continuum there (0: no line).
    """

    flux_2um: float
    slope: float
    ice_depth: float = 0.0
    pah_peak: float = 0.0

    def __post_init__(self) -> None:
        if not self.flux_2um > 0:
            raise ValueError(f"A source spectrum needs a positive flux, not {self.flux_2um}")
        if not 0.0 <= self.ice_depth < 1.0:
            raise ValueError(f"The ice depth is a fraction of the continuum in [0, 1), not {self.ice_depth}")
        if self.pah_peak < 0:
            raise ValueError(f"The PAH line peak must be >= 0, not {self.pah_peak}")

    @property
    def kind(self) -> str:
        """``ice``, ``pah`` or ``continuum`` (`str`)."""
        return "ice" if self.ice_depth > 0 else "pah" if self.pah_peak > 0 else "continuum"

    def continuum(self, wavelength: float | np.ndarray) -> np.ndarray:
        """Return the continuum flux density.

        Parameters
        ----------
        wavelength : `float` or `numpy.ndarray`
            Micron.

        Returns
        -------
        flux : `numpy.ndarray`
            microJy.
        """
        return self.flux_2um * (np.asarray(wavelength, dtype=float) / _REFERENCE_WAVELENGTH) ** self.slope

    def __call__(self, wavelength: float | np.ndarray) -> np.ndarray:
        """Return the flux density, features included.

        Parameters
        ----------
        wavelength : `float` or `numpy.ndarray`
            Micron.

        Returns
        -------
        flux : `numpy.ndarray`
            microJy.
        """
        wavelength = np.asarray(wavelength, dtype=float)
        ice = np.exp(-0.5 * ((wavelength - ICE_WAVELENGTH) / ICE_SIGMA) ** 2)
        line = np.exp(-0.5 * ((wavelength - PAH_WAVELENGTH) / PAH_SIGMA) ** 2)
        line_peak = self.pah_peak * self.continuum(PAH_WAVELENGTH)
        return self.continuum(wavelength) * (1.0 - self.ice_depth * ice) + line_peak * line

    def band_average(self, wavelength: float | np.ndarray, bandwidth: float | np.ndarray) -> np.ndarray:
        """Return the mean flux density over pixels' bands, what a pixel of the LVF sees.

        Parameters
        ----------
        wavelength, bandwidth : `float` or `numpy.ndarray`
            Central wavelength and full width of each band, micron (as
            `~spherex.core.SPHERExLevel2Image.wavelength_at` gives them), broadcastable.

        Returns
        -------
        flux : `numpy.ndarray`
            microJy: the mean of the spectrum over each band,
            ``[wavelength - bandwidth / 2, wavelength + bandwidth / 2]``.
        """
        wavelength, bandwidth = np.broadcast_arrays(
            np.asarray(wavelength, dtype=float), np.asarray(bandwidth, dtype=float)
        )
        samples = wavelength[..., None] + 0.5 * bandwidth[..., None] * _NODES
        return 0.5 * (self(samples) @ _WEIGHTS)


@dataclass(frozen=True)
class SimulatedSource:
    """A point source of known spectrum in the simulated sky.

    Parameters
    ----------
    name : `str`
        Name (letters, digits, ``-``; usable as a file name).
    ra, dec : `float`
        ICRS position, degrees.
    spectrum : `SourceSpectrum`
        Its spectrum.
    """

    name: str
    ra: float
    dec: float
    spectrum: SourceSpectrum

    @property
    def kind(self) -> str:
        """Kind of spectrum: ``continuum``, ``ice`` or ``pah`` (`str`)."""
        return self.spectrum.kind


def make_source_spectra(count: int, seed: int, flux_scale: float = 1.0) -> list[SourceSpectrum]:
    """Return varied spectra, cycling through continuum, ice and PAH sources.

    Parameters
    ----------
    count : `int`
        Number of spectra.
    seed : `int`
        Survey seed; the same seed gives the same spectra.
    flux_scale : `float`, optional
        Multiplies every flux density (the simulator scales fluxes with the pixel area of small arrays,
        so that their signal-to-noise ratio is that of the real array).

    Returns
    -------
    spectra : `list` [`SourceSpectrum`]
        Continuum flux densities at 2 micron spread log-uniformly over 3-30 mJy (15.2-12.7 AB; times
        ``flux_scale``): signal-to-noise ratios of ~30-300 per measurement in bands 1-4 and ~10-100 in
        bands 5-6 with the simulator's calibration, as the bright stars behind clouds ice studies target;
        slopes -2 (stellar, blue) to +1.5 (dusty, red); ice depths 0.3-0.6; PAH peaks 0.5-1.5 times the
        continuum.
    """
    rng = np.random.default_rng([seed, _SPECTRUM_STREAM])
    spectra = []
    for index in range(count):
        kind = SOURCE_KINDS[index % len(SOURCE_KINDS)]
        flux = flux_scale * 10 ** rng.uniform(np.log10(3000.0), np.log10(30000.0))
        if kind == "continuum":
            spectra.append(SourceSpectrum(flux, slope=float(rng.uniform(-2.0, 1.0))))
        elif kind == "ice":
            depth = float(rng.uniform(0.3, 0.6))
            spectra.append(SourceSpectrum(flux, slope=float(rng.uniform(0.5, 1.5)), ice_depth=depth))
        else:
            peak = float(rng.uniform(0.5, 1.5))
            spectra.append(SourceSpectrum(flux, slope=float(rng.uniform(-0.5, 0.5)), pah_peak=peak))
    return spectra
