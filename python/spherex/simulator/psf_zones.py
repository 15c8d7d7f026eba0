"""The PSF cube of simulated Level-2 images: a different PSF in every zone of the array.

Real SPHEREx PSFs change across each array (IRSA's files carry 11 x 11 zones).  The simulated zones are
elliptical Gaussians whose width, elongation and orientation vary smoothly with the zone centre (made
up, as a stand-in for the measured PSFs), so that photometry with the PSF of the wrong zone is visibly
wrong.  With a PSF about one pixel wide (IRSA's PSF_FWHM) the pixel sets most of each stamp, so a wrong
zone misreads a flux by ~1% (the transposed zone of IRSA's header error, or the next zone along x, in
an 11 x 11 grid on band 2), against IRSA's up to 5% with the real PSFs and their wings.
"""

from __future__ import annotations

__all__ = ["zone_psf_cube"]

import numpy as np


def zone_psf_cube(
    sigma: float,
    x_centers: np.ndarray,
    y_centers: np.ndarray,
    size: int,
    psf_size: int,
    oversampling: int = 10,
) -> np.ndarray:
    """Return oversampled PSFs of zones, one plane per zone centre.

    Parameters
    ----------
    sigma : `float`
        Mean Gaussian sigma of the array's PSF, image pixels.
    x_centers, y_centers : `numpy.ndarray`
        Zone centres, pixel coordinates of the array (0- or 1-based: one pixel changes nothing here);
        plane ``i`` is the PSF of zone ``(x_centers[i], y_centers[i])``, whatever the order of the zones.
    size : `int`
        Pixels per side of the array.
    psf_size : `int`
        Oversampled pixels per side of each plane (odd: the centre pixel is the source position).
    oversampling : `int`, optional
        Oversampled pixels per image pixel (10 as IRSA's).

    Returns
    -------
    cube : `numpy.ndarray`
        float32, shape ``(zones, psf_size, psf_size)``, each plane summing to 1.  From the array's
        bottom-left to its top-right the major-axis sigma grows from 0.75 to 1.35 times ``sigma``, the
        axis ratio falls from 1 to 0.7 along y, and the major axis turns from x to 60 degrees along x.
    """
    u = np.clip(np.asarray(x_centers, dtype=float) / size, 0.0, 1.0)
    v = np.clip(np.asarray(y_centers, dtype=float) / size, 0.0, 1.0)
    major = sigma * oversampling * (0.75 + 0.3 * (u + v))
    minor = major * (1.0 - 0.3 * v)
    angle = np.radians(60.0 * u)
    grid = np.arange(psf_size) - (psf_size - 1) / 2.0
    dx = grid[None, None, :]
    dy = grid[None, :, None]
    cos, sin = np.cos(angle)[:, None, None], np.sin(angle)[:, None, None]
    along = cos * dx + sin * dy
    across = -sin * dx + cos * dy
    cube = np.exp(-0.5 * ((along / major[:, None, None]) ** 2 + (across / minor[:, None, None]) ** 2))
    return (cube / cube.sum(axis=(1, 2), keepdims=True)).astype(np.float32)
