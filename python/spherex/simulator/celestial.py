"""Unit-vector geometry on the celestial sphere (ICRS and an ecliptic frame), vectorised with numpy.

The simulator needs only rotations and offsets along great circles, for many points at once; doing
them on unit vectors avoids the per-call overhead of `astropy.coordinates` frames.
"""

from __future__ import annotations

__all__ = [
    "ECLIPTIC_TO_ICRS",
    "OBLIQUITY_DEG",
    "local_east_north",
    "position_angle_of",
    "radec_to_vector",
    "vector_to_radec",
]

import numpy as np

OBLIQUITY_DEG = 23.4392911
"""Mean obliquity of the ecliptic at J2000 (IAU 1980), degrees."""

_EPS = np.radians(OBLIQUITY_DEG)

ECLIPTIC_TO_ICRS = np.array(
    [
        [1.0, 0.0, 0.0],
        [0.0, np.cos(_EPS), -np.sin(_EPS)],
        [0.0, np.sin(_EPS), np.cos(_EPS)],
    ]
)
"""Rotation taking mean-ecliptic J2000 unit vectors to ICRS (equatorial) unit vectors.

Precession and the ~20 mas frame bias are ignored: the simulator needs a smooth, fixed ecliptic, not
astrometric accuracy.  Its inverse is the transpose.
"""


def radec_to_vector(ra: np.ndarray | float, dec: np.ndarray | float) -> np.ndarray:
    """Return unit vectors for sky positions.

    Parameters
    ----------
    ra, dec : `float` or `numpy.ndarray`
        Longitude and latitude, degrees.

    Returns
    -------
    vectors : `numpy.ndarray`
        Unit vectors, shape ``(..., 3)``.
    """
    ra_rad = np.radians(ra)
    dec_rad = np.radians(dec)
    cos_dec = np.cos(dec_rad)
    return np.stack([cos_dec * np.cos(ra_rad), cos_dec * np.sin(ra_rad), np.sin(dec_rad)], axis=-1)


def vector_to_radec(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the sky positions of (not necessarily normalised) vectors.

    Parameters
    ----------
    vectors : `numpy.ndarray`
        Vectors, shape ``(..., 3)``.

    Returns
    -------
    ra : `numpy.ndarray`
        Longitude in [0, 360), degrees.
    dec : `numpy.ndarray`
        Latitude, degrees.
    """
    x, y, z = vectors[..., 0], vectors[..., 1], vectors[..., 2]
    ra = np.degrees(np.arctan2(y, x)) % 360.0
    dec = np.degrees(np.arctan2(z, np.hypot(x, y)))
    return ra, dec


def local_east_north(vector: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the local east and north unit vectors at a point on the sphere.

    Parameters
    ----------
    vector : `numpy.ndarray`
        Unit vector of the point, shape ``(3,)``; must not be a pole.

    Returns
    -------
    east, north : `numpy.ndarray`
        Unit tangent vectors towards increasing RA and towards the north pole.
    """
    east = np.cross([0.0, 0.0, 1.0], vector)
    east /= np.linalg.norm(east)
    north = np.cross(vector, east)
    return east, north


def position_angle_of(vector: np.ndarray, tangent: np.ndarray) -> float:
    """Return the position angle (east of north) of a tangent direction at a point.

    Parameters
    ----------
    vector : `numpy.ndarray`
        Unit vector of the point, shape ``(3,)``.
    tangent : `numpy.ndarray`
        Direction tangent to the sphere at ``vector``, shape ``(3,)``.

    Returns
    -------
    angle : `float`
        Position angle in [0, 360), degrees.
    """
    east, north = local_east_north(vector)
    return float(np.degrees(np.arctan2(tangent @ east, tangent @ north)) % 360.0)
