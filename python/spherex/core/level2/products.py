"""Per-image calibration products of SPHEREx Level-2 files: the spectral lookup table (and the PSF, from
`spherex.core.level2.psf`).

Both describe the full 2040 x 2040 detector array.  A cutout keeps them whole and records where its
pixel (0, 0) lies on the array (``origin``, 0-based, as the alternate WCS ``A`` of IRSA files does), so
that wavelengths and PSFs of a cutout are those of the same pixels of the full image.
"""

from __future__ import annotations

__all__ = ["Level2PSF", "SpectralLookup"]

from dataclasses import dataclass

import numpy as np

from ..errors import SPHERExImageError
from .psf import FullArrayProduct, Level2PSF


def _fractional_index(nodes: np.ndarray, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the lower node index and the fraction towards the next node.

    Beyond the end nodes (the outer half of the edge pixels) the end cell is extrapolated linearly, as
    wcslib's ``-TAB`` lookup does.
    """
    lower = np.clip(np.searchsorted(nodes, positions, side="right") - 1, 0, len(nodes) - 2)
    return lower, (positions - nodes[lower]) / (nodes[lower + 1] - nodes[lower])


@dataclass(frozen=True)
class SpectralLookup(FullArrayProduct):
    """The ``WCS-WAVE`` table: central wavelength and bandwidth on a grid of control points.

    Parameters
    ----------
    x, y : `numpy.ndarray`
        Control-point positions along columns and rows, 1-based FITS pixel coordinates of the full
        array (e.g. ``1, 341, ..., 2040`` for a 7 x 7 grid), increasing.
    values : `numpy.ndarray`
        Shape ``(len(y), len(x), 2)``: wavelength and bandwidth (micron) at each control point, as the
        ``VALUES`` column (``TDIM = (2, nx, ny)``) stores them.
    origin : `tuple` [`int`, `int`], optional
        0-based (x, y) position on the full array of this image's pixel (0, 0).

    Notes
    -----
    Values between control points are interpolated bilinearly, which IRSA documents as accurate to
    about 1 nm; this is also what wcslib's ``WAVE-TAB`` lookup (alternate WCS ``W``) computes, with the
    SIP distortion switched off as IRSA's tutorial does, linear extrapolation beyond the end nodes
    included.
    """

    x: np.ndarray
    y: np.ndarray
    values: np.ndarray
    origin: tuple[int, int] = (0, 0)

    def __post_init__(self) -> None:
        x = np.asarray(self.x, dtype=float)
        y = np.asarray(self.y, dtype=float)
        values = np.asarray(self.values, dtype=float)
        if x.ndim != 1 or y.ndim != 1 or len(x) < 2 or len(y) < 2:
            raise SPHERExImageError("The wavelength lookup needs at least 2 control points along x and y")
        if np.any(np.diff(x) <= 0) or np.any(np.diff(y) <= 0):
            raise SPHERExImageError("The wavelength lookup control points must increase along x and y")
        if values.shape != (len(y), len(x), 2):
            raise SPHERExImageError(
                f"The wavelength lookup values have shape {values.shape}, not {(len(y), len(x), 2)}"
            )
        object.__setattr__(self, "x", x)
        object.__setattr__(self, "y", y)
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "origin", (int(self.origin[0]), int(self.origin[1])))

    def at(self, x: float | np.ndarray, y: float | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return the wavelength and bandwidth at pixel positions of this image.

        Parameters
        ----------
        x, y : `float` or `numpy.ndarray`
            0-based pixel positions (column, row) in this image, broadcastable.

        Returns
        -------
        wavelength, bandwidth : `numpy.ndarray`
            Micron.
        """
        px = np.asarray(x, dtype=float) + self.origin[0] + 1.0
        py = np.asarray(y, dtype=float) + self.origin[1] + 1.0
        i, t = _fractional_index(self.x, px)
        j, s = _fractional_index(self.y, py)
        i, t, j, s = np.broadcast_arrays(i, t, j, s)
        v = self.values
        t = t[..., None]
        s = s[..., None]
        result = (1 - s) * ((1 - t) * v[j, i] + t * v[j, i + 1]) + s * (
            (1 - t) * v[j + 1, i] + t * v[j + 1, i + 1]
        )
        return result[..., 0], result[..., 1]

    def maps(self, shape: tuple[int, int]) -> np.ndarray:
        """Return per-pixel wavelength and bandwidth maps of an image.

        Parameters
        ----------
        shape : `tuple` [`int`, `int`]
            Image shape (rows, columns).

        Returns
        -------
        maps : `numpy.ndarray`
            float32, shape ``(2, rows, columns)``: wavelength then bandwidth, micron.
        """
        rows, columns = shape
        wavelength, bandwidth = self.at(np.arange(columns)[None, :], np.arange(rows)[:, None])
        return np.stack([wavelength, bandwidth]).astype(np.float32)
