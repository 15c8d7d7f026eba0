"""Sky footprints of images from their FITS WCS, through wcslib alone where astropy's WCS is not needed."""

from __future__ import annotations

__all__ = ["wcs_footprint"]

import re
import warnings

import numpy as np
from astropy.io import fits
from astropy.wcs import Wcsprm
from lsst.sphgeom import ConvexPolygon, LonLat, UnitVector3d

# Keywords of distortions (SIP, lookup tables, TPV/TNX polynomials) that wcslib alone does not apply.
_DISTORTION = re.compile(
    r"^(A_ORDER|B_ORDER|AP_ORDER|BP_ORDER|CPDIS\d|CQDIS\d|D2IMDIS\d|D2IMERR\d|DP\d|DQ\d|PV\d+_\d+|WAT\d_\d+)"
)


def wcs_footprint(image: fits.Header, shape: tuple[int, int]) -> ConvexPolygon | None:
    """Return the sky footprint of a 2-d image with a plain celestial WCS, through wcslib alone.

    The same polygon as `sky_footprint` of ``astropy.wcs.WCS(image)`` (whose construction, with its
    checks for distortions and its header fixes, costs 3-4 ms per file) for a header that has no
    distortion (no SIP, lookup-table or polynomial keywords) and a celestial CTYPE pair.

    Parameters
    ----------
    image : `astropy.io.fits.Header`
        The image header.
    shape : `tuple` [`int`, `int`]
        Image shape in numpy order (rows, columns).

    Returns
    -------
    region : `lsst.sphgeom.ConvexPolygon` or `None`
        Polygon through the outer corners of the corner pixels; `None` if the header needs astropy's
        full WCS (distortions, more than two axes, no celestial pair, anything wcslib complains about),
        or if a corner does not map onto the sky.
    """
    if image.get("WCSAXES", 2) != 2 or any(_DISTORTION.match(key) for key in image):
        return None
    ctypes = (str(image.get("CTYPE1", "")), str(image.get("CTYPE2", "")))
    if "-SIP" in ctypes[0] + ctypes[1]:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            wcsprm = Wcsprm(header=image.tostring().encode("ascii"), relax=True)
            wcsprm.fix()
            if (wcsprm.lng, wcsprm.lat) not in ((0, 1), (1, 0)):
                return None
            ny, nx = shape
            corners = np.array([[-0.5, -0.5], [nx - 0.5, -0.5], [nx - 0.5, ny - 0.5], [-0.5, ny - 0.5]])
            world = wcsprm.p2s(corners, 0)["world"]
    except Exception:
        return None
    lon, lat = world[:, wcsprm.lng], world[:, wcsprm.lat]
    if not (np.isfinite(lon).all() and np.isfinite(lat).all()):
        return None
    return ConvexPolygon(
        [UnitVector3d(LonLat.fromDegrees(float(a), float(d))) for a, d in zip(lon, lat, strict=True)]
    )
