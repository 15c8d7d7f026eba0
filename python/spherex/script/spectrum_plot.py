"""The picture of one target's spectrum: flux density against wavelength, coloured by detector band."""

from __future__ import annotations

__all__ = ["BAND_COLOURS", "plot_spectrum"]

import os
from pathlib import Path

import numpy as np
from astropy.table import Table

BAND_COLOURS = {1: "#4b0082", 2: "#1f5fd6", 3: "#1b9e77", 4: "#b8a000", 5: "#e66101", 6: "#b2182b"}
"""Marker colour of each detector array (band 1-6, short to long wavelengths)."""


def plot_spectrum(spectrum: Table, path: str | os.PathLike, truth: Table | None = None) -> Path:
    """Draw a spectrum: points with error bars, one colour per band, unused (flagged) points hollow.

    Parameters
    ----------
    spectrum : `astropy.table.Table`
        One target's spectrum (columns ``wavelength``, ``flux``, ``flux_err``, ``detector``, ``used``).
    path : `str` or `os.PathLike`
        PNG file to write.
    truth : `astropy.table.Table`, optional
        The target's simulated truth (``wavelength``, ``flux``), drawn as a grey line.

    Returns
    -------
    path : `pathlib.Path`
        The PNG written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4.8), constrained_layout=True)
    if truth is not None and len(truth):
        order = np.argsort(np.asarray(truth["wavelength"]))
        ax.plot(
            np.asarray(truth["wavelength"])[order], np.asarray(truth["flux"])[order],
            color="0.55", lw=1.2, zorder=1, label="truth (simulation)",
        )  # fmt: skip
    wavelength = np.asarray(spectrum["wavelength"], dtype=float)
    flux = np.asarray(spectrum["flux"], dtype=float)
    error = np.asarray(spectrum["flux_err"], dtype=float)
    used = np.asarray(spectrum["used"], dtype=bool)
    detectors = np.asarray(spectrum["detector"], dtype=int)
    for band in sorted(set(detectors)):
        colour = BAND_COLOURS.get(int(band), "black")
        for selected, hollow in ((used, False), (~used, True)):
            rows = (detectors == band) & selected & np.isfinite(flux)
            if not rows.any():
                continue
            ax.errorbar(
                wavelength[rows], flux[rows], yerr=error[rows], fmt="o", ms=4, color=colour,
                mfc="none" if hollow else colour, elinewidth=0.8, capsize=0, zorder=2,
                label=f"band {band}" + (" (not used)" if hollow else ""),
            )  # fmt: skip
    name = spectrum.meta.get("target", "")
    ra, dec = spectrum.meta.get("ra"), spectrum.meta.get("dec")
    where = f"  (ra {ra:.5f}, dec {dec:+.5f})" if ra is not None and dec is not None else ""
    ax.set_title(f"{name}{where}: {int(used.sum())} of {len(spectrum)} measurements used", fontsize=10)
    ax.set_xlabel("wavelength (micron)")
    ax.set_ylabel("flux density (microJy)")
    ax.set_xlim(0.7, 5.05)
    ax.legend(fontsize=7, ncol=2, loc="best")
    ax.grid(alpha=0.3)
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
