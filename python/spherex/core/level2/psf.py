"""The PSF of SPHEREx Level-2 spectral images: oversampled PSFs of zones of the array, and which zone a
pixel belongs to in every release.

What IRSA documents (sources named where they are used):

- The ``PSF`` HDU of QR1 and QR2 files is a cube of 121 planes (an 11 x 11 grid of zones), 101 x 101
  pixels, ``OVERSAMP = 10``; the header gives each plane's zone centre and width as ``XCTR_k``,
  ``YCTR_k``, ``XWID_k``, ``YWID_k`` with ``k = 1 ... 121`` (plane ``k - 1``), commented
  ``Center of x zone (ix, iy)`` (IRSA tutorial "Understanding and Extracting the PSF Extension in a
  SPHEREx Cutout", Caltech-IPAC/irsa-tutorials ``tutorials/spherex/spherex_psf.md``, printed outputs).
- The planes are stored x-fast: the zone at grid position ``(ix, iy)`` (0-based, ``(0, 0)`` at the
  bottom left, holding FITS pixel (1, 1)) is plane ``iy * ncols + ix``.  QR1 and QR2 headers labelled
  the ``XCTR_k``/``YCTR_k`` cards y-fast (``k - 1 = ix * ncols + iy``).  Files re-issued from
  2026-03-31 carry a PRIMARY ``VERSION`` ending in ``+psffix1`` (pipeline versions 6.4 to 6.5.5);
  6.5.6 and later were never affected (IRSA notice "SPHEREx PSF header error",
  https://irsa.ipac.caltech.edu/data/SPHEREx/docs/psfhdrerr.html).
- IRSA's recipe picks the plane whose zone centre is nearest the 0-based pixel position on the full
  array; the tutorial (as updated 2026-03-25) compares ``XCTR``/``YCTR`` with 0-based positions.
- QR3 (pipeline R7) files carry an ``EPSF`` binary table instead of the cube, one row per zone of a
  21 x 21 grid (11 x 41 on detector 3) with ``XCENTER``/``YCENTER``/``XWIDTH``/``YWIDTH`` columns,
  33 x 33 PSFs oversampled 5 times.  IRSA's tutorials print none of it: this comes from public
  third-party readers (the ``spherex-retrieval`` package's ``psf.py`` and a "SPHEREx data research"
  note, both 2026-09), so it is read as far as they describe it.
"""

from __future__ import annotations

__all__ = ["FullArrayProduct", "Level2PSF", "PSFPlanes", "psf_labels_trusted", "xfast_plane_of_labels"]

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Self

import numpy as np

from ..errors import SPHERExImageError

# IRSA notice "SPHEREx PSF header error": files of pipeline 6.5.6 and later were never affected, and
# re-issued files of 6.4 to 6.5.5 carry this local version label.
_FIRST_UNAFFECTED = (6, 5, 6)
_FIX_LABEL = "psffix1"
_PUBLIC_VERSION = re.compile(r"^\s*v?(\d+(?:\.\d+)*)\s*$")


def psf_labels_trusted(version: str | None) -> bool:
    """Tell whether a file's PSF zone labels can be used as written, by IRSA's rule.

    Parameters
    ----------
    version : `str` or `None`
        The PRIMARY ``VERSION`` keyword, e.g. ``6.4``, ``6.4+psffix1`` or ``7.0.5``.

    Returns
    -------
    trusted : `bool`
        `True` for versions 6.5.6 and later and for ``+psffix1`` re-issues; `False` for earlier versions,
        a missing ``VERSION`` (as IRSA's tutorial decides) and a value that is not a version number.
    """
    if version is None:
        return False
    public, _, local = str(version).strip().partition("+")
    match = _PUBLIC_VERSION.match(public)
    if match is None:
        return False
    numbers = tuple(int(part) for part in match.group(1).split("."))
    padded = numbers + (0,) * (len(_FIRST_UNAFFECTED) - len(numbers))
    if padded >= _FIRST_UNAFFECTED:
        return True
    # Local labels are dot-separated (PEP 440 also allows '-' and '_').
    return _FIX_LABEL in re.split(r"[._-]", local.lower())


def xfast_plane_of_labels(x_centers: np.ndarray, y_centers: np.ndarray) -> np.ndarray:
    """Return the plane that x-fast storage gives each labelled zone centre.

    Parameters
    ----------
    x_centers, y_centers : `numpy.ndarray`
        Zone centres in label order (``XCTR_k``, ``YCTR_k``, ``k = 1 ...``).

    Returns
    -------
    planes : `numpy.ndarray`
        For each label, ``iy * ncols + ix``, where ``ix``/``iy`` are the ranks of its centre among the
        distinct x/y centres: IRSA's ``iplane = y * ncols + x + 1``, 0-based.  A permutation of the planes;
        the identity when the labels already follow the storage.

    Raises
    ------
    SPHERExImageError
        Raised if the centres are not an ``ncols x nrows`` grid with every zone once.
    """
    # Rounded like the 8 decimals the headers print, so that one column's centres compare equal.
    xr, yr = np.round(np.asarray(x_centers, float), 4), np.round(np.asarray(y_centers, float), 4)
    columns, rows = np.unique(xr), np.unique(yr)
    planes = np.searchsorted(rows, yr) * len(columns) + np.searchsorted(columns, xr)
    if len(columns) * len(rows) != len(xr) or len(np.unique(planes)) != len(xr):
        raise SPHERExImageError(
            f"the {len(xr)} PSF zone centres are not a grid of {len(columns)} x {len(rows)} zones, each once"
        )
    return planes


class PSFPlanes:
    """Some planes of a PSF cube: the zones a cutout of a remote file needs, and only those.

    A cutout read by byte ranges (`spherex.core.level2.psf_zone_reads`) fetches the PSF planes of the
    zones its pixels fall in, not the whole cube (121 planes of 101 x 101 in QR1/QR2, 4.9 MB).  It has
    the cube's ``shape``, ``dtype`` and ``len``; indexing a plane that was read returns it, any other
    plane (and converting the whole to an array, e.g. to write it) raises, naming the file and the
    zones read.

    Parameters
    ----------
    shape : `tuple` [`int`, `int`, `int`]
        Shape of the whole cube.
    dtype : `numpy.dtype`
        Its pixel type.
    planes : `~collections.abc.Mapping` [`int`, `numpy.ndarray`]
        The planes read, by 0-based index.
    source : `str`
        The file, for messages.
    """

    ndim = 3

    def __init__(
        self, shape: tuple[int, int, int], dtype: np.dtype, planes: Mapping[int, np.ndarray], source: str
    ) -> None:
        self.shape, self.dtype, self.source = tuple(shape), np.dtype(dtype), source
        self._planes = dict(planes)

    @property
    def zones(self) -> list[int]:
        """0-based planes held (`list` [`int`])."""
        return sorted(self._planes)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index: object) -> np.ndarray:
        if isinstance(index, int | np.integer) and not isinstance(index, bool):
            plane = int(index) + (self.shape[0] if int(index) < 0 else 0)
            if plane in self._planes:
                return self._planes[plane]
            raise SPHERExImageError(self._missing(f"PSF plane {int(index)}"))
        return np.asarray(self)[index]

    def __array__(self, dtype: object = None, copy: object = None) -> np.ndarray:
        if len(self._planes) != self.shape[0]:
            raise SPHERExImageError(self._missing("the whole PSF cube"))
        cube = np.stack([self._planes[k] for k in range(self.shape[0])])
        return cube if dtype is None else cube.astype(dtype)

    def _missing(self, what: str) -> str:
        return (
            f"{self.source}: {what} was not read with this cutout, which fetched the zones it covers "
            f"({self.zones}); get the 'psf' component for every zone"
        )


class FullArrayProduct:
    """A calibration product of the full detector array, seen from an image (or cutout) of it.

    Subclasses are frozen dataclasses with an ``origin`` field: the 0-based (x, y) position on the full
    array of the image's pixel (0, 0).
    """

    origin: tuple[int, int]

    def shifted(self, dx: int, dy: int) -> Self:
        """Return the product as seen from a cutout starting ``(dx, dy)`` pixels into this image.

        Parameters
        ----------
        dx, dy : `int`
            0-based column and row of the cutout's first pixel in this image.

        Returns
        -------
        product : `FullArrayProduct`
            The same product with the origin moved.
        """
        return replace(self, origin=(self.origin[0] + dx, self.origin[1] + dy))


@dataclass(frozen=True)
class Level2PSF(FullArrayProduct):
    """Oversampled PSFs of zones of the detector array, and the zone of each pixel.

    Parameters
    ----------
    cube : `numpy.ndarray` or `PSFPlanes`
        Shape ``(zones, n, n)``: plane ``i`` is the PSF of zone ``i`` (IRSA's ``XCTR_{i+1}``); a
        `PSFPlanes` for a cutout of a remote file (the zones it covers only).
    x_centers, y_centers : `numpy.ndarray`
        Centre of each plane's zone, 0-based pixel coordinates of the full array, as IRSA's recipe
        compares them (already corrected for files with the PSF header error; see `relabelled`).
    oversampling : `int`, optional
        PSF pixels per image pixel (``OVERSAMP``: 10 in QR1/QR2).
    origin : `tuple` [`int`, `int`], optional
        0-based (x, y) position on the full array of this image's pixel (0, 0).
    x_widths, y_widths : `numpy.ndarray`, optional
        Width of each plane's zone (``XWID_k``, ``YWID_k``), pixels.
    relabelled : `bool`, optional
        Whether the centres were put back in x-fast order because the file had IRSA's PSF header error.
    """

    cube: np.ndarray
    x_centers: np.ndarray
    y_centers: np.ndarray
    oversampling: int = 10
    origin: tuple[int, int] = (0, 0)
    x_widths: np.ndarray | None = None
    y_widths: np.ndarray | None = None
    relabelled: bool = False

    def __post_init__(self) -> None:
        cube = self.cube if isinstance(self.cube, PSFPlanes) else np.asarray(self.cube)
        if cube.ndim != 3 or cube.shape[0] < 1:
            raise SPHERExImageError(f"The PSF cube must be 3-d (zones, y, x), not shape {cube.shape}")
        arrays = {}
        for name in ("x_centers", "y_centers", "x_widths", "y_widths"):
            value = getattr(self, name)
            if value is None and name.endswith("widths"):
                continue
            arrays[name] = np.asarray(value, dtype=float)
            if arrays[name].shape != (cube.shape[0],):
                raise SPHERExImageError(
                    f"The PSF cube has {cube.shape[0]} zones but {arrays[name].size} {name.replace('_', ' ')}"
                )
            if not np.all(np.isfinite(arrays[name])):
                raise SPHERExImageError(f"The PSF {name.replace('_', ' ')} are not all finite numbers")
        if int(self.oversampling) < 1:
            raise SPHERExImageError(
                f"The PSF oversampling must be a positive integer, not {self.oversampling}"
            )
        object.__setattr__(self, "cube", cube)
        for name, value in arrays.items():
            object.__setattr__(self, name, value)
        object.__setattr__(self, "oversampling", int(self.oversampling))
        object.__setattr__(self, "origin", (int(self.origin[0]), int(self.origin[1])))

    @classmethod
    def from_labels(
        cls, cube: np.ndarray, x_centers: np.ndarray, y_centers: np.ndarray, *, version: str | None, **kwargs
    ) -> Level2PSF:
        """Build the PSF from a file's zone labels, correcting them as IRSA's notice says when needed.

        Parameters
        ----------
        cube : `numpy.ndarray`
            The ``PSF`` cube, planes in storage order.
        x_centers, y_centers : `numpy.ndarray`
            ``XCTR_k``/``YCTR_k`` in label order (``k = 1 ...``), 0-based pixels.
        version : `str` or `None`
            The file's PRIMARY ``VERSION``: labels are used as written only if `psf_labels_trusted`.
        **kwargs
            ``oversampling``, ``origin``, ``x_widths``, ``y_widths`` (label order).

        Returns
        -------
        psf : `Level2PSF`
            Centres (and widths) in storage order; ``relabelled`` says whether they were moved.

        Raises
        ------
        SPHERExImageError
            Raised if the labels do not match the planes, or an untrusted file's centres are no grid.
        """
        psf = cls(cube, x_centers, y_centers, **kwargs)
        if psf_labels_trusted(version):
            return psf
        planes = xfast_plane_of_labels(psf.x_centers, psf.y_centers)
        moved = {}
        for name in ("x_centers", "y_centers", "x_widths", "y_widths"):
            values = getattr(psf, name)
            if values is not None:
                moved[name] = np.empty_like(values)
                moved[name][planes] = values
        return replace(psf, relabelled=not np.array_equal(planes, np.arange(len(planes))), **moved)

    def zone_at(self, x: float | np.ndarray, y: float | np.ndarray) -> int | np.ndarray:
        """Return the plane of `cube` whose zone centre is nearest a pixel position: IRSA's recipe.

        Parameters
        ----------
        x, y : `float` or `numpy.ndarray`
            0-based pixel position (column, row) in this image (a cutout's own pixels); broadcastable.

        Returns
        -------
        zone : `int` or `numpy.ndarray`
            0-based plane index (IRSA's zone ``zone + 1``, ``XCTR_{zone+1}``); an array for array input.
        """
        px = np.asarray(x, dtype=float) + self.origin[0]
        py = np.asarray(y, dtype=float) + self.origin[1]
        px, py = np.broadcast_arrays(px, py)
        distance2 = (self.x_centers - px[..., None]) ** 2 + (self.y_centers - py[..., None]) ** 2
        zones = np.argmin(distance2, axis=-1)
        return int(zones) if zones.ndim == 0 else zones

    def at(self, x: float, y: float) -> np.ndarray:
        """Return the oversampled PSF of the zone of a pixel position (`zone_at`).

        Parameters
        ----------
        x, y : `float`
            0-based pixel position (column, row) in this image.

        Returns
        -------
        psf : `numpy.ndarray`
            ``(n, n)``, `oversampling` pixels per image pixel, as stored (not normalized here).
        """
        return self.cube[self.zone_at(float(x), float(y))]

    def zone_grid(self) -> tuple[np.ndarray, np.ndarray]:
        """Return the grid position ``(ix, iy)`` of every plane's zone, from the ranks of its centre.

        Returns
        -------
        ix, iy : `numpy.ndarray`
            0-based column and row of each plane's zone in the grid of zones.
        """
        xr, yr = np.round(self.x_centers, 4), np.round(self.y_centers, 4)
        return np.searchsorted(np.unique(xr), xr), np.searchsorted(np.unique(yr), yr)
