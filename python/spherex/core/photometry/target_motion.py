"""Target catalogues: which sources are reported, and where a moving source is at an image's epoch.

A ``spectroTargets`` catalogue may carry, besides ``name``, ``ra``, ``dec`` and ``kind``:

- ``role``: ``target`` (fitted and reported; the default) or ``reference`` (fitted with its neighbours
  so that it does not bias them, never reported);
- ``pmra``, ``pmdec`` (mas/yr; ``pmra`` is mu_alpha * cos(dec), as in Gaia), ``epoch`` (Julian year of
  ``ra``/``dec``, e.g. 2016.0 for Gaia DR3) and ``parallax`` (mas).

`positions_at` moves each source to an image's ``MJD-AVG`` with astropy
(`~astropy.coordinates.SkyCoord.apply_space_motion`); a parallax adds the shift seen from the Earth's
centre (SPHEREx orbits at ~700 km, 5e-6 AU: no difference at these pixel sizes).
"""

from __future__ import annotations

__all__ = ["MOTION_COLUMNS", "ROLES", "is_moving", "normalise_catalogue", "positions_at"]

import numpy as np
from astropy import units as u
from astropy.coordinates import GCRS, Distance, SkyCoord
from astropy.table import Table
from astropy.time import Time

ROLES = ("target", "reference")
"""Values of a catalogue's ``role`` column."""

MOTION_COLUMNS = {"pmra": 0.0, "pmdec": 0.0, "epoch": 2016.0, "parallax": 0.0}
"""Optional motion columns and the value a catalogue without them gets (epoch: Gaia DR3's, moot at zero
motion)."""


def normalise_catalogue(catalogue: Table) -> Table:
    """Return a catalogue with every optional column (``kind``, ``role``, `MOTION_COLUMNS`) present.

    Parameters
    ----------
    catalogue : `astropy.table.Table`
        Columns ``name``, ``ra``, ``dec`` and any of the optional ones.

    Returns
    -------
    catalogue : `astropy.table.Table`
        A copy; missing columns filled with their defaults, masked values too.
    """
    table = Table(catalogue, copy=True)
    n = len(table)
    if "kind" not in table.colnames:
        table["kind"] = np.full(n, "", dtype="U16")
    if "role" not in table.colnames:
        table["role"] = np.full(n, "target", dtype="U16")
    table["role"] = np.asarray(
        table["role"].filled("target") if hasattr(table["role"], "filled") else table["role"]
    )
    for name, default in MOTION_COLUMNS.items():
        if name not in table.colnames:
            table[name] = np.full(n, default)
        column = table[name]
        table[name] = np.asarray(column.filled(default) if hasattr(column, "filled") else column, dtype=float)
    return table


def is_moving(catalogue: Table) -> bool:
    """Tell whether any source of a `normalise_catalogue` table has a proper motion or a parallax."""
    return bool(
        np.any(catalogue["pmra"] != 0) or np.any(catalogue["pmdec"] != 0) or np.any(catalogue["parallax"] > 0)
    )


def positions_at(catalogue: Table, mjd: float) -> tuple[np.ndarray, np.ndarray]:
    """Return the ICRS positions of a catalogue's sources at an epoch.

    Parameters
    ----------
    catalogue : `astropy.table.Table`
        A `normalise_catalogue` table.
    mjd : `float`
        The epoch (an image's ``MJD-AVG``, TDB-ish; the difference is moot at mas/yr).

    Returns
    -------
    ra, dec : `numpy.ndarray`
        Degrees; the catalogue's own where a source does not move or ``mjd`` is not finite.
    """
    ra = np.asarray(catalogue["ra"], dtype=float)
    dec = np.asarray(catalogue["dec"], dtype=float)
    moving = (catalogue["pmra"] != 0) | (catalogue["pmdec"] != 0) | (catalogue["parallax"] > 0)
    if not np.isfinite(mjd) or not np.any(moving):
        return ra, dec
    ra, dec = ra.copy(), dec.copy()
    rows = catalogue[moving]
    # A source without a parallax is put at 10 pc (made up): with no radial velocity its distance does
    # not change its motion across the sky, and erfa overrides (with a warning) a distance at which the
    # proper motion would be faster than light.
    parallax = np.where(rows["parallax"] > 0, rows["parallax"], 100.0) * u.mas
    start = SkyCoord(
        ra=rows["ra"] * u.deg,
        dec=rows["dec"] * u.deg,
        pm_ra_cosdec=rows["pmra"] * u.mas / u.yr,
        pm_dec=rows["pmdec"] * u.mas / u.yr,
        distance=Distance(parallax=parallax),
        obstime=Time(np.asarray(rows["epoch"], dtype=float), format="jyear"),
        frame="icrs",
    )
    when = Time(mjd, format="mjd")
    moved = start.apply_space_motion(new_obstime=when)
    new_ra, new_dec = moved.ra.deg, moved.dec.deg
    if np.any(rows["parallax"] > 0):
        # Parallax: the geocentric position minus that of the same direction at infinity (aberration
        # and the rest cancel), added to the barycentric one.
        near = moved.transform_to(GCRS(obstime=when))
        far = SkyCoord(moved.ra, moved.dec, frame="icrs").transform_to(GCRS(obstime=when))
        offset_ra = (near.ra - far.ra).wrap_at(180 * u.deg).deg
        offset_dec = (near.dec - far.dec).deg
        has = np.asarray(rows["parallax"] > 0)
        new_ra = np.where(has, new_ra + offset_ra, new_ra)
        new_dec = np.where(has, new_dec + offset_dec, new_dec)
    ra[moving] = new_ra % 360.0
    dec[moving] = new_dec
    return ra, dec
