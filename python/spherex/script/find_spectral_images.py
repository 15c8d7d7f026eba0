"""Spatial and spectral queries of Level-2 spectral images: who sees a sky position, at what wavelength."""

from __future__ import annotations

__all__ = ["SpectralImageHit", "find_spectral_images"]

from dataclasses import dataclass

from lsst.daf.butler import Butler, DatasetRef
from lsst.sphgeom import LonLat, UnitVector3d

from .ingest_spherex import LEVEL2_DATASET_TYPE


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
        Central wavelength and bandwidth (micron) of that pixel.
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
        Sorted by time then detector.  The registry narrows the search (``healpix8`` pixel, then each
        array's footprint); only the WCS and a 1-pixel cutout of the wavelength map of each candidate
        are read.
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
        column, row = int(round(x)), int(round(y))
        maps = butler.get(
            ref.makeComponentRef("wavelength"),
            parameters={"slices": (slice(row, row + 1), slice(column, column + 1))},
        )
        hits.append(SpectralImageHit(ref, x, y, float(maps[0, 0, 0]), float(maps[1, 0, 0])))
    return sorted(hits, key=lambda h: (h.ref.dataId["exposure"], h.ref.dataId["detector"]))
