"""FITS files in the layouts the 2020 proof of concept wrote, built with plain astropy calls.

Facts about the 2020 layouts come from the public source of Caltech-IPAC/spherex_butler_poc
(``python/spherex/core/spherex_image.py`` and ``tests/test_spherex_image.py``, 2020): its final writer
put a header-only PRIMARY HDU first, then the image in an *unnamed* image extension carrying the CCDData
header (``BUNIT``, WCS, metadata), then ``FLAGS`` (with ``EXTTYPE = 'MASK'`` and ``MP_<NAME>`` /
``HIERARCH MP_<NAME>`` flag bits) as HDU 2, then ``VARIANCE`` (with ``UTYPE``) and ``MASK``; its reader
defaulted to ``hdu_flags=2`` and ``hdu_uncertainty=3``.  Its test file ``tests/data/small.fits`` held an
int32 ``FLAGS`` plane with a ``BLANK`` card and nine flag definitions.  The original file is not in the
stored source, so ``small.fits`` here is made by `write_small_fits`: its pixel values, header values and
the two flag names beyond the 2020 ``FLAG_DEFS`` (``NONLINEAR``, ``SOURCE``) are made up.

Regenerate the committed copy with::

    python tests/compat_2020_files.py tests/data/small.fits

(``tests/test_compat_2020.py`` checks that the committed file holds the layout and the planes this
writes.)
"""

from __future__ import annotations

__all__ = ["FLAG_DEFS_2020", "SMALL_BLANK", "write_2020_layout", "write_small_fits"]

import sys
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

FLAG_DEFS_2020 = {
    # FLAG_DEFS of the 2020 spherex/core/spherex_image.py.
    "SATURATED": 0,
    "COSMICRAY": 1,
    "NONFUNC": 2,
    "HOT": 3,
    "OUTLIER": 4,
    "DARKREF": 5,
    "PERSISTENT": 6,
    # Made up: small.fits had nine flags, whose other names are not public.
    "NONLINEAR": 7,
    "SOURCE": 8,
}
SMALL_BLANK = -(2**31)
"""``BLANK`` of the int32 FLAGS plane (made up; any integer would do)."""


def _wcs(shape: tuple[int, int]) -> WCS:
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [150.1, 2.2]
    wcs.wcs.crpix = [shape[1] / 2 + 0.5, shape[0] / 2 + 0.5]
    wcs.wcs.cdelt = [-6.2 / 3600, 6.2 / 3600]
    return wcs


def write_2020_layout(
    path: str | Path,
    image: np.ndarray,
    flags: np.ndarray,
    variance: np.ndarray,
    *,
    blank: int | None = SMALL_BLANK,
    bunit: str | None = "electron/s",
    mask: np.ndarray | None = None,
    flag_defs: dict[str, int] = FLAG_DEFS_2020,
) -> None:
    """Write planes in the 2020 writer's layout with astropy alone.

    Parameters
    ----------
    path : `str` or `pathlib.Path`
        Output file.
    image, flags, variance : `numpy.ndarray`
        The planes; ``flags`` is written as int32.
    blank : `int`, optional
        ``BLANK`` card of the FLAGS HDU (astropy then reads the plane as floats with NaN).
    bunit : `str`, optional
        ``BUNIT`` of the image extension.
    mask : `numpy.ndarray`, optional
        Boolean mask, written as uint8 ``MASK`` after ``VARIANCE``.
    flag_defs : `dict` [`str`, `int`], optional
        Flag bits, written as the 2020 writer wrote them (``HIERARCH`` for names of six characters or
        more).
    """
    image_header = _wcs(image.shape).to_header()
    if bunit is not None:
        image_header["BUNIT"] = bunit
    image_header["OBSID"] = ("sim-2020", "made up")
    image_header["EXPTIME"] = (112.0, "made up")
    flags_header = fits.Header([("EXTTYPE", "MASK")])
    for name, bit in flag_defs.items():
        flags_header[f"{'MP_' if len(name) < 6 else 'HIERARCH MP_'}{name}"] = bit
    if blank is not None:
        flags_header["BLANK"] = blank
    variance_header = fits.Header([("UTYPE", "VarianceUncertainty")])
    hdus = [
        fits.PrimaryHDU(),
        fits.ImageHDU(image, image_header),
        fits.ImageHDU(np.asarray(flags, dtype=np.int32), flags_header, name="FLAGS"),
        fits.ImageHDU(variance, variance_header, name="VARIANCE"),
    ]
    if mask is not None:
        hdus.append(fits.ImageHDU(np.asarray(mask, dtype=np.uint8), name="MASK"))
    fits.HDUList(hdus).writeto(path, overwrite=True)


def small_planes() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the (made-up) image, flags and variance of ``small.fits``: 16x20 pixels, seeded."""
    rng = np.random.default_rng(2020)
    shape = (16, 20)
    image = rng.normal(10.0, 1.0, shape).astype(np.float32)
    flags = rng.integers(0, 2**9, shape).astype(np.int32)
    flags[0, :3] = SMALL_BLANK  # pixels equal to BLANK, which astropy turns into NaN
    variance = rng.uniform(0.5, 1.5, shape).astype(np.float32)
    return image, flags, variance


def write_small_fits(path: str | Path) -> None:
    """Write a file like the 2020 original's ``tests/data/small.fits``.

    Parameters
    ----------
    path : `str` or `pathlib.Path`
        Output file.
    """
    write_2020_layout(path, *small_planes())


if __name__ == "__main__":
    write_small_fits(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent / "data" / "small.fits")
