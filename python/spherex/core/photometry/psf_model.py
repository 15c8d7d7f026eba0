"""The PSF of a Level-2 image on its own pixel grid, and the units of point-source photometry.

One model serves both sides of forced spectrophotometry: the simulator (``spherex-simulate --format
level2``) renders point sources with `psf_stamp`, and the measurement task fits the same `psf_stamp` at
the same position.  A source of total flux density ``F`` (microJy) at 0-based pixel ``(x, y)`` adds

    ``microjansky_to_mjy_per_sr(F, pixel_solid_angle(image.wcs, x, y)) * stamp``

to the pixels ``image.data[bbox]`` (MJy/sr), where ``stamp, bbox = psf_stamp(image, x, y, half_size)``.
Conversely a PSF fit of a zodi-subtracted image in MJy/sr gives an amplitude ``A`` whose flux density is
``mjy_per_sr_to_microjansky(A, pixel_solid_angle(image.wcs, x, y))``.  The solid angle is that of the
pixel at the source position, used for the whole stamp (it changes by less than 1e-5 across a stamp).

The PSF is that of the zone `~spherex.core.SPHERExLevel2Image.psf_at` picks for the position (zone
selection and IRSA's PSF header conventions live there, not here).  Each plane of IRSA's cube is
oversampled ``oversampling`` times (10 in real files, ``OVERSAMP``).  IRSA's tutorial "Understanding and
Extracting the PSF Extension in a SPHEREx Cutout" (section 9) says how to fit with it: shift the
oversampled PSF to the source's sub-pixel position, integrate it onto the native pixel grid, normalise.
That is what `psf_stamp` does, taking the centre pixel of the (odd-sized, 101 x 101) plane, index
``(n - 1) / 2`` along each axis, as the source position (IRSA does not state it; an assumption), treating
each oversampled pixel as uniform over its own area and integrating that exactly over each image pixel,
and dividing by the sum of the plane, so that the stamp summed over an unbounded grid is 1 whatever the
normalisation of the file's cube.
"""

from __future__ import annotations

__all__ = [
    "mjy_per_sr_to_microjansky",
    "microjansky_to_mjy_per_sr",
    "pixel_solid_angle",
    "psf_stamp",
]

import math
from typing import TYPE_CHECKING, Any

import numpy as np
from astropy import units as u

from ..errors import SPHERExImageError

if TYPE_CHECKING:
    from ..level2.image import SPHERExLevel2Image

_MICROJANSKY_IN_MEGAJANSKY = float((1.0 * u.uJy).to_value(u.MJy))


def _overlap_weights(
    first_pixel: int, n_pixels: int, centre: float, oversampling: int, n_psf: int
) -> np.ndarray:
    """Return the ``(n_pixels, n_psf)`` overlaps of image pixels with oversampled PSF pixels.

    Image pixel ``first_pixel + i`` spans ``[p - 0.5, p + 0.5]``; in oversampled PSF index units, with
    the PSF centre index ``(n_psf - 1) / 2`` at the source position ``centre``, that is
    ``[(p - 0.5 - centre) * oversampling + c, (p + 0.5 - centre) * oversampling + c]``, and PSF pixel
    ``k`` spans ``[k - 0.5, k + 0.5]``.  The overlap lengths are the integration weights.
    """
    c = (n_psf - 1) / 2.0
    pixels = first_pixel + np.arange(n_pixels, dtype=float)
    lower = ((pixels - 0.5 - centre) * oversampling + c)[:, None]
    upper = ((pixels + 0.5 - centre) * oversampling + c)[:, None]
    k = np.arange(n_psf, dtype=float)[None, :]
    return np.clip(np.minimum(upper, k + 0.5) - np.maximum(lower, k - 0.5), 0.0, None)


def psf_stamp(
    image: SPHERExLevel2Image, x: float, y: float, half_size: int
) -> tuple[np.ndarray, tuple[slice, slice]]:
    """Return the PSF of a point source sampled on an image's pixels.

    Parameters
    ----------
    image : `~spherex.core.SPHERExLevel2Image`
        The image (or a cutout of it); its PSF zone for the position comes from ``image.psf_at``.
    x, y : `float`
        0-based pixel position (column, row) of the source in ``image``; pixel ``(i, j)`` spans
        ``[i - 0.5, i + 0.5] x [j - 0.5, j + 0.5]``.
    half_size : `int`
        The stamp covers pixels ``round(x) - half_size .. round(x) + half_size`` (and the same in y),
        cut to the image.

    Returns
    -------
    stamp : `numpy.ndarray`
        float64, shape ``image.data[bbox].shape``: the fraction of the source's flux falling in each
        pixel.  It sums to 1 over an unbounded grid, so to less than 1 when ``half_size`` is smaller than
        the PSF plane or the stamp is cut by the image edge.  Empty if the box misses the image.
    bbox : `tuple` [`slice`, `slice`]
        (rows, columns) of ``image`` the stamp covers: ``image.data[bbox]`` has the stamp's shape.

    Raises
    ------
    SPHERExImageError
        Raised if the image has no PSF, the position is not finite, or ``half_size`` is negative.
    """
    if not (math.isfinite(x) and math.isfinite(y)):
        raise SPHERExImageError(f"Cannot place a PSF at the non-finite pixel position ({x}, {y})")
    if half_size < 0:
        raise SPHERExImageError(f"half_size must be >= 0, not {half_size}")
    psf = np.asarray(image.psf_at(x, y), dtype=float)
    oversampling = int(image.psf_model.oversampling)
    total = psf.sum()
    if psf.ndim != 2 or not math.isfinite(total) or total <= 0.0:
        raise SPHERExImageError(f"The PSF zone at pixel ({x:.3f}, {y:.3f}) is not a 2-d image with flux")

    rows, columns = np.shape(image.data)
    x0 = max(round(x) - half_size, 0)
    x1 = min(round(x) + half_size + 1, columns)
    y0 = max(round(y) - half_size, 0)
    y1 = min(round(y) + half_size + 1, rows)
    bbox = (slice(y0, max(y1, y0)), slice(x0, max(x1, x0)))
    if x1 <= x0 or y1 <= y0:
        return np.zeros((max(y1 - y0, 0), max(x1 - x0, 0))), bbox
    weights_y = _overlap_weights(y0, y1 - y0, y, oversampling, psf.shape[0])
    weights_x = _overlap_weights(x0, x1 - x0, x, oversampling, psf.shape[1])
    return (weights_y @ psf @ weights_x.T) / total, bbox


def pixel_solid_angle(wcs: Any, x: float | np.ndarray, y: float | np.ndarray) -> np.ndarray:
    """Return the solid angle of image pixels from the image's celestial WCS.

    Parameters
    ----------
    wcs : `astropy.wcs.WCS` or APE 14 low-level WCS
        Celestial WCS of the image (``image.wcs``; a cutout's sliced WCS works too), degrees.
    x, y : `float` or `numpy.ndarray`
        0-based pixel positions (column, row), broadcastable.

    Returns
    -------
    solid_angle : `numpy.ndarray`
        Steradian: the area on the unit sphere of the parallelogram spanned by the pixel's two sides
        (exact to second order in the pixel size, ~1e-9 relative for SPHEREx's 6.15 arcsec pixels).

    Raises
    ------
    SPHERExImageError
        Raised if the WCS is not a 2-axis celestial WCS.
    """
    low_level = getattr(wcs, "low_level_wcs", wcs)
    if low_level is None or low_level.pixel_n_dim != 2 or low_level.world_n_dim != 2:
        raise SPHERExImageError("Pixel solid angles need a 2-axis celestial WCS of the image")
    x, y = np.broadcast_arrays(np.asarray(x, dtype=float), np.asarray(y, dtype=float))

    # The four mid-points of the pixel's sides, in one WCS call.
    px = np.stack([x + 0.5, x - 0.5, x, x])
    py = np.stack([y, y, y + 0.5, y - 0.5])
    lon, lat = (np.radians(v) for v in low_level.pixel_to_world_values(px, py))
    vectors = np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)], axis=-1)
    along_x = vectors[0] - vectors[1]
    along_y = vectors[2] - vectors[3]
    return np.linalg.norm(np.cross(along_x, along_y), axis=-1)


def microjansky_to_mjy_per_sr(
    flux: float | np.ndarray, solid_angle: float | np.ndarray
) -> float | np.ndarray:
    """Convert a flux density to the surface brightness of one pixel holding it all.

    Parameters
    ----------
    flux : `float` or `numpy.ndarray`
        Flux density, microJy.
    solid_angle : `float` or `numpy.ndarray`
        Pixel solid angle, steradian (`pixel_solid_angle`).

    Returns
    -------
    surface_brightness : `float` or `numpy.ndarray`
        MJy/sr.
    """
    return np.asarray(flux) * _MICROJANSKY_IN_MEGAJANSKY / np.asarray(solid_angle)


def mjy_per_sr_to_microjansky(
    surface_brightness: float | np.ndarray, solid_angle: float | np.ndarray
) -> float | np.ndarray:
    """Convert a pixel's surface brightness to its flux density; the inverse of `microjansky_to_mjy_per_sr`.

    Parameters
    ----------
    surface_brightness : `float` or `numpy.ndarray`
        MJy/sr.
    solid_angle : `float` or `numpy.ndarray`
        Pixel solid angle, steradian (`pixel_solid_angle`).

    Returns
    -------
    flux : `float` or `numpy.ndarray`
        Flux density, microJy.
    """
    return np.asarray(surface_brightness) * np.asarray(solid_angle) / _MICROJANSKY_IN_MEGAJANSKY
