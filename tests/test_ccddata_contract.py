"""`SPHERExImage` is a `CCDData`: what users of CCDData do (astropy's documented examples) gives what
CCDData gives, except the deliberate differences the README's compatibility table names."""

from __future__ import annotations

import warnings
from pathlib import Path

import astropy.units as u
import numpy as np
import pytest
from astropy.io import fits
from astropy.nddata import CCDData, StdDevUncertainty, VarianceUncertainty
from astropy.wcs import WCS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spherex.core import FitsLayoutError, SPHERExImage, SPHERExImageError
from spherex.core.image.header_reader import UnusableWcsWarning

SHAPE = (4, 5)
OPERATIONS = ("add", "subtract", "multiply", "divide")
UNITS = (u.adu, u.electron / u.s, u.MJy / u.sr)


def pair(data: np.ndarray, unit: u.UnitBase, variance: np.ndarray) -> tuple[CCDData, SPHERExImage]:
    ccd = CCDData(data, unit=unit, uncertainty=VarianceUncertainty(variance.copy()))
    ours = SPHERExImage(data.copy(), unit=unit, uncertainty=VarianceUncertainty(variance.copy()))
    return ccd, ours


def outcome(image: CCDData, operation: str, operand: object) -> tuple[str, object]:
    try:
        result = getattr(image, operation)(operand)
    except Exception as err:  # the exception class is the outcome compared
        return "raises", type(err).__name__
    uncertainty = None if result.uncertainty is None else np.asarray(result.uncertainty.array)
    return "value", (np.asarray(result.data), result.unit, uncertainty, type(result.uncertainty))


def assert_same(expected: tuple[str, object], got: tuple[str, object]) -> None:
    assert expected[0] == got[0], (expected, got)
    if expected[0] == "raises":
        assert expected[1] == got[1]
        return
    (data, unit, uncertainty, kind), (data2, unit2, uncertainty2, kind2) = expected[1], got[1]
    np.testing.assert_allclose(data2, data, rtol=1e-6, equal_nan=True)
    assert unit2 == unit
    assert kind2 is kind
    if uncertainty is not None:
        np.testing.assert_allclose(uncertainty2, uncertainty, rtol=1e-6, equal_nan=True)


finite = st.floats(0.5, 100.0, allow_nan=False)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    operation=st.sampled_from(OPERATIONS),
    unit=st.sampled_from(UNITS),
    kind=st.sampled_from(
        ["scalar", "array", "quantity same unit", "quantity other unit", "dimensionless", "image"]
    ),
    value=finite,
    seed=st.integers(0, 2**16),
)
def test_arithmetic_gives_what_ccddata_gives(
    operation: str, unit: u.UnitBase, kind: str, value: float, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    data = rng.uniform(1, 10, SHAPE)
    ccd, ours = pair(data, unit, rng.uniform(0.1, 1, SHAPE))
    if kind == "scalar":
        operands = (value, value)
    elif kind == "array":
        array = rng.uniform(1, 10, SHAPE)
        operands = (array, array.copy())
    elif kind == "quantity same unit":
        operands = (value * unit, value * unit)
    elif kind == "quantity other unit":
        operands = (value * u.s, value * u.s)
    elif kind == "dimensionless":
        operands = (value * u.dimensionless_unscaled,) * 2
    else:
        other_ccd, other_ours = pair(rng.uniform(1, 10, SHAPE), unit, rng.uniform(0.1, 1, SHAPE))
        operands = (other_ccd, other_ours)
    assert_same(outcome(ccd, operation, operands[0]), outcome(ours, operation, operands[1]))


def test_astropy_documented_arithmetic_examples() -> None:
    # astropy's CCDData documentation, "Arithmetic with images": scaling, a Quantity, another image.
    ccd = SPHERExImage(np.arange(10, dtype=float).reshape(2, 5), unit="adu")
    assert ccd.multiply(0.2).unit == u.adu  # was "adu electron / s"
    np.testing.assert_allclose(ccd.multiply(0.2).data, 0.2 * np.arange(10).reshape(2, 5))
    assert ccd.multiply(0.2 * u.adu).unit == u.adu**2
    assert ccd.add(3 * u.adu).data[0, 0] == 3.0
    bias = np.full((2, 5), 1.5)
    assert ccd.subtract(bias * u.adu).data[0, 0] == -1.5
    flat = SPHERExImage(np.full((2, 5), 2.0), unit=u.dimensionless_unscaled)
    assert ccd.divide(flat).unit == u.adu and ccd.divide(flat).data[0, 1] == 0.5
    # A plain array added to an image with a unit: CCDData refuses it (units differ), and so do we.
    with pytest.raises(u.UnitConversionError):
        CCDData(np.ones((2, 5)), unit="adu").add(bias)
    with pytest.raises(u.UnitConversionError):
        ccd.add(bias)


def test_uncertainty_propagates_as_in_ccddata() -> None:
    data, variance = np.full(SHAPE, 4.0), np.full(SHAPE, 0.25)
    ccd = CCDData(data, unit="adu", uncertainty=StdDevUncertainty(np.sqrt(variance)))
    ours = SPHERExImage(data, unit="adu", uncertainty=StdDevUncertainty(np.sqrt(variance)))
    for operation in OPERATIONS:
        expected = getattr(ccd, operation)(ccd).uncertainty.array
        np.testing.assert_allclose(getattr(ours, operation)(ours).uncertainty.array, expected)


def test_failed_arithmetic_leaves_images_needing_a_unit() -> None:
    # CCDData's own arithmetic leaves astropy's unit rule off when it raises; ours restores it, so a
    # unit mismatch in one step does not make every later image of the process unit-less.
    image = SPHERExImage(np.ones(SHAPE), unit="electron/s")
    with pytest.raises(u.UnitConversionError):
        image.add(SPHERExImage(np.ones(SHAPE), unit="Jy"))
    assert SPHERExImage(np.zeros(SHAPE)).unit == u.electron / u.s
    with pytest.raises(ValueError, match="unit"):
        CCDData(np.zeros(SHAPE))


def test_flags_are_ored_and_keep_their_names() -> None:
    a = SPHERExImage(np.ones(SHAPE), unit="adu", flags=np.full(SHAPE, 0b01), flag_defs={"HOT": 0, "COLD": 1})
    b = SPHERExImage(np.ones(SHAPE), unit="adu", flags=np.zeros(SHAPE, int), flag_defs={"COLD": 1})
    b.flags[0, 0] = 0b10
    result = a.add(b)
    assert result.flags[0, 0] == 0b11 and result.flags[1, 1] == 0b01
    assert result.flag_defs == {"HOT": 0, "COLD": 1}
    assert a.multiply(2.0).flags[2, 2] == 0b01  # a number carries no flags; the image's stay
    with pytest.raises(SPHERExImageError, match="flag definitions differ"):
        a.add(SPHERExImage(np.ones(SHAPE), unit="adu", flags=np.zeros(SHAPE, int), flag_defs={"HOT": 3}))


def write_primary(path: Path, header: dict, data: np.ndarray | None = None) -> Path:
    fits.PrimaryHDU(np.ones(SHAPE, np.float32) if data is None else data, fits.Header(header)).writeto(path)
    return path


@pytest.mark.parametrize(
    ("bunit", "unit"), [("ELECTRONS/S", u.electron / u.s), ("ADU", u.adu), ("MJy/sr", u.MJy / u.sr)]
)
def test_bunit_spellings_read_as_ccddata_reads_them(tmp_path: Path, bunit: str, unit: u.UnitBase) -> None:
    path = write_primary(tmp_path / "x.fits", {"BUNIT": bunit})
    assert CCDData.read(path).unit == unit
    assert SPHERExImage.read(path).unit == unit


def test_unreadable_bunit_is_refused_like_ccddata(tmp_path: Path) -> None:
    path = write_primary(tmp_path / "x.fits", {"BUNIT": "furlongs per fortnight"})
    with pytest.raises(ValueError, match="cannot be interpreted as"):
        CCDData.read(path)
    with pytest.raises(
        FitsLayoutError, match=r"x\.fits.*BUNIT = 'furlongs per fortnight' cannot be interpreted"
    ):
        SPHERExImage.read(path)
    # The remedy CCDData's message gives works here too.
    assert SPHERExImage.read(path, unit="adu").unit == u.adu


def sky_header() -> fits.Header:
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [150.0, 2.0]
    wcs.wcs.crpix = [3.0, 2.5]
    wcs.wcs.cdelt = [-0.0017, 0.0017]
    return wcs.to_header()


def test_wcs_cards_in_meta_are_written_as_the_wcs(tmp_path: Path) -> None:
    header = sky_header()
    header["OBJECT"] = "field"
    image = SPHERExImage(np.ones(SHAPE), unit="adu", meta=header)  # a WCS in meta only, as from a header
    image.write(tmp_path / "x.fits")
    back = SPHERExImage.read(tmp_path / "x.fits")
    assert back.wcs is not None and back.meta["OBJECT"] == "field"
    np.testing.assert_allclose(back.wcs.pixel_to_world_values(0, 0), WCS(header).pixel_to_world_values(0, 0))


def test_wcs_cards_in_meta_replaced_by_the_wcs_are_named(tmp_path: Path) -> None:
    header = sky_header()
    header["CD1_1"] = 0.5  # a second, conflicting description of the same WCS
    image = SPHERExImage(np.ones(SHAPE), unit="adu", meta=header, wcs=WCS(sky_header()))
    with pytest.warns(UserWarning, match="CD1_1"):
        image.write(tmp_path / "x.fits")


def test_unusable_wcs_reads_pixels_without_it(tmp_path: Path) -> None:
    path = write_primary(tmp_path / "x.fits", {"BUNIT": "adu", "CTYPE1": "RA---TAN", "CTYPE2": "RA---TAN"})
    assert CCDData.read(path).wcs is None
    with pytest.warns(UnusableWcsWarning, match=r"x\.fits.*read without a WCS"):
        image = SPHERExImage.read(path)
    assert image.wcs is None and image.meta["CTYPE2"] == "RA---TAN" and image.shape == SHAPE
    # Written again, the cards come back unchanged rather than being lost.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnusableWcsWarning)
        image.write(tmp_path / "again.fits")
        assert SPHERExImage.read(tmp_path / "again.fits").meta["CTYPE2"] == "RA---TAN"


def test_psf_kernel_round_trips_as_ccddata_writes_it(tmp_path: Path) -> None:
    kernel = np.outer(np.hanning(5), np.hanning(5)).astype(np.float32)
    image = SPHERExImage(np.ones(SHAPE), unit="adu", psf=kernel)
    image.write(tmp_path / "x.fits")
    np.testing.assert_array_equal(SPHERExImage.read(tmp_path / "x.fits").psf, kernel)
    np.testing.assert_array_equal(CCDData.read(tmp_path / "x.fits", hdu="IMAGE").psf, kernel)
    ccd_file = tmp_path / "ccd.fits"
    CCDData(np.ones(SHAPE), unit="adu", psf=kernel).write(ccd_file)
    np.testing.assert_array_equal(SPHERExImage.read(ccd_file).psf, kernel)


def test_as_image_hdu(tmp_path: Path) -> None:
    image = SPHERExImage(np.ones(SHAPE), unit="adu")
    image.write(tmp_path / "x.fits", as_image_hdu=True)  # a bare TypeError from writeto before
    with fits.open(tmp_path / "x.fits") as hdul:
        assert hdul[0].data is None and hdul[1].name == "IMAGE"
    with pytest.raises(SPHERExImageError, match="as_image_hdu=False"):
        image.write(tmp_path / "y.fits", as_image_hdu=False)
    assert not (tmp_path / "y.fits").exists()


def test_plain_hdu_list_with_a_named_image_extension(tmp_path: Path) -> None:
    # An empty PRIMARY and the image in an extension named SCI, as HST writes it.
    header = sky_header()
    header["BUNIT"] = "ELECTRONS/S"
    data = np.arange(20, dtype=np.float32).reshape(SHAPE)
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(data, header, name="SCI")]).writeto(tmp_path / "hst.fits")
    ccd = CCDData.read(tmp_path / "hst.fits")
    image = SPHERExImage.read(tmp_path / "hst.fits")
    np.testing.assert_array_equal(image.data, ccd.data)
    assert image.unit == ccd.unit == u.electron / u.s
    assert image.wcs is not None and image.wcs.wcs.ctype[0] == "RA---TAN"
    # A file whose only image extension is its flags is still not read as an image.
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(np.zeros(SHAPE, np.int32), name="FLAGS")]).writeto(
        tmp_path / "flags.fits"
    )
    with pytest.raises(FitsLayoutError, match="no IMAGE HDU"):
        SPHERExImage.read(tmp_path / "flags.fits")


@pytest.mark.parametrize(
    "keywords",
    [
        {},
        {"unit": "electron"},
        {"hdu": 0},
        {"hdu_uncertainty": None},
        {"hdu_mask": None},
        {"hdu_psf": None},
        {"hdu_uncertainty": "UNCERT", "hdu_mask": "MASK", "key_uncertainty_type": "UTYPE"},
    ],
    ids=repr,
)
def test_reader_keywords_as_ccddata_read(tmp_path: Path, keywords: dict) -> None:
    # A file CCDData wrote (image in PRIMARY, UNCERT with UTYPE, MASK, PSFIMAGE), read with the same
    # keywords by both readers.
    rng = np.random.default_rng(5)
    source = CCDData(
        rng.uniform(1, 2, SHAPE).astype(np.float32),
        unit="adu",
        uncertainty=StdDevUncertainty(rng.uniform(0.1, 0.2, SHAPE).astype(np.float32)),
        mask=rng.uniform(size=SHAPE) > 0.7,
        psf=np.ones((3, 3), np.float32) / 9,
        meta={"OBJECT": "m31"},
        wcs=WCS(sky_header()),
    )
    path = tmp_path / "ccd.fits"
    source.write(path)
    expected, got = CCDData.read(path, **keywords), SPHERExImage.read(path, **keywords)
    np.testing.assert_array_equal(got.data, expected.data)
    assert got.unit == expected.unit and got.meta["OBJECT"] == expected.meta["OBJECT"]
    for plane in ("mask", "psf"):
        if getattr(expected, plane) is None:
            assert getattr(got, plane) is None, plane
        else:
            np.testing.assert_array_equal(getattr(got, plane), getattr(expected, plane))
    if expected.uncertainty is None:
        assert got.uncertainty is None
    else:
        assert type(got.uncertainty) is type(expected.uncertainty)
        np.testing.assert_allclose(got.uncertainty.array, expected.uncertainty.array)
    np.testing.assert_allclose(got.wcs.pixel_to_world_values(1, 2), expected.wcs.pixel_to_world_values(1, 2))
