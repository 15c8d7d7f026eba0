"""Level-2 files as IRSA serves them, every release: PSF zones, IRSA's recipes on what we write, flags of
later releases, exposure time.  Facts come from the fixtures' printed cards (see ``level2_headers.py``)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.wcs import WCS
from lsst.resources import ResourcePath

from spherex.core import LEVEL2_FLAG_BITS, FitsLayoutError, SPHERExLevel2Image, psf_labels_trusted
from spherex.instrument import Level2FileName, read_level2_observation
from spherex.simulator.level2 import make_level2_image

from .level2_headers import (
    QR1_FILE,
    QR2_CUTOUT,
    QR2_CUTOUT_FIXED,
    QR2_FILE,
    fixture_file,
    irsa_zone,
    read_fixture,
    zone_cards,
)

# Printed by IRSA's PSF tutorial for the QR2 cutout (both deploys): the target, its parent pixel, its zone.
TARGET = SkyCoord(305.59875000000005, 41.14888888888889, unit="deg")
TARGET_CUTOUT = (2.1740528583705068, 2.3529490762661016)
TARGET_PARENT = (223.17405285837052, 2007.3529490762662)
TARGET_ZONE = 112


@pytest.mark.parametrize(
    ("version", "trusted"),
    [
        ("6.4", False),  # QR2 before the fix (printed by the PSF tutorial on 2026-03-23)
        ("6.4+psffix1", True),  # the same file re-issued (printed since 2026-04-01)
        ("6.5.5", False),
        ("6.5.5+psffix1", True),
        ("6.5.6", True),  # "Files processed with pipeline version 6.5.6 and later were not affected"
        ("6.5.7", True),
        ("7.0.5", True),  # QR3, pipeline R7 (third-party report)
        (None, False),  # no VERSION: IRSA's tutorial applies the fix
        ("unknown", False),
    ],
)
def test_psf_labels_are_trusted_by_irsas_rule(version: str | None, trusted: bool) -> None:
    assert psf_labels_trusted(version) is trusted


@pytest.mark.parametrize("name", [QR2_CUTOUT, QR2_CUTOUT_FIXED])
def test_the_zone_pattern_reproduces_every_printed_psf_card(name: str) -> None:
    sections, data = read_fixture(name)
    generated = {card.keyword: card for card in zone_cards(data["PSF_LABELS"][0])}
    printed = [card for card in sections["PSF"].cards if re.match(r"[XY](CTR|WID)_\d+$", card.keyword)]
    assert len(printed) == 17
    for card in printed:
        assert generated[card.keyword].value == pytest.approx(card.value, abs=1e-8)  # 8 decimals printed
        assert generated[card.keyword].comment == card.comment


@pytest.mark.parametrize("name", [QR2_CUTOUT, QR2_CUTOUT_FIXED])
def test_tutorial_worked_example_lies_in_zone_112(name: str, tmp_path: Path) -> None:
    path = fixture_file(name, tmp_path / "cutout.fits")
    # The tutorial's steps with plain astropy reproduce its printed numbers...
    with fits.open(path) as hdul:
        x, y = WCS(hdul["IMAGE"].header).world_to_pixel(TARGET)
        header = hdul["IMAGE"].header
        assert (1 + x - header["CRPIX1A"], 1 + y - header["CRPIX2A"]) == pytest.approx(TARGET_PARENT)
    assert (float(x), float(y)) == pytest.approx(TARGET_CUTOUT)
    assert irsa_zone(path, x, y) == TARGET_ZONE
    # ... and ours finds the same zone, before the fix as after it.
    image = SPHERExLevel2Image.read(path)
    assert image.origin == (221, 2005)
    assert image.psf_zone(x, y) + 1 == TARGET_ZONE
    assert image.psf_at(x, y)[0, 0] == TARGET_ZONE - 1  # plane k - 1 (the made-up cube holds k - 1)
    assert image.psf_model.relabelled is (name == QR2_CUTOUT)


def test_header_labels_of_an_unfixed_file_give_the_wrong_zone(tmp_path: Path) -> None:
    # What psf_at did before: follow the labels of a 6.4 file.  IRSA's notice says that is zone 22 here.
    path = fixture_file(QR2_CUTOUT, tmp_path / "cutout.fits")
    header = fits.getheader(path, "PSF")
    x, y = TARGET_PARENT
    labels = {int(k[5:]): (header[k], header[f"YCTR_{k[5:]}"]) for k in header if k.startswith("XCTR_")}
    naive = min(labels, key=lambda k: (labels[k][0] - x) ** 2 + (labels[k][1] - y) ** 2)
    assert naive == 22 and SPHERExLevel2Image.read(path).psf_zone(*TARGET_CUTOUT) + 1 == TARGET_ZONE


@pytest.mark.parametrize(("labels", "version"), [("y-fast", None), ("y-fast", "6.4"), ("x-fast", "6.5.6")])
def test_every_position_gets_irsas_zone(labels: str, version: str | None, tmp_path: Path) -> None:
    # QR1 (no VERSION printed, labels y-fast), QR2 before the fix, and a file never affected.
    path = fixture_file(QR1_FILE, tmp_path / "qr1.fits", shape=(4, 4), psf=labels)
    if version is not None:
        with fits.open(path, mode="update") as hdul:
            hdul[0].header["VERSION"] = version
    image = SPHERExLevel2Image.read(path)
    # 27 x 23 positions over the array, seen from the cutout at the array's origin.
    xs, ys = np.meshgrid(np.linspace(3.0, 2036.0, 27), np.linspace(5.0, 2030.0, 23))
    ours = image.psf_zone(xs, ys) + 1
    np.testing.assert_array_equal(ours, irsa_zone(path, xs, ys))
    assert len(np.unique(ours)) == 121
    # Taking the labels as written would be wrong at most positions of the affected files.
    header = fits.getheader(path, "PSF")
    as_written = np.array([[header[f"XCTR_{k}"], header[f"YCTR_{k}"]] for k in range(1, 122)])
    distance2 = (as_written[:, 0] - xs[..., None]) ** 2 + (as_written[:, 1] - ys[..., None]) ** 2
    naive = np.argmin(distance2, axis=-1) + 1
    assert (naive != ours).sum() == (565 if labels == "y-fast" else 0)


def test_files_we_write_read_back_with_irsas_recipes(tmp_path: Path) -> None:
    image = make_level2_image(0, 4, size=48, seed=3, psf_zones=3, psf_size=11, wave_grid=7)
    cutout = image[20:30, 5:25][2:8, 3:9]  # a cutout of a cutout: origin (8, 22)
    path = tmp_path / "cut.fits"
    cutout.write(path)
    with fits.open(path) as hdul:
        # VERSION where IRSA's tutorial reads it.
        assert hdul["PRIMARY"].header["VERSION"] == "6.4+psffix1" and "VERSION" not in hdul["IMAGE"].header
        image_header, psf_header = hdul["IMAGE"].header, hdul["PSF"].header
        assert image_header["CRVAL1A"] == image_header["CRVAL2A"] == 0.0
        assert "XCTR_0" not in psf_header and {"XCTR_9", "YCTR_9", "XWID_9", "YWID_9"} <= set(psf_header)
        assert psf_header.comments["XCTR_2"] == "Center of x zone (1, 0)"
        assert hdul["FLAGS"].header.comments["MP_SOURCE"] == "Pixel mapped to a known source"
        units = {hdu.name: hdu.header.get("BUNIT") for hdu in hdul[1:6]}
        assert units == {
            "IMAGE": "MJy / sr",
            "FLAGS": "",
            "VARIANCE": "MJy2 / sr2",
            "ZODI": "MJy / sr",
            "PSF": "",
        }
    for x, y in [(0, 0), (5, 3), (2.6, 4.4)]:
        # Parent pixel of a cutout pixel, IRSA's way.
        assert 1 + x - image_header["CRPIX1A"] == pytest.approx(x + 8)
        assert 1 + y - image_header["CRPIX2A"] == pytest.approx(y + 22)
        # PSF plane of a position, IRSA's way: the same plane as the full image's.
        assert irsa_zone(path, x, y) - 1 == image.psf_zone(x + 8, y + 22) == cutout.psf_zone(x, y)
    # The tutorial's own cutout, cut again and written, still leads IRSA's recipe to zone 112.
    again = SPHERExLevel2Image.read(fixture_file(QR2_CUTOUT, tmp_path / "irsa.fits"))[1:5, 1:4]
    again.write(tmp_path / "again.fits")
    x, y = TARGET_CUTOUT[0] - 1, TARGET_CUTOUT[1] - 1
    assert irsa_zone(tmp_path / "again.fits", x, y) == TARGET_ZONE
    assert fits.getval(tmp_path / "again.fits", "VERSION") == "6.4+psffix1"  # zones were corrected


def test_flags_by_mskn_cards_in_a_rice_compressed_plane(tmp_path: Path) -> None:
    # QR3's FLAGS (third-party report): MSKNnnnn = '<NAME>' cards, RICE_1 tile compression.
    path = fixture_file(QR2_FILE, tmp_path / "qr3.fits", shape=(8, 8))
    with fits.open(path) as hdul:
        flags = hdul["FLAGS"]
        header = fits.Header([card for card in flags.header.cards if not card.keyword.startswith("MP_")])
        for name, bit in list(LEVEL2_FLAG_BITS.items()) + [("CROSSTALK", 20), ("STREAK", 25)]:
            header[f"MSKN{bit:04d}"] = name  # MADE UP values in the reported form
        hdul[flags.name] = fits.CompImageHDU(flags.data, header, name="FLAGS", compression_type="RICE_1")
        hdul.writeto(tmp_path / "rice.fits")
    image = SPHERExLevel2Image.read(tmp_path / "rice.fits")
    assert image.flag_defs == {**LEVEL2_FLAG_BITS, "CROSSTALK": 20, "STREAK": 25}
    assert image.flag_mask("SOURCE")[3, 4] and image.flag_mask("SOURCE").sum() == 1
    cut = SPHERExLevel2Image.read(tmp_path / "rice.fits", slices=(slice(2, 6), slice(3, 7)))
    assert cut.flag_mask("SOURCE")[1, 1]


def test_bad_flag_name_cards_are_named(tmp_path: Path) -> None:
    path = fixture_file(QR2_FILE, tmp_path / "bad.fits", shape=(4, 4))
    with fits.open(path, mode="update") as hdul:
        hdul["FLAGS"].header["MSKN0040"] = "TOO_HIGH"
    with pytest.raises(FitsLayoutError, match=rf"{re.escape(str(path))}: flag card MSKN0040"):
        SPHERExLevel2Image.read(path)


@pytest.mark.parametrize(
    ("card", "value", "problem"),
    [
        ("YCTR_7", 93.22727273, "are not a grid"),  # an unfixed file's centres no grid: no correction
        ("XCTR_121", None, "HDU PSF has 121 planes but XCTR_k cards"),
        ("XCTR_3", "left", "XCTR_3 = 'left' is not a number"),
    ],
)
def test_damaged_psf_zone_cards_are_named(card: str, value, problem: str, tmp_path: Path) -> None:
    path = fixture_file(QR2_CUTOUT, tmp_path / "cutout.fits")
    with fits.open(path, mode="update") as hdul:
        if value is None:
            del hdul["PSF"].header[card]
        else:
            hdul["PSF"].header[card] = value
    with pytest.raises(FitsLayoutError, match=rf"^{re.escape(str(path))}: .*{re.escape(problem)}"):
        SPHERExLevel2Image.read(path)


def test_qr3_effective_psf_table_and_9x9_wavelength_grid(tmp_path: Path) -> None:
    # QR3 (pipeline R7, third-party reports): an EPSF table of 21 x 21 zones, 33 x 33 PSFs oversampled 5
    # times; a 9 x 9 WCS-WAVE grid.  The column holding the PSFs and every value here are MADE UP.
    path = fixture_file(QR2_FILE, tmp_path / "qr3.fits", shape=(8, 8), origin=(1000, 20))
    centres = (np.arange(21) + 0.5) * 2040 / 21
    cx, cy = np.meshgrid(centres, centres)
    psfs = np.arange(441, dtype=np.float32)[:, None, None] * np.ones((1, 33, 33), np.float32)
    table = fits.BinTableHDU.from_columns(
        [
            fits.Column(name="XCENTER", format="D", array=cx.ravel()),
            fits.Column(name="YCENTER", format="D", array=cy.ravel()),
            fits.Column(name="XWIDTH", format="D", array=np.full(441, 2040 / 21)),
            fits.Column(name="YWIDTH", format="D", array=np.full(441, 2040 / 21)),
            fits.Column(name="EPSF", format="1089E", dim="(33,33)", array=psfs),
        ],
        name="EPSF",
    )
    with fits.open(path) as hdul:
        hdul[0].header["VERSION"] = "7.0.5"
        nodes = np.array([1, 256, 511, 766, 1021, 1276, 1531, 1786, 2040], np.int32)
        values = np.linspace(1.1, 1.6, 81 * 2).reshape(9, 9, 2).astype(np.float32)
        wave = fits.BinTableHDU.from_columns(
            [
                fits.Column(name="X", format="9J", dim="(9)", array=nodes[None]),
                fits.Column(name="Y", format="9J", dim="(9)", array=nodes[None]),
                fits.Column(name="VALUES", format="162E", dim="(2,9,9)", array=values[None]),
            ],
            name="WCS-WAVE",
        )
        fits.HDUList([*[h for h in hdul if h.name not in ("PSF", "WCS-WAVE")], table, wave]).writeto(
            tmp_path / "r7.fits"
        )
    image = SPHERExLevel2Image.read(tmp_path / "r7.fits")
    assert image.psf_model.oversampling == 5 and image.psf_model.cube.shape == (441, 33, 33)
    zone = image.psf_zone(3.0, 4.0)  # parent (1003, 24): grid column 10, row 0
    assert zone == 10 and image.psf_at(3.0, 4.0)[0, 0] == 10
    wavelength, _ = image.wavelength_at(0, 0)  # parent 1-based (1001, 21), between nodes
    assert float(values[0, 3, 0]) < wavelength < float(values[1, 4, 0])


def test_exposure_time_is_xposure_and_the_timespan_the_elapsed_time(tmp_path: Path) -> None:
    path = fixture_file(QR1_FILE, tmp_path / f"{QR1_FILE}.fits", shape=(16, 16), origin=(1012, 1012))
    observation = read_level2_observation(ResourcePath(path), Level2FileName.parse(path.name))
    assert observation.exposure_time == pytest.approx(113.5826)
    elapsed = (observation.timespan.end - observation.timespan.begin).sec
    assert elapsed == pytest.approx(118.19, abs=0.01)
