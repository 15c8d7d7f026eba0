"""The common skypix's envelope of a footprint holds every HEALPix pixel the footprint touches."""

from __future__ import annotations

import hpgeom
import lsst.sphgeom as sphgeom
import numpy as np
import pytest
from astropy.wcs import WCS
from hypothesis import given, settings
from hypothesis import strategies as st

from spherex.geom import HealpixPixelization
from spherex.instrument.observation import sky_footprint

LEVEL = 8
FINE_LEVEL = 14  # 4096 sub-pixels per level-8 pixel, ~50 arcsec apart


def footprint(ra: float, dec: float, size_deg: float, rotation_deg: float) -> sphgeom.ConvexPolygon:
    """The footprint of a 2040x2040 array, ``size_deg`` on a side, as ingest computes it from the WCS."""
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [ra, dec]
    wcs.wcs.crpix = [1020.5, 1020.5]
    scale = size_deg / 2040
    cos, sin = np.cos(np.radians(rotation_deg)), np.sin(np.radians(rotation_deg))
    wcs.wcs.cd = [[-scale * cos, scale * sin], [scale * sin, scale * cos]]
    return sky_footprint(wcs, (2040, 2040))


def pixels(ranges: sphgeom.RangeSet) -> set[int]:
    return {pixel for begin, end in ranges.ranges() for pixel in range(begin, end)}


def touches(region: sphgeom.ConvexPolygon, pixel: int) -> bool:
    """Whether any of the pixel's level-14 sub-pixel centres lies in ``region``."""
    shift = 4 ** (FINE_LEVEL - LEVEL)
    lon, lat = hpgeom.pixel_to_angle(2**FINE_LEVEL, np.arange(pixel * shift, (pixel + 1) * shift))
    return bool(region.contains(np.radians(lon), np.radians(lat)).any())


footprints = st.builds(
    footprint,
    ra=st.floats(0, 360, exclude_max=True),
    dec=st.floats(-89.5, 89.5),
    size_deg=st.sampled_from([0.05, 0.5, 3.5]),
    rotation_deg=st.floats(0, 90),
)


@settings(max_examples=40, deadline=None)
@given(region=footprints)
def test_envelope_misses_no_pixel_sphgeom_finds_overlapping(region: sphgeom.ConvexPolygon) -> None:
    ours = pixels(HealpixPixelization(LEVEL).envelope(region))
    theirs = pixels(sphgeom.HealpixPixelization(LEVEL).envelope(region))
    # sphgeom's envelope is dilated by one neighbour: what only it has must not touch the region.
    assert not [pixel for pixel in theirs - ours if touches(region, pixel)]
    # The pixel of every corner and of the centre is in the envelope.
    for vertex in [*region.getVertices(), region.getCentroid()]:
        assert HealpixPixelization(LEVEL).index(vertex) in ours


def test_polygon_with_collinear_corners_falls_back_to_sphgeom() -> None:
    # The hull of arrays side by side keeps the corners on their shared straight edge (here a meridian,
    # a great circle); HEALPix's query refuses such a polygon ("degenerate corner").
    corners = []
    for dec in (-3.5, 0.0, 3.5):  # three 3.5-deg arrays stacked in declination, at RA 14
        half_ra = 1.75 / np.cos(np.radians(dec))
        corners += [(14 - half_ra, dec - 1.75), (14 + half_ra, dec - 1.75)]
        corners += [(14 + half_ra, dec + 1.75), (14 - half_ra, dec + 1.75)]
    region = sphgeom.ConvexPolygon.convexHull(
        [sphgeom.UnitVector3d(sphgeom.LonLat.fromDegrees(*corner)) for corner in corners]
    )
    vertices = [sphgeom.LonLat(vertex) for vertex in region.getVertices()]
    lon = np.array([vertex.getLon().asDegrees() for vertex in vertices])
    lat = np.array([vertex.getLat().asDegrees() for vertex in vertices])
    with pytest.raises(RuntimeError, match="degenerate"):
        hpgeom.query_polygon(2**LEVEL, lon, lat, inclusive=True)
    assert pixels(HealpixPixelization(LEVEL).envelope(region)) == pixels(
        sphgeom.HealpixPixelization(LEVEL).envelope(region)
    )


def test_other_regions_use_sphgeoms_envelope() -> None:
    circle = sphgeom.Circle(
        sphgeom.UnitVector3d(sphgeom.LonLat.fromDegrees(10, 20)), sphgeom.Angle.fromDegrees(1)
    )
    assert pixels(HealpixPixelization(LEVEL).envelope(circle)) == pixels(
        sphgeom.HealpixPixelization(LEVEL).envelope(circle)
    )


def test_universe_uses_it_for_the_common_skypix(repo: str) -> None:
    from lsst.daf.butler import Butler

    with Butler.from_config(repo) as butler:
        common = butler.dimensions.commonSkyPix
        assert common.name == "healpix7"  # universe version 3 (healpix8 in version 2)
        assert isinstance(common.pixelization, HealpixPixelization)
