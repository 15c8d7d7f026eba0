"""The ``forcedSpectrophotometry`` table: its columns, units, descriptions and flag names.

Shared by `~spherex.tasks.ForcedSpectrophotometryTask`, which writes it, and
`~spherex.tasks.GatherSpectraTask`, which gathers it into spectra.
"""

from __future__ import annotations

__all__ = ["BLENDED_BIT", "MEASUREMENT_COLUMNS"]

import astropy.units as u
from astropy.table import Table

MEASUREMENT_COLUMNS = (
    "target", "exposure", "detector", "x", "y", "wavelength", "bandwidth", "flux", "flux_err",
    "background", "flags", "flag_names", "psf_fraction", "n_pixels", "mjd", "ra", "dec", "reduced_chi2",
    "n_neighbours",
)  # fmt: skip
"""Columns of a ``forcedSpectrophotometry`` table, in order."""

BLENDED_BIT = 32
"""Bit of a measurement's ``flags`` set when a catalogue neighbour lies on its PSF core (made up: above
every FLAGS bit of a Level-2 file, 0-31, so it cannot clash with one; named ``BLENDED`` in
``flag_names``)."""

_UNITS = {
    "x": u.pix, "y": u.pix, "wavelength": u.micron, "bandwidth": u.micron, "flux": u.uJy,
    "flux_err": u.uJy, "background": u.MJy / u.sr, "mjd": u.day, "ra": u.deg, "dec": u.deg,
}  # fmt: skip
_DESCRIPTIONS = {
    "target": "Target name (spectroTargets)",
    "exposure": "Exposure id (Butler data ID)",
    "detector": "Detector array 1-6 (Butler data ID)",
    "x": "0-based column of the target in the full image",
    "y": "0-based row of the target in the full image",
    "wavelength": "Central wavelength of the target's pixel (WCS-WAVE)",
    "bandwidth": "Bandwidth of the target's pixel (WCS-WAVE)",
    "flux": "PSF-fit flux density, zodiacal light subtracted",
    "flux_err": "1-sigma error of flux from the pixel variances",
    "background": "Fitted constant local background after zodi subtraction",
    "flags": "OR of the FLAGS bits of the pixels under the PSF core",
    "flag_names": "Names of those bits (the image's MP_ cards), separated by |",
    "psf_fraction": "Fraction of the PSF inside the fitted pixels (< 1 near the image edge)",
    "n_pixels": "Pixels used in the fit",
    "mjd": "MJD-AVG of the exposure",
    "ra": "Right ascension used: the catalogue's, moved to mjd by its proper motion and parallax",
    "dec": "Declination used (see ra)",
    "reduced_chi2": "Chi-square per degree of freedom of the joint fit (target, neighbours, background)",
    "n_neighbours": "Catalogue sources (targets and references) within neighbourRadius pixels",
}


def _flag_names(flags: int, flag_defs: dict[str, int] | None) -> str:
    names = [
        name for name, bit in sorted((flag_defs or {}).items(), key=lambda item: item[1]) if flags >> bit & 1
    ]
    if flags >> BLENDED_BIT & 1:
        names.append("BLENDED")
    return "|".join(names)


def _measurement_table(records: list[tuple]) -> Table:
    dtypes = ["U64", "i8", "i8", "f8", "f8", "f8", "f8", "f8", "f8", "f8", "i8", "U512", "f8", "i8", "f8"]
    dtypes += ["f8", "f8", "f8", "i8"]
    if records:
        table = Table(rows=records, names=MEASUREMENT_COLUMNS, dtype=dtypes)
    else:
        table = Table(names=MEASUREMENT_COLUMNS, dtype=dtypes)
    for name, unit in _UNITS.items():
        table[name].unit = unit
    for name, text in _DESCRIPTIONS.items():
        table[name].description = text
    return table
