"""Tests of spherex.core: the SPHERExImage model, its FITS layout and the errors for bad input."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import warnings
from pathlib import Path

import astropy.units as u
import numpy as np
import pytest
from astropy.io import fits
from astropy.nddata import CCDData, StdDevUncertainty, VarianceUncertainty
from astropy.wcs import WCS, WCSHDO_P17, WCSHDO_all
from astropy.wcs.wcs import WCSHDO_SIP
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from spherex.core import (
    DEFAULT_UNIT,
    LEVEL2_FLAG_BITS,
    FitsLayoutError,
    SPHERExImage,
    SPHERExImageError,
    SPHERExImageFitsReader,
)

FITSVERIFY = shutil.which("fitsverify")
needs_fitsverify = pytest.mark.skipif(
    FITSVERIFY is None, reason="fitsverify is not installed (Debian/Ubuntu: apt-get install fitsverify)"
)

META = {
    "DATE-OBS": ("2025-05-01T12:34:56.789", "Start of the exposure (UTC)"),
    "EXPTIME": (112.0, "[s] Integration time"),
    "OBSID": "2025W18_1B_0042_3",
    "DETECTOR": (2, "SPHEREx array"),
    "HIERARCH SPHEREX_PLANNING_PERIOD": "2025W18",
}


def make_wcs(shape: tuple[int, int], sip: bool = False) -> WCS:
    """Return a TAN (optionally TAN-SIP) WCS centred on an image of ``shape`` with 6.15" pixels."""
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN-SIP", "DEC--TAN-SIP"] if sip else ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [150.1, 2.2]
    wcs.wcs.crpix = [shape[1] / 2 + 0.5, shape[0] / 2 + 0.5]
    wcs.wcs.cd = np.array([[-6.15, 0.3], [0.2, 6.15]]) / 3600
    wcs.wcs.radesys = "ICRS"
    if sip:
        from astropy.wcs import Sip

        a = np.zeros((3, 3))
        b = np.zeros((3, 3))
        a[2, 0] = 1e-6
        b[0, 2] = -2e-6
        wcs.sip = Sip(a, b, None, None, wcs.wcs.crpix)
    return wcs


def make_image(
    shape: tuple[int, int] = (40, 50), seed: int = 1, mask: bool = False, sip: bool = False
) -> SPHERExImage:
    """Return a SPHEREx-like image: float32 MJy/sr, int32 flags with Level-2 bits, variance, WCS."""
    rng = np.random.default_rng(seed)
    data = rng.normal(1.0, 0.1, size=shape).astype(np.float32)
    flags = np.zeros(shape, dtype=np.int32)
    flags[rng.random(shape) < 0.1] |= 1 << LEVEL2_FLAG_BITS["HOT"]
    flags[rng.random(shape) < 0.05] |= 1 << LEVEL2_FLAG_BITS["SOURCE"]
    flags[0, 0] = np.int32(-(2**31))  # bit 31 set: the sign bit must survive
    return SPHERExImage(
        data,
        unit="MJy/sr",
        uncertainty=VarianceUncertainty(rng.uniform(0.01, 0.02, size=shape).astype(np.float32)),
        flags=flags,
        flag_defs=LEVEL2_FLAG_BITS,
        mask=(rng.random(shape) < 0.02) if mask else None,
        wcs=make_wcs(shape, sip=sip),
        meta=dict(META),
    )


def assert_same_image(actual: SPHERExImage, expected: SPHERExImage) -> None:
    """Assert bit-exact planes and equal unit, flag definitions, WCS and header cards."""
    assert isinstance(actual, SPHERExImage)
    assert_bit_exact(actual.data, expected.data)
    assert actual.unit == expected.unit
    if expected.uncertainty is None:
        assert actual.uncertainty is None
    else:
        assert isinstance(actual.uncertainty, VarianceUncertainty)
        assert_bit_exact(actual.uncertainty.array, expected.uncertainty.array)
        assert actual.uncertainty.unit == expected.unit**2
    if expected.flags is None:
        assert actual.flags is None
    else:
        # 32-bit signed bitmask; FITS data keep their big-endian byte order (no copy on read).
        assert actual.flags.dtype.kind == "i" and actual.flags.dtype.itemsize == 4
        assert_bit_exact(actual.flags, expected.flags)
    assert actual.flag_defs == expected.flag_defs
    if expected.mask is None:
        assert actual.mask is None
    else:
        np.testing.assert_array_equal(actual.mask, expected.mask)
    if expected.wcs is None:
        assert actual.wcs is None
    else:
        assert_same_wcs(actual.wcs, expected.wcs, expected.shape)
    assert meta_cards(actual.meta) == meta_cards(expected.meta)


def assert_same_wcs(actual: WCS, expected: WCS, shape: tuple[int, ...]) -> None:
    """Assert that two WCSs write the same header and map every pixel to the same sky position."""
    flags = WCSHDO_all | WCSHDO_P17 | WCSHDO_SIP
    assert dict(actual.to_header(relax=flags)) == dict(expected.to_header(relax=flags))
    assert (actual.sip is None) == (expected.sip is None)
    y, x = np.mgrid[0 : shape[0], 0 : shape[1]]
    for a, b in zip(actual.pixel_to_world_values(x, y), expected.pixel_to_world_values(x, y), strict=True):
        assert_bit_exact(a, b)


def assert_bit_exact(actual: np.ndarray, expected: np.ndarray) -> None:
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    assert actual.shape == expected.shape
    assert actual.dtype.newbyteorder("=") == expected.dtype.newbyteorder("=")
    native = expected.dtype.newbyteorder("=")
    assert actual.astype(native).tobytes() == expected.astype(native).tobytes()


def meta_cards(meta: object) -> list[tuple[str, object, str]]:
    """Return (keyword, value, comment) of the cards ``meta`` becomes in a FITS header."""
    header = meta if isinstance(meta, fits.Header) else fits.Header()
    if not isinstance(meta, fits.Header):
        for key, value in meta.items():
            keyword = key if len(key) <= 8 or key.startswith("HIERARCH ") else f"HIERARCH {key}"
            header.append(
                fits.Card(keyword, *value) if isinstance(value, tuple) else fits.Card(keyword, value)
            )
    # Parse each card back from its 80-character image, as a reader of the file would.
    return [
        (parsed.keyword, parsed.value, parsed.comment)
        for parsed in (fits.Card.fromstring(card.image) for card in header.cards)
    ]


def run_fitsverify(path: Path) -> str:
    """Run fitsverify on ``path`` and return its output; fail unless it reports 0 warnings, 0 errors."""
    result = subprocess.run([FITSVERIFY, str(path)], capture_output=True, text=True, check=False)
    summary = re.search(r"Verification found (\d+) warning\(s\) and (\d+) error\(s\)", result.stdout)
    assert summary is not None, result.stdout + result.stderr
    assert summary.groups() == ("0", "0"), result.stdout
    return result.stdout


# -- the in-memory model -----------------------------------------------------------------------------------


def test_constructor_defaults_to_electron_per_second() -> None:
    image = SPHERExImage(np.zeros((3, 4), dtype=np.float32))
    assert image.unit == u.electron / u.s == DEFAULT_UNIT
    assert image.flags is None
    assert image.flag_defs == {}


def test_constructor_keeps_given_unit_and_normalises_flags() -> None:
    flags = np.array([[0, 2**31], [1, 2**31 + 5]], dtype=np.uint32)
    image = SPHERExImage(np.zeros((2, 2)), unit="MJy/sr", flags=flags, flag_defs={"hot": 10})
    assert image.unit == u.MJy / u.sr
    assert image.flags.dtype == np.int32
    # Bits are preserved: uint32 is reinterpreted, not converted.
    np.testing.assert_array_equal(image.flags.view(np.uint32), flags)
    assert image.flag_defs == {"HOT": 10}


@pytest.mark.parametrize(
    ("flag_defs", "message"),
    [
        ({"HOT": 32}, "does not fit in the int32 FLAGS plane"),
        ({"HOT": -1}, "does not fit in the int32 FLAGS plane"),
        ({"HOT": 1.5}, "must be an integer"),
        ({"HOT PIXEL": 3}, "not usable in a FITS keyword"),
        ({"hot": 3, "HOT": 4}, "defined twice"),
    ],
)
def test_invalid_flag_definitions_raise(flag_defs: dict, message: str) -> None:
    with pytest.raises(SPHERExImageError, match=message):
        SPHERExImage(np.zeros((2, 2)), flags=np.zeros((2, 2), dtype=np.int32), flag_defs=flag_defs)


@pytest.mark.parametrize("plane", ["flags", "uncertainty", "mask"])
def test_planes_of_different_shapes_raise(plane: str) -> None:
    planes = {
        "flags": np.zeros((3, 3), dtype=np.int32),
        "uncertainty": VarianceUncertainty(np.ones((3, 3))),
        "mask": np.zeros((3, 3), dtype=bool),
    }
    with pytest.raises(SPHERExImageError, match=plane):
        SPHERExImage(np.zeros((2, 3)), **{plane: planes[plane]})


def test_float_flags_raise() -> None:
    with pytest.raises(SPHERExImageError, match="integer bitmask"):
        SPHERExImage(np.zeros((2, 2)), flags=np.zeros((2, 2), dtype=np.float32))


def test_flag_mask_selects_named_bits() -> None:
    image = make_image()
    hot = image.flag_mask("HOT")
    np.testing.assert_array_equal(hot, (image.flags & (1 << 10)) != 0)
    assert hot.any()
    either = image.flag_mask("hot", "source")
    np.testing.assert_array_equal(either, (image.flags & ((1 << 10) | (1 << 21))) != 0)
    with pytest.raises(KeyError, match="NOPE"):
        image.flag_mask("NOPE")


def test_slicing_cuts_every_plane_and_the_wcs() -> None:
    image = make_image(mask=True)
    cutout = image[5:15, 7:27]
    assert isinstance(cutout, SPHERExImage)
    np.testing.assert_array_equal(cutout.flags, image.flags[5:15, 7:27])
    np.testing.assert_array_equal(cutout.uncertainty.array, image.uncertainty.array[5:15, 7:27])
    np.testing.assert_array_equal(cutout.mask, image.mask[5:15, 7:27])
    assert cutout.flag_defs == image.flag_defs
    # Pixel (0, 0) of the cutout is pixel (x=7, y=5) of the image.
    sky_cutout = cutout.wcs.pixel_to_world(0, 0)
    sky_full = image.wcs.pixel_to_world(7, 5)
    assert sky_cutout.separation(sky_full).arcsec < 1e-9


# -- FITS round trips and layout ---------------------------------------------------------------------------


@pytest.mark.parametrize("mask", [False, True])
@pytest.mark.parametrize("sip", [False, True])
def test_write_read_round_trip_is_exact(tmp_path: Path, mask: bool, sip: bool) -> None:
    image = make_image(mask=mask, sip=sip)
    path = tmp_path / "image.fits"
    image.write(path)
    assert_same_image(SPHERExImage.read(path), image)
    assert_same_image(SPHERExImage.read(str(path), format="fits"), image)


def test_written_layout_matches_the_spherex_convention(tmp_path: Path) -> None:
    image = make_image()
    path = tmp_path / "image.fits"
    image.write(path)
    with fits.open(path) as hdul:
        assert [hdu.name for hdu in hdul] == ["PRIMARY", "IMAGE", "FLAGS", "VARIANCE"]
        primary = hdul["PRIMARY"]
        assert primary.header["NAXIS"] == 0
        assert primary.data is None
        assert primary.header["DATE-OBS"] == "2025-05-01T12:34:56.789"
        assert primary.header["EXPTIME"] == 112.0
        assert primary.header["OBSID"] == "2025W18_1B_0042_3"
        assert primary.header["DETECTOR"] == 2
        assert "CTYPE1" not in primary.header
        assert hdul["IMAGE"].data.dtype == np.dtype(">f4")
        assert u.Unit(hdul["IMAGE"].header["BUNIT"]) == u.MJy / u.sr
        assert WCS(hdul["IMAGE"].header).wcs.compare(image.wcs.wcs)
        flags = hdul["FLAGS"]
        assert flags.data.dtype == np.dtype(">i4")
        assert flags.header["EXTTYPE"] == "MASK"
        for name, bit in LEVEL2_FLAG_BITS.items():
            assert flags.header[f"MP_{name}"] == bit
        cards = {card.keyword: card.image for card in flags.header.cards}
        assert cards["MP_MISSING_DATA"].startswith("HIERARCH MP_MISSING_DATA = 9")
        assert cards["MP_HOT"].startswith("MP_HOT  =")
        assert u.Unit(hdul["VARIANCE"].header["BUNIT"]) == (u.MJy / u.sr) ** 2
    image.mask = np.zeros(image.shape, dtype=bool)
    image.write(path, overwrite=True)
    with fits.open(path) as hdul:
        assert [hdu.name for hdu in hdul] == ["PRIMARY", "IMAGE", "FLAGS", "VARIANCE", "MASK"]
        assert hdul["MASK"].data.dtype == np.uint8


def test_files_open_with_plain_astropy_and_ccddata(tmp_path: Path) -> None:
    image = make_image()
    path = tmp_path / "image.fits"
    image.write(path)
    ccd = CCDData.read(path)
    np.testing.assert_array_equal(ccd.data, image.data)
    assert ccd.unit == u.MJy / u.sr
    assert fits.getheader(path, "FLAGS")["MP_SOURCE"] == 21


def test_write_refuses_to_overwrite_unless_asked(tmp_path: Path) -> None:
    path = tmp_path / "image.fits"
    make_image().write(path)
    with pytest.raises(FileExistsError, match=str(path)):
        make_image(seed=2).write(path)
    make_image(seed=2).write(path, overwrite=True)
    assert_same_image(SPHERExImage.read(path), make_image(seed=2))


def test_meta_from_a_header_round_trips_comment_and_history(tmp_path: Path) -> None:
    header = fits.Header()
    header["OBSID"] = ("x1", "an observation")
    header["HISTORY"] = "made by a test"
    header["COMMENT"] = "a comment card"
    header["LONGSTR"] = "a" * 150  # needs CONTINUE cards
    image = SPHERExImage(np.ones((4, 4), dtype=np.float32), meta=header)
    path = tmp_path / "image.fits"
    image.write(path)
    assert meta_cards(SPHERExImage.read(path).meta) == meta_cards(header)


def test_bad_metadata_value_raises(tmp_path: Path) -> None:
    image = SPHERExImage(np.ones((2, 2)), meta={"TAGS": ["a", "b"]})
    with pytest.raises(SPHERExImageError, match="TAGS"):
        image.write(tmp_path / "image.fits")


def test_non_2d_image_cannot_be_written(tmp_path: Path) -> None:
    with pytest.raises(SPHERExImageError, match="2-d"):
        SPHERExImage(np.ones((2, 2, 2))).write(tmp_path / "cube.fits")


def test_merged_header_is_what_ingest_reads(tmp_path: Path) -> None:
    image = make_image()
    path = tmp_path / "image.fits"
    image.write(path)
    merged = image.merged_header()
    with SPHERExImageFitsReader(path) as reader:
        from_file = reader.read_merged_header()
    assert [(c.keyword, c.value) for c in merged.cards] == [(c.keyword, c.value) for c in from_file.cards]
    # What ingest does with plain astropy: primary header updated with the IMAGE header.
    with fits.open(path) as hdul:
        plain = hdul[0].header.copy()
        plain.update(hdul["IMAGE"].header)
    for key in ("DATE-OBS", "EXPTIME", "OBSID", "DETECTOR", "BUNIT", "CTYPE1", "CRVAL2"):
        assert merged[key] == plain[key]


def test_default_unit_when_bunit_is_absent(tmp_path: Path) -> None:
    path = tmp_path / "nobunit.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(np.ones((3, 3), np.float32), name="IMAGE")]).writeto(path)
    image = SPHERExImage.read(path)
    assert image.unit == u.electron / u.s
    assert image.flags is None and image.uncertainty is None and image.wcs is None


def test_reads_level2_layout_ignoring_extra_hdus(tmp_path: Path) -> None:
    shape = (30, 20)
    rng = np.random.default_rng(3)
    wcs = make_wcs(shape, sip=True)
    primary = fits.PrimaryHDU()
    primary.header["OBSID"] = "2025W20_2A_0100_1"
    primary.header["DATE-OBS"] = "2025-05-15T01:02:03.000"
    image_header = wcs.to_header(relax=True)
    image_header["BUNIT"] = "MJy/sr"
    image_header["ZODI_MOD"] = ("v1", "an IMAGE-only card")
    flags_header = fits.Header()
    for name, bit in LEVEL2_FLAG_BITS.items():
        flags_header[f"HIERARCH MP_{name}"] = bit
    data = rng.normal(size=shape).astype(np.float32)
    flags = rng.integers(0, 2**22, size=shape).astype(np.int32)
    variance = rng.uniform(size=shape).astype(np.float32)
    hdul = fits.HDUList(
        [
            primary,
            fits.ImageHDU(data, image_header, name="IMAGE"),
            fits.ImageHDU(flags, flags_header, name="FLAGS"),
            fits.ImageHDU(variance, fits.Header([("BUNIT", "(MJy/sr)^2")]), name="VARIANCE"),
            fits.ImageHDU(rng.normal(size=shape).astype(np.float32), name="ZODI"),
            fits.ImageHDU(rng.normal(size=(121, 11, 11)).astype(np.float32), name="PSF"),
            fits.BinTableHDU.from_columns(
                [fits.Column(name="X", format="E", array=np.arange(4, dtype=np.float32))], name="WCS-WAVE"
            ),
        ]
    )
    path = tmp_path / "level2.fits"
    hdul.writeto(path)
    image = SPHERExImage.read(path)
    assert_bit_exact(image.data, data)
    assert_bit_exact(image.flags, flags)
    assert_bit_exact(image.uncertainty.array, variance)
    assert image.unit == u.MJy / u.sr
    assert image.flag_defs == dict(LEVEL2_FLAG_BITS)
    assert image.wcs.sip is not None
    assert image.meta["OBSID"] == "2025W20_2A_0100_1"
    # IMAGE-only cards join the metadata after the primary ones; WCS and BUNIT do not.
    assert image.meta["ZODI_MOD"] == "v1"
    assert "CTYPE1" not in image.meta and "BUNIT" not in image.meta


def test_reads_original_2020_layout(tmp_path: Path) -> None:
    """What the 2020 writer wrote: header-only PRIMARY, unnamed image, FLAGS (int32, BLANK), MASK, VARIANCE.

    Built as that writer built it (Caltech-IPAC/spherex_butler_poc, 2020, core/spherex_image.py):
    ``CCDData.to_hdu``, an empty primary HDU inserted in front (astropy turns the image's primary HDU into
    an unnamed extension), the FLAGS HDU inserted as HDU 2.  The BLANK card is the one the original's
    tests/data/small.fits had.
    """
    shape = (10, 12)
    rng = np.random.default_rng(4)
    ccd = CCDData(
        rng.normal(size=shape).astype(np.float32),
        unit="electron/s",
        uncertainty=VarianceUncertainty(rng.uniform(size=shape).astype(np.float32)),
        mask=rng.random(shape) < 0.1,
        wcs=make_wcs(shape),
        meta={"OBSID": "sim-1"},
    )
    hdul = ccd.to_hdu(hdu_uncertainty="VARIANCE", hdu_mask="MASK", key_uncertainty_type="UTYPE")
    hdul.insert(0, fits.PrimaryHDU())
    flags = rng.integers(0, 2**20, size=shape).astype(np.int32)
    flags[3, 4] = -1
    flags_header = fits.Header(
        [("EXTTYPE", "MASK"), ("MP_HOT", 3), ("HIERARCH MP_COSMICRAY", 1), ("BLANK", -1)]
    )
    hdul.insert(2, fits.ImageHDU(flags, flags_header, name="FLAGS"))
    path = tmp_path / "original.fits"
    hdul.writeto(path)
    with fits.open(path) as written:
        # CCDData.to_hdu puts MASK before the uncertainty.
        assert [hdu.name for hdu in written] == ["PRIMARY", "", "FLAGS", "MASK", "VARIANCE"]
        assert written[0].header["NAXIS"] == 0 and written[1].header["BUNIT"] == "electron / s"
        assert np.isnan(written["FLAGS"].data[3, 4])  # astropy's reading of an integer BLANK pixel
    image = SPHERExImage.read(path)
    assert_bit_exact(image.data, ccd.data)
    assert image.unit == u.electron / u.s
    assert isinstance(image.uncertainty, VarianceUncertainty)
    assert_bit_exact(image.uncertainty.array, ccd.uncertainty.array)
    np.testing.assert_array_equal(image.mask, ccd.mask)
    assert image.flags.dtype == np.dtype(">i4") or image.flags.dtype == np.dtype("int32")
    np.testing.assert_array_equal(image.flags, flags)
    assert image.flag_defs == {"HOT": 3, "COSMICRAY": 1}
    y, x = np.mgrid[0:10, 0:12]
    for a, b in zip(image.wcs.pixel_to_world_values(x, y), ccd.wcs.pixel_to_world_values(x, y), strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)
    assert image.meta["OBSID"] == "sim-1"


def test_reads_ccddata_layout_with_flags(tmp_path: Path) -> None:
    """CCDData's layout (image in the primary HDU, VARIANCE with UTYPE), FLAGS appended.

    What the 2020 proof of concept's first writer produced (before it moved the image to an extension).
    """
    shape = (10, 12)
    rng = np.random.default_rng(4)
    ccd = CCDData(
        rng.normal(size=shape).astype(np.float32),
        unit="electron/s",
        uncertainty=VarianceUncertainty(rng.uniform(size=shape).astype(np.float32)),
        mask=rng.random(shape) < 0.1,
        wcs=make_wcs(shape),
        meta={"OBSID": "sim-1"},
    )
    hdul = ccd.to_hdu(hdu_uncertainty="VARIANCE", hdu_mask="MASK")
    flags_header = fits.Header([("EXTTYPE", "MASK"), ("MP_HOT", 3), ("HIERARCH MP_COSMICRAY", 1)])
    flags = rng.integers(0, 16, size=shape).astype(np.int16)
    hdul.append(fits.ImageHDU(flags, flags_header, name="FLAGS"))
    path = tmp_path / "original.fits"
    hdul.writeto(path)
    image = SPHERExImage.read(path)
    assert_bit_exact(image.data, ccd.data)
    assert image.unit == u.electron / u.s
    assert_bit_exact(image.uncertainty.array, ccd.uncertainty.array)
    np.testing.assert_array_equal(image.mask, ccd.mask)
    np.testing.assert_array_equal(image.flags, flags)
    assert image.flags.dtype.kind == "i" and image.flags.dtype.itemsize == 4
    assert image.flag_defs == {"HOT": 3, "COSMICRAY": 1}
    # CCDData writes 14 significant digits, so compare positions rather than bits.
    y, x = np.mgrid[0:10, 0:12]
    for a, b in zip(image.wcs.pixel_to_world_values(x, y), ccd.wcs.pixel_to_world_values(x, y), strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)
    assert image.meta["OBSID"] == "sim-1"


def test_reads_ccddata_std_dev_uncertainty(tmp_path: Path) -> None:
    ccd = CCDData(np.ones((4, 5)), unit="adu", uncertainty=StdDevUncertainty(np.full((4, 5), 2.0)))
    path = tmp_path / "ccd.fits"
    ccd.write(path)
    image = SPHERExImage.read(path)
    assert isinstance(image.uncertainty, StdDevUncertainty)
    np.testing.assert_array_equal(image.uncertainty.array, 2.0)
    # Written back as variance.
    image.write(tmp_path / "again.fits")
    np.testing.assert_array_equal(SPHERExImage.read(tmp_path / "again.fits").uncertainty.array, 4.0)


def test_gzip_compression_is_lossless(tmp_path: Path) -> None:
    image = make_image(mask=True)
    path = tmp_path / "gzip.fits"
    image.write(path, compression="GZIP_2")
    with fits.open(path) as hdul:
        assert hdul[0].data is None
        assert all(isinstance(hdu, fits.CompImageHDU) for hdu in hdul[1:])
        assert hdul["IMAGE"].header["BUNIT"] == "MJy sr-1"
    assert_same_image(SPHERExImage.read(path), image)
    # astropy's CCDData reader skips compressed extensions when it looks for the image: name it.
    assert_bit_exact(CCDData.read(path, hdu="IMAGE").data, image.data)


def test_rice_compression_keeps_flags_exact_and_floats_close(tmp_path: Path) -> None:
    image = make_image(shape=(128, 96))
    path = tmp_path / "rice.fits"
    image.write(path, compression="RICE_1")
    plain = tmp_path / "plain.fits"
    image.write(plain)
    assert path.stat().st_size < plain.stat().st_size
    read = SPHERExImage.read(path)
    assert_bit_exact(read.flags, image.flags)
    assert read.flag_defs == image.flag_defs
    noise = float(np.std(image.data))
    assert np.max(np.abs(read.data - image.data)) < noise / 4
    assert read.wcs.wcs.compare(image.wcs.wcs)


def test_unknown_compression_raises(tmp_path: Path) -> None:
    with pytest.raises(SPHERExImageError, match="ZIP_9"):
        make_image().write(tmp_path / "x.fits", compression="ZIP_9")


@pytest.mark.parametrize("compression", [None, "GZIP_2", "RICE_1"])
def test_cutout_read_matches_sliced_image(tmp_path: Path, compression: str | None) -> None:
    image = make_image(shape=(64, 48), mask=True)
    path = tmp_path / "image.fits"
    image.write(path, compression=compression)
    full = SPHERExImage.read(path)
    for slices in [(slice(10, 30), slice(5, 45)), (slice(None, 8), slice(-10, None)), (slice(3, 40, 2),)]:
        cutout = SPHERExImage.read(path, slices=slices)
        expected = full[slices]
        assert_bit_exact(cutout.data, expected.data)
        assert_bit_exact(cutout.flags, expected.flags)
        assert_bit_exact(cutout.uncertainty.array, expected.uncertainty.array)
        np.testing.assert_array_equal(cutout.mask, expected.mask)
        assert cutout.flag_defs == image.flag_defs
        assert_same_wcs(cutout.wcs, expected.wcs, expected.shape)
        assert meta_cards(cutout.meta) == meta_cards(full.meta)


@pytest.mark.parametrize(
    ("slices", "message"),
    [
        ((slice(5, 5), slice(None)), "selects no pixels"),
        ((slice(None, None, -1),), "positive step"),
        ((3, slice(None)), "tuple of Python slices"),
        ((slice(None),) * 3, "3 slices"),
    ],
)
def test_bad_slices_raise(tmp_path: Path, slices: tuple, message: str) -> None:
    path = tmp_path / "image.fits"
    make_image().write(path)
    with pytest.raises(SPHERExImageError, match=message):
        SPHERExImage.read(path, slices=slices)


@needs_fitsverify
@pytest.mark.parametrize(
    "options",
    [{}, {"compression": "RICE_1"}, {"compression": "GZIP_2"}, {"checksum": True}, {"mask": True}],
    ids=["plain", "rice", "gzip", "checksum", "mask"],
)
def test_written_files_pass_fitsverify(tmp_path: Path, options: dict) -> None:
    options = dict(options)
    image = make_image(mask=options.pop("mask", False), sip=True)
    path = tmp_path / "image.fits"
    image.write(path, **options)
    run_fitsverify(path)


def test_fitsverify_is_installed_or_test_is_skipped() -> None:
    if FITSVERIFY is None:
        pytest.skip("fitsverify is not installed (Debian/Ubuntu: apt-get install fitsverify)")
    assert Path(FITSVERIFY).exists()


# -- bad files -----------------------------------------------------------------------------------------------


def test_missing_file_raises_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="missing.fits"):
        SPHERExImage.read(tmp_path / "missing.fits")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "not a readable FITS file"),
        (b"hello, this is not FITS\n" * 200, "not a readable FITS file"),
    ],
    ids=["empty", "text"],
)
def test_not_fits_raises_naming_the_file(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.fits"
    path.write_bytes(content)
    with pytest.raises(FitsLayoutError, match=message) as info:
        SPHERExImage.read(path)
    assert info.value.path == str(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, OSError) and isinstance(info.value, ValueError)


def test_truncated_file_raises(tmp_path: Path, recwarn: pytest.WarningsRecorder) -> None:
    path = tmp_path / "image.fits"
    make_image().write(path)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) - 3000])
    with pytest.raises(FitsLayoutError, match="truncated"):
        SPHERExImage.read(path)
    path.write_bytes(raw[:4000])  # cut inside the IMAGE header
    with pytest.raises(FitsLayoutError, match=str(path)):
        SPHERExImage.read(path)
    # The exception says it once: astropy's warnings on the way ("File may have been truncated") are
    # not shown as well.
    assert [str(w.message) for w in recwarn] == []


def test_unparsable_bitpix_card_raises_naming_the_file(tmp_path: Path) -> None:
    # Found by the damage property test: NUL bytes in the primary header's BITPIX card, which astropy
    # opens but refuses to read a value from (VerifyError "Unparsable card").
    path = tmp_path / "image.fits"
    make_image().write(path)
    raw = bytearray(path.read_bytes())
    raw[30] = raw[90] = 0
    path.write_bytes(bytes(raw))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(FitsLayoutError, match=rf"{re.escape(str(path))}: .*BITPIX"):
            SPHERExImage.read(path)


def test_missing_image_hdu_raises(tmp_path: Path) -> None:
    path = tmp_path / "noimage.fits"
    table = fits.BinTableHDU.from_columns([fits.Column(name="A", format="J", array=[1, 2])], name="TABLE")
    fits.HDUList([fits.PrimaryHDU(), table]).writeto(path)
    with pytest.raises(FitsLayoutError, match="no IMAGE HDU"):
        SPHERExImage.read(path)


def test_planes_of_different_shapes_in_file_raise(tmp_path: Path) -> None:
    path = tmp_path / "shapes.fits"
    fits.HDUList(
        [
            fits.PrimaryHDU(),
            fits.ImageHDU(np.zeros((4, 4), np.float32), name="IMAGE"),
            fits.ImageHDU(np.zeros((4, 5), np.float32), name="VARIANCE"),
        ]
    ).writeto(path)
    with pytest.raises(FitsLayoutError, match="variance plane .* has shape \\(4, 5\\)"):
        SPHERExImage.read(path)


def test_flag_bit_above_31_in_file_raises(tmp_path: Path) -> None:
    path = tmp_path / "flags.fits"
    header = fits.Header([("MP_HOT", 40)])
    fits.HDUList(
        [
            fits.PrimaryHDU(),
            fits.ImageHDU(np.zeros((4, 4), np.float32), name="IMAGE"),
            fits.ImageHDU(np.zeros((4, 4), np.int32), header, name="FLAGS"),
        ]
    ).writeto(path)
    with pytest.raises(FitsLayoutError, match="MP_HOT = 40 is outside"):
        SPHERExImage.read(path)


def test_float_flags_in_file_raise(tmp_path: Path) -> None:
    path = tmp_path / "flags.fits"
    fits.HDUList(
        [
            fits.PrimaryHDU(),
            fits.ImageHDU(np.zeros((4, 4), np.float32), name="IMAGE"),
            fits.ImageHDU(np.zeros((4, 4), np.float32), name="FLAGS"),
        ]
    ).writeto(path)
    with pytest.raises(FitsLayoutError, match="not an integer bitmask"):
        SPHERExImage.read(path)


# -- properties ----------------------------------------------------------------------------------------------

KEYWORDS = st.from_regex(r"[A-Z][A-Z0-9_-]{0,7}", fullmatch=True).filter(
    lambda k: (
        not k.startswith(("NAXIS", "CRPIX", "CRVAL", "CDELT", "CTYPE", "CUNIT", "CROTA", "CD", "PC", "PV"))
        and k
        not in {
            "SIMPLE",
            "BITPIX",
            "EXTEND",
            "BUNIT",
            "END",
            "COMMENT",
            "HISTORY",
            "BSCALE",
            "BZERO",
            "BLANK",
            "EXTNAME",
            "EXTVER",
            "EXTLEVEL",
            "PCOUNT",
            "GCOUNT",
            "XTENSION",
            "CHECKSUM",
            "DATASUM",
            "EQUINOX",
            "RADESYS",
            "LONPOLE",
            "LATPOLE",
            "WCSAXES",
            "WCSNAME",
            "MJDREF",
            "EPOCH",
        }
    )
)
# Header values FITS represents exactly: strings without trailing blanks (FITS drops them), integers,
# booleans and binary fractions (astropy writes at most 20 significant characters for a float).
HEADER_VALUES = st.one_of(
    st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=90).map(str.rstrip),
    st.integers(-(2**53), 2**53),
    st.booleans(),
    st.integers(-(10**9), 10**9).map(lambda i: i / 64),
)
FLAG_NAMES = st.from_regex(r"[A-Z][A-Z0-9_]{0,20}", fullmatch=True)


@st.composite
def spherex_images(draw: st.DrawFn) -> SPHERExImage:
    shape = draw(st.tuples(st.integers(1, 12), st.integers(1, 12)))
    dtype = draw(st.sampled_from([np.float32, np.float64, np.int16, np.int32]))
    data = draw(hnp.arrays(dtype, shape))  # floats include NaN, inf and -0.0
    variance = draw(st.none() | hnp.arrays(np.float32, shape))
    flags = draw(st.none() | hnp.arrays(np.int32, shape))
    mask = draw(st.none() | hnp.arrays(np.bool_, shape))
    # Flag definitions are stored with the FLAGS plane, so only images with flags keep them.
    flag_defs = {} if flags is None else draw(st.dictionaries(FLAG_NAMES, st.integers(0, 31), max_size=6))
    meta = draw(st.dictionaries(KEYWORDS, HEADER_VALUES, max_size=6))
    unit = draw(st.sampled_from([None, "MJy/sr", "electron/s", "adu", "W m-2 um-1"]))
    wcs = make_wcs(shape) if draw(st.booleans()) else None
    return SPHERExImage(
        data,
        unit=unit,
        uncertainty=None if variance is None else VarianceUncertainty(variance),
        flags=flags,
        flag_defs=flag_defs,
        mask=mask,
        wcs=wcs,
        meta=meta,
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(image=spherex_images(), compression=st.sampled_from([None, None, "GZIP_2"]))
def test_property_round_trip_is_exact(tmp_path: Path, image: SPHERExImage, compression: str | None) -> None:
    path = tmp_path / "prop.fits"
    image.write(path, overwrite=True, compression=compression)
    assert_same_image(SPHERExImage.read(path), image)


@pytest.fixture(scope="module")
def pristine_file(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("pristine") / "image.fits"
    make_image(shape=(20, 16), mask=True).write(path)
    return path.read_bytes()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    damage=st.one_of(
        st.lists(st.tuples(st.integers(0, 2880 * 12), st.integers(0, 255)), min_size=1, max_size=12).map(
            lambda edits: ("bytes", edits)
        ),
        st.integers(0, 2880 * 12).map(lambda length: ("truncate", length)),
    ),
    compression=st.booleans(),
    slices=st.sampled_from([None, (slice(2, 9), slice(4, 12))]),
)
def test_property_damaged_files_read_or_raise_fits_layout_error(
    tmp_path: Path, pristine_file: bytes, damage: tuple, compression: bool, slices: tuple | None
) -> None:
    raw = bytearray(pristine_file)
    if compression:
        path = tmp_path / "source.fits"
        path.write_bytes(pristine_file)
        SPHERExImage.read(path).write(path, overwrite=True, compression="RICE_1")
        raw = bytearray(path.read_bytes())
    kind, value = damage
    if kind == "bytes":
        for position, byte in value:
            raw[position % len(raw)] = byte
    else:
        raw = raw[: value % len(raw)]
    path = tmp_path / "damaged.fits"
    path.write_bytes(bytes(raw))
    with warnings.catch_warnings():
        # astropy warns about what it repairs in damaged headers; the outcome is what is tested.
        warnings.simplefilter("ignore")
        try:
            image = SPHERExImage.read(path, slices=slices)
        except FitsLayoutError as err:
            assert err.path == str(path)
            return
        except SPHERExImageError as err:
            # Only a cutout that no longer fits a damaged (smaller) image may fail this way.
            assert slices is not None and "slice" in str(err)
            return
    assert isinstance(image, SPHERExImage)


def test_changed_file_is_read_again_not_served_from_the_header_cache(tmp_path: Path) -> None:
    """The per-file cache (header scan, WCS, metadata) is keyed so that a rewritten file is re-read."""
    path = tmp_path / "image.fits"
    image = make_image()
    image.write(path)
    first = SPHERExImage.read(path)
    stat = path.stat()
    # Same size, same modification time, other WCS and metadata: only the change time tells.
    moved = image.copy()
    moved.wcs.wcs.crval = [10.0, -5.0]
    moved.meta["OBSID"] = "2025W18_1B_0042_4"
    moved.write(tmp_path / "moved.fits")
    with open(path, "r+b") as stream:  # rewritten in place: same inode
        stream.write((tmp_path / "moved.fits").read_bytes())
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert (path.stat().st_ino, path.stat().st_size, path.stat().st_mtime_ns) == (
        stat.st_ino,
        stat.st_size,
        stat.st_mtime_ns,
    )
    second = SPHERExImage.read(path)
    assert first.meta["OBSID"] != second.meta["OBSID"] == "2025W18_1B_0042_4"
    np.testing.assert_allclose(second.wcs.wcs.crval, [10.0, -5.0])
    # A file replaced by another (a new inode) is read again too.
    replacement = tmp_path / "replacement.fits"
    image.write(replacement)
    os.replace(replacement, path)
    np.testing.assert_allclose(SPHERExImage.read(path).wcs.wcs.crval, image.wcs.wcs.crval)


def test_cached_values_are_not_shared_between_reads(tmp_path: Path) -> None:
    path = tmp_path / "image.fits"
    make_image().write(path)
    image = SPHERExImage.read(path)
    image.wcs.wcs.crval = [0.0, 0.0]
    image.meta["OBSID"] = "changed"
    image.flag_defs = {"OTHER": 1}
    again = SPHERExImage.read(path)
    assert again.meta["OBSID"] == META["OBSID"]
    assert list(again.wcs.wcs.crval) != [0.0, 0.0]
    assert again.flag_defs == dict(LEVEL2_FLAG_BITS)


def test_direct_reads_equal_astropy_reads(tmp_path: Path) -> None:
    """Plain files are read without astropy's HDUList; through astropy the same image comes back."""
    path = tmp_path / "image.fits"
    written = make_image(mask=True)
    written.write(path)
    cut = (slice(3, 17, 2), slice(5, 20))
    for slices in (None, cut):
        direct = SPHERExImage.from_fits(path, slices=slices)
        via_astropy = SPHERExImage.from_fits(path, slices=slices, open_kwargs={"memmap": False})
        for a, b in (
            (direct.data, via_astropy.data),
            (direct.flags, via_astropy.flags),
            (direct.uncertainty.array, via_astropy.uncertainty.array),
            (direct.mask, via_astropy.mask),
        ):
            assert_bit_exact(a, b)
        assert direct.wcs.to_header() == via_astropy.wcs.to_header()
        assert direct.meta == via_astropy.meta and direct.flag_defs == via_astropy.flag_defs


def test_reader_reads_one_table_or_cube_hdu_alone(tmp_path: Path) -> None:
    """The extension point of richer layouts: one HDU, a table with a heap or a cube, from one read."""
    path = tmp_path / "extra.fits"
    hdul = make_image().to_hdulist()
    hdul.append(fits.ImageHDU(np.arange(24.0).reshape(2, 3, 4), name="PSF"))
    columns = [
        fits.Column("X", "3E", array=np.ones((1, 3))),
        fits.Column("V", "PJ()", array=[np.arange(5)]),
    ]
    hdul.append(fits.BinTableHDU.from_columns(columns, name="WCS-WAVE"))
    hdul.writeto(path)
    with SPHERExImageFitsReader(path) as reader:
        assert [hdu.name for hdu in reader.hdus][-2:] == ["PSF", "WCS-WAVE"]
        cube = reader.read_hdu(reader.hdu_named("psf"))
        table = reader.read_hdu(reader.hdu_named("WCS-WAVE"))
    # Read after the file is closed: the data are in memory.
    np.testing.assert_array_equal(cube.data, np.arange(24.0).reshape(2, 3, 4))
    np.testing.assert_array_equal(table.data["V"][0], np.arange(5))
    assert reader.hdu_named("NOSUCH") is None


def test_subclass_views_read_hdus_without_astropy_parsing_the_file(tmp_path: Path) -> None:
    """What subclasses written against astropy HDUs use (``_plane_hdu(...).data``, ``_by_name``) works."""
    path = tmp_path / "extra.fits"
    hdul = make_image().to_hdulist()
    hdul.append(fits.ImageHDU(np.arange(24.0).reshape(2, 3, 4), name="PSF"))
    hdul.append(fits.BinTableHDU.from_columns([fits.Column("X", "3E", array=np.ones((1, 3)))], name="TAB"))
    hdul.writeto(path)
    with SPHERExImageFitsReader(path) as reader:
        psf = reader._plane_hdu("PSF")
        assert psf.name == "PSF" and psf.shape == (2, 3, 4) and psf.header["EXTNAME"] == "PSF"
        np.testing.assert_array_equal(psf.data, np.arange(24.0).reshape(2, 3, 4))
        table = reader._by_name.get("TAB")
        assert isinstance(table, fits.BinTableHDU) and table.columns.names == ["X"]
        assert reader._by_name.get("NOSUCH") is None and "PSF" in reader._by_name
        # Neither opened the file with astropy.
        assert reader._hdul is None
