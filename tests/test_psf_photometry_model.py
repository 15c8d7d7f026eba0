"""The PSF stamp and photometric units shared by the simulator and forced spectrophotometry."""

from __future__ import annotations

import numpy as np
import pytest
from astropy import units as u
from astropy.wcs import WCS

from spherex.core import (
    Level2PSF,
    SPHERExImageError,
    SPHERExLevel2Image,
    microjansky_to_mjy_per_sr,
    mjy_per_sr_to_microjansky,
    pixel_solid_angle,
    psf_stamp,
)

OVERSAMPLING = 10


def _gaussian(n: int, sigma_x: float, sigma_y: float) -> np.ndarray:
    """An oversampled elliptical Gaussian, axes along x and y, centred on the middle pixel."""
    grid = np.arange(n) - (n - 1) / 2
    return np.exp(-(grid[None, :] ** 2) / (2 * sigma_x**2) - grid[:, None] ** 2 / (2 * sigma_y**2))


def _image(size: int = 64) -> SPHERExLevel2Image:
    """A two-zone image: a narrow round PSF left of the middle column, a wide elongated one right."""
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [150.0, 2.0]
    wcs.wcs.crpix = [(size + 1) / 2, (size + 1) / 2]
    wcs.wcs.cdelt = [-6.15 / 3600, 6.15 / 3600]
    cube = np.stack([_gaussian(61, 6.0, 6.0), 3.0 * _gaussian(61, 12.0, 8.0)])
    psf = Level2PSF(cube, [size / 4, 3 * size / 4], [size / 2, size / 2], oversampling=OVERSAMPLING)
    return SPHERExLevel2Image(np.zeros((size, size), np.float32), unit=u.MJy / u.sr, wcs=wcs, psf_model=psf)


def test_stamp_holds_all_the_flux_centred_on_the_source():
    image = _image()
    for x, y in [(20.0, 30.0), (20.37, 30.81), (44.5, 12.49)]:
        stamp, bbox = psf_stamp(image, x, y, half_size=5)
        assert stamp.shape == image.data[bbox].shape == (11, 11)
        assert stamp.sum() == pytest.approx(1.0, abs=1e-12)
        rows, columns = np.mgrid[bbox]
        assert (stamp * columns).sum() == pytest.approx(x, abs=2e-3)
        assert (stamp * rows).sum() == pytest.approx(y, abs=2e-3)


def test_stamp_integrates_each_pixel_of_the_oversampled_psf():
    # At an integer position, pixel (x, y) collects oversampled pixels 25.5-35.5 of a 61-pixel plane,
    # counting the two edge rows and columns by half.
    image = _image()
    stamp, bbox = psf_stamp(image, 20.0, 30.0, half_size=3)
    plane = image.psf_at(20.0, 30.0)
    weights = np.ones(11)
    weights[[0, -1]] = 0.5
    expected = weights @ plane[25:36, 25:36] @ weights / plane.sum()
    assert stamp[3, 3] == pytest.approx(expected, rel=1e-12)


def test_stamp_uses_the_zone_psf_at_picks():
    image = _image()
    narrow, _ = psf_stamp(image, 10.0, 32.0, half_size=4)
    wide, _ = psf_stamp(image, 50.0, 32.0, half_size=4)
    # The wide zone spreads the light: a smaller peak, and more light along x than along y.
    assert narrow[4, 4] > 1.5 * wide[4, 4]
    assert wide[4, 5] > wide[5, 4]
    # The normalisation does not depend on the cube's own scale (the wide plane is multiplied by 3).
    assert wide.sum() == pytest.approx(1.0, abs=1e-6)


def test_stamp_of_a_cutout_equals_that_of_its_parent():
    image = _image()
    cutout = image[10:50, 25:60]
    parent, parent_box = psf_stamp(image, 40.3, 22.6, half_size=4)
    child, child_box = psf_stamp(cutout, 15.3, 12.6, half_size=4)
    np.testing.assert_allclose(child, parent, rtol=0, atol=1e-15)
    assert (child_box[0].start + 10, child_box[1].start + 25) == (parent_box[0].start, parent_box[1].start)


def test_stamp_cut_at_the_image_edge():
    image = _image()
    stamp, bbox = psf_stamp(image, 0.2, 63.4, half_size=5)
    assert stamp.shape == image.data[bbox].shape == (6, 6)
    assert 0.2 < stamp.sum() < 0.5
    empty, empty_box = psf_stamp(image, -30.0, 10.0, half_size=5)
    assert empty.size == 0 and image.data[empty_box].size == 0


def test_stamp_rejects_bad_positions_and_images_without_psf():
    image = _image()
    with pytest.raises(SPHERExImageError, match="non-finite"):
        psf_stamp(image, np.nan, 3.0, half_size=3)
    with pytest.raises(SPHERExImageError, match="no PSF"):
        psf_stamp(SPHERExLevel2Image(np.zeros((8, 8))), 3.0, 3.0, half_size=3)


def test_pixel_solid_angle_from_the_wcs():
    image = _image()
    nominal = (6.15 * u.arcsec).to_value(u.rad) ** 2
    assert pixel_solid_angle(image.wcs, 31.5, 31.5) == pytest.approx(nominal, rel=1e-8)
    # A gnomonic pixel far from the tangent point is smaller on the sky.
    assert pixel_solid_angle(image.wcs, 3000.0, 31.5) < pixel_solid_angle(image.wcs, 31.5, 31.5)
    corners = pixel_solid_angle(image.wcs, np.array([0.0, 63.0]), np.array([0.0, 63.0]))
    assert corners.shape == (2,)


def test_unit_conversions_round_trip():
    omega = pixel_solid_angle(_image().wcs, 10.0, 10.0)
    # 1 microJy spread over one 6.15 arcsec pixel is 1e-12 MJy / 8.9e-10 sr.
    assert microjansky_to_mjy_per_sr(1.0, omega) == pytest.approx(1e-12 / omega)
    assert mjy_per_sr_to_microjansky(microjansky_to_mjy_per_sr(123.4, omega), omega) == pytest.approx(123.4)
