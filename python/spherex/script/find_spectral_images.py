"""Spatial and spectral queries of Level-2 spectral images: who sees a sky position, at what wavelength."""

from __future__ import annotations

__all__ = ["SpectralImageHit", "find_spectral_images"]

from dataclasses import dataclass

import numpy as np
from lsst.daf.butler import Butler, DatasetRef
from lsst.sphgeom import LonLat, UnitVector3d

from .ingest.level2 import LEVEL2_DATASET_TYPE


@dataclass(frozen=True)
class SpectralImageHit:
    """One Level-2 image that sees a sky position.

    Parameters
    ----------
    ref : `lsst.daf.butler.DatasetRef`
        The image.
    x, y : `float`
        0-based pixel position (column, row) of the sky position.
    wavelength, bandwidth : `float`
        Central wavelength and bandwidth (micron) at that fractional position, as IRSA's ``WAVE-TAB``
        lookup (alternate WCS ``W``) evaluates them.
    """

    ref: DatasetRef
    x: float
    y: float
    wavelength: float
    bandwidth: float


def find_spectral_images(
    repo: str | Butler, ra: float, dec: float, collections: str | list[str] = "SPHEREx/*"
) -> list[SpectralImageHit]:
    """Find the Level-2 spectral images covering a sky position, and the wavelength each sees there.

    Parameters
    ----------
    repo : `str` or `lsst.daf.butler.Butler`
        Repository or Butler.
    ra, dec : `float`
        ICRS position, degrees.
    collections : `str` or `list` [`str`], optional
        Collections (or glob patterns) to search; every ``SPHEREx/...`` run by default.

    Returns
    -------
    hits : `list` [`SpectralImageHit`]
        Sorted by time then detector.  The registry narrows the search (``healpix7`` pixel, then each
        array's footprint); only the WCS and a 2 x 2 pixel cutout of the wavelength maps of each
        candidate are read.
    """
    butler = repo if isinstance(repo, Butler) else Butler.from_config(repo)
    point = UnitVector3d(LonLat.fromDegrees(ra, dec))
    skypix = butler.dimensions.commonSkyPix
    pixel = skypix.pixelization.index(point)
    refs = butler.query_datasets(
        LEVEL2_DATASET_TYPE,
        collections=collections,
        where=f"{skypix.name} = pixel",
        bind={"pixel": pixel},
        find_first=False,
        with_dimension_records=True,
        explain=False,
        limit=None,
    )
    hits = []
    for ref in refs:
        region = (
            ref.dataId.records["exposure_detector_region"]
            if "exposure_detector_region" in ref.dataId.records
            else None
        )
        if region is not None and not region.region.contains(point):
            continue
        wcs = butler.get(ref.makeComponentRef("wcs"))
        x, y = (float(v) for v in wcs.world_to_pixel_values(ra, dec))
        ny, nx = wcs.array_shape or (None, None)
        if ny is not None and not (-0.5 <= x < nx - 0.5 and -0.5 <= y < ny - 0.5):
            continue
        wavelength, bandwidth = _wavelength_at(butler, ref, x, y, (ny, nx) if ny is not None else None)
        hits.append(SpectralImageHit(ref, x, y, wavelength, bandwidth))
    return sorted(hits, key=lambda h: (h.ref.dataId["exposure"], h.ref.dataId["detector"]))


def _wavelength_at(
    butler: Butler, ref: DatasetRef, x: float, y: float, shape: tuple[int, int] | None
) -> tuple[float, float]:
    """Return the wavelength and bandwidth at a fractional pixel from the 2 x 2 pixels around it.

    ``WCS-WAVE`` is bilinear between control points at whole 1-based pixels, so between four neighbouring
    pixel centres it is one bilinear function: interpolating their values gives what wcslib's
    ``WAVE-TAB`` lookup (IRSA's recipe) gives at ``(x, y)``, reading 4 pixels of the maps.
    """
    ny, nx = shape if shape is not None else (None, None)
    # In the outer half of an edge pixel the edge cell is extrapolated, as wcslib does beyond the end nodes.
    column, row = max(int(np.floor(x)), 0), max(int(np.floor(y)), 0)
    if nx:
        column = min(column, max(nx - 2, 0))
    if ny:
        row = min(row, max(ny - 2, 0))
    maps = butler.get(
        ref.makeComponentRef("wavelength"),
        parameters={"slices": (slice(row, row + 2), slice(column, column + 2))},
    ).astype(float)
    t, s = x - column, y - row
    if maps.shape[2] == 1:
        maps, t = np.repeat(maps, 2, axis=2), 0.0
    if maps.shape[1] == 1:
        maps, s = np.repeat(maps, 2, axis=1), 0.0
    value = (1 - s) * ((1 - t) * maps[:, 0, 0] + t * maps[:, 0, 1]) + s * (
        (1 - t) * maps[:, 1, 0] + t * maps[:, 1, 1]
    )
    return float(value[0]), float(value[1])
