"""SPHEREx Level-2 spectral images: the image model, its FITS layout, ingest-spherex and position queries."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st
from lsst.daf.butler import Butler
from lsst.daf.butler.cli.butler import cli as butler_cli
from lsst.resources import ResourcePath

from spherex.core import LEVEL2_FLAG_BITS, FitsLayoutError, SPHERExImage, SPHERExLevel2Image
from spherex.instrument import (
    Level2FileName,
    SPHERExInstrument,
    exposure_id_from_obsid,
    level2_filename,
    obsid_from_exposure_id,
    read_level2_observation,
)
from spherex.script import find_spectral_images, ingest_spherex
from spherex.simulator import simulate
from spherex.simulator.cli import main as simulate_cli
from spherex.simulator.level2 import make_level2_image, simulate_level2

from .conftest import make_repo
from .level2_headers import QR1_FILE, fixture_file

SIZE = 48
SHAPE = dict(psf_zones=3, psf_size=11, wave_grid=7)


@pytest.fixture(scope="session")
def level2_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two simulated exposures x 6 arrays of 48x48 Level-2 images."""
    outdir = tmp_path_factory.mktemp("level2")
    simulate_level2(outdir, exposures=2, size=SIZE, seed=3, **SHAPE)
    return outdir


@pytest.fixture
def spherex_repo(tmp_path: Path) -> str:
    return make_repo(tmp_path / "DATA", register_instrument=False)


def butler(*args: str, expect: int = 0) -> tuple[str, str]:
    result = CliRunner().invoke(butler_cli, list(args))
    assert result.exit_code == expect, f"exit {result.exit_code}\n{result.output}\n{result.stderr}"
    return result.stdout, result.stderr


# -- 1. the image model and its FITS layout --------------------------------------------------------------


def test_level2_round_trip_keeps_every_plane(tmp_path: Path) -> None:
    image = make_level2_image(1, 5, size=SIZE, seed=3, **SHAPE)
    path = tmp_path / "l2.fits"
    image.write(path)
    assert [hdu.name for hdu in fits.open(path)] == [
        "PRIMARY",
        "IMAGE",
        "FLAGS",
        "VARIANCE",
        "ZODI",
        "PSF",
        "WCS-WAVE",
    ]
    header = fits.getheader(path, "IMAGE")
    assert header["BUNIT"] == "MJy / sr" and fits.getheader(path, "VARIANCE")["BUNIT"] == "MJy2 / sr2"
    assert header["OBSID"] == image.meta["OBSID"][0] and header["DETECTOR"] == 5
    back = SPHERExLevel2Image.read(path)
    np.testing.assert_array_equal(back.data, image.data)
    np.testing.assert_array_equal(back.zodi, image.zodi)
    np.testing.assert_array_equal(back.flags, image.flags)
    np.testing.assert_array_equal(back.psf_model.cube, image.psf_model.cube)
    np.testing.assert_allclose(back.wavelength_maps(), image.wavelength_maps(), rtol=1e-6)
    assert back.flag_defs == LEVEL2_FLAG_BITS


def test_wavelength_agrees_with_astropy_wave_tab_wcs(tmp_path: Path) -> None:
    # The alternate WCS 'W' is a FITS WAVE-TAB lookup: wcslib must find what our bilinear lookup finds.
    path = tmp_path / "l2.fits"
    make_level2_image(0, 2, size=SIZE, seed=3, **SHAPE).write(path)
    image = SPHERExLevel2Image.read(path)
    with fits.open(path) as hdul:
        spectral = WCS(hdul["IMAGE"].header, fobj=hdul, key="W")
    x, y = np.array([0.0, 13.0, 47.0]), np.array([0.0, 30.0, 47.0])
    wavelength, bandwidth = spectral.pixel_to_world_values(x, y)
    ours = image.wavelength_at(x, y)
    np.testing.assert_allclose(ours[0], wavelength, rtol=1e-6)
    np.testing.assert_allclose(ours[1], bandwidth, rtol=1e-6)
    # Band 2 covers 1.10-1.62 micron, longest at the bottom row.
    assert 1.10 <= ours[0].min() and ours[0].max() <= 1.62 + 1e-6 and ours[0][0] > ours[0][2]


def test_cutout_answers_for_the_same_pixels(tmp_path: Path) -> None:
    path = tmp_path / "l2.fits"
    make_level2_image(0, 4, size=SIZE, seed=3, **SHAPE).write(path)
    full = SPHERExLevel2Image.read(path)
    cut = SPHERExLevel2Image.read(path, slices=(slice(20, 30), slice(5, 25)))
    assert cut.shape == (10, 20) and cut.origin == (5, 20)
    np.testing.assert_array_equal(cut.zodi, full.zodi[20:30, 5:25])
    np.testing.assert_allclose(cut.wavelength_maps(), full.wavelength_maps()[:, 20:30, 5:25], rtol=1e-6)
    assert full.psf_model.zone_at(24, 40) == cut.psf_model.zone_at(19, 20)
    # Cutouts of one file share the PSF cube parsed once, read-only: no reader can alter another's.
    other = SPHERExLevel2Image.read(path, slices=(slice(0, 8), slice(0, 8)))
    assert other.psf_model.cube is cut.psf_model.cube and other.psf_model.origin == (0, 0)
    with pytest.raises(ValueError, match="read-only"):
        cut.psf_model.cube[0, 0, 0] = 1.0
    # The written cutout carries its origin in WCS 'A' and reads back the same wavelengths.
    cut.write(tmp_path / "cut.fits")
    again = SPHERExLevel2Image.read(tmp_path / "cut.fits")
    assert again.origin == (5, 20)
    np.testing.assert_allclose(again.wavelength_maps(), cut.wavelength_maps(), rtol=1e-6)


def test_zodi_subtraction_and_psf_at_a_pixel() -> None:
    image = make_level2_image(0, 1, size=SIZE, seed=3, **SHAPE)
    clean = image.zodi_subtracted()
    np.testing.assert_allclose(clean.data, image.data - image.zodi, rtol=1e-6)
    assert clean.meta["ZODISUB"][0] is True
    with pytest.raises(ValueError, match="already subtracted"):
        clean.zodi_subtracted()
    # 3x3 zones over 48 pixels: the corner pixel gets the corner zone, the centre the centre zone.
    assert image.psf_model.zone_at(0, 0) == 0 and image.psf_model.zone_at(24, 24) == 4
    psf = image.psf_at(24, 24)
    assert psf.shape == (11, 11) and np.unravel_index(psf.argmax(), psf.shape) == (5, 5)
    assert psf.sum() == pytest.approx(1.0, rel=1e-5)


def test_one_reader_for_poc_and_level2_layouts(tmp_path: Path) -> None:
    simulate(tmp_path, exposures=1, size=32, seed=1, detectors=[3])
    poc = tmp_path / "sim_exposure_000000_array_3.fits"
    as_level2 = SPHERExLevel2Image.read(poc)
    assert as_level2.zodi is None and as_level2.psf_model is None and as_level2.spectral_lookup is None
    np.testing.assert_array_equal(as_level2.data, SPHERExImage.read(poc).data)
    level2 = tmp_path / "l2.fits"
    make_level2_image(0, 3, size=SIZE, seed=3, **SHAPE).write(level2)
    plain = SPHERExImage.read(level2)
    assert str(plain.unit) == "MJy / sr" and plain.meta["DETECTOR"] == 3
    np.testing.assert_array_equal(plain.data, SPHERExLevel2Image.read(level2).data)


def test_real_published_headers_are_read(tmp_path: Path) -> None:
    # A 64 x 64 piece at the origin of IRSA's QR1 file, with the cards IRSA's tutorial printed.
    path = fixture_file(QR1_FILE, tmp_path / f"{QR1_FILE}.fits", shape=(64, 64))
    image = SPHERExLevel2Image.read(path)
    assert image.flag_defs == LEVEL2_FLAG_BITS
    assert image.flag_comments["NONLINEAR"] == "Pixel for which a reliable nonlinearity correction"
    assert image.flag_mask("SOURCE")[3, 4] and image.flag_mask("SOURCE").sum() == 1
    assert image.meta["OBSID"] == "2025W20_1C_0272_1" and image.meta["PSF_FWHM"] == pytest.approx(
        6.5563, 1e-4
    )
    assert image.meta["L2 N_SOURCE"] == 3986296
    assert image.wcs.wcs.ctype[0] == "RA---TAN-SIP"
    assert image.wcs.wcs.crval[0] == pytest.approx(302.19975794)
    # The printed wavelength and bandpass of pixel (0, 0).
    assert tuple(map(float, image.wavelength_at(0, 0))) == pytest.approx((5.01550913, 0.03924498), abs=1e-7)
    assert image.psf_model is None
    # A published file is real data: its exposure record will say has_simulated = False.
    observation = read_level2_observation(ResourcePath(path), Level2FileName.parse(path.name))
    assert observation.obs_id == "2025W20_1C_0272_1" and observation.detector == 6
    assert observation.simulated is False
    # Written back, what IRSA printed is still there.
    image.write(tmp_path / "again.fits")
    with fits.open(tmp_path / "again.fits") as hdul:
        assert hdul["IMAGE"].header["L2 N_SOURCE"] == 3986296
        assert hdul["FLAGS"].header.comments["MP_NONLINEAR"] == (
            "Pixel for which a reliable nonlinearity correction"
        )


def test_damaged_level2_tables_are_named(tmp_path: Path) -> None:
    path = tmp_path / "l2.fits"
    make_level2_image(0, 1, size=SIZE, seed=3, **SHAPE).write(path)
    with fits.open(path, mode="update") as hdul:
        hdul["ZODI"].data = np.zeros((4, 4), np.float32)
    with pytest.raises(
        FitsLayoutError, match=rf"{re.escape(str(path))}: the zodi plane .* has shape \(4, 4\)"
    ):
        SPHERExLevel2Image.read(path)


# -- 2. ingest-spherex --------------------------------------------------------------------------------------


@given(
    year=st.integers(2000, 2099),
    week=st.integers(1, 53),
    half=st.integers(0, 9),
    letter=st.sampled_from("ABCZ"),
    large=st.integers(0, 9999),
    small=st.integers(0, 9),
)
def test_exposure_id_from_obsid_round_trips(year, week, half, letter, large, small) -> None:
    obs_id = f"{year}W{week:02d}_{half}{letter}_{large:04d}_{small}"
    exposure = exposure_id_from_obsid(obs_id)
    assert 0 <= exposure < SPHERExInstrument.exposure_max
    assert obsid_from_exposure_id(exposure) == obs_id


def test_file_names_as_irsa_writes_them() -> None:
    name = "level2_2025W43_1A_0516_1D5_spx_l2b-v20-2025-299.fits"
    parsed = Level2FileName.parse(name)
    assert (parsed.obs_id, parsed.detector, parsed.version, parsed.processing_date) == (
        "2025W43_1A_0516_1",
        5,
        20,
        "2025-299",
    )
    assert parsed.exposure == 254310005161
    assert level2_filename("2025W43_1A_0516_1", 5, 20, "2025-299") == name


def test_ingest_spherex_records_components_and_idempotency(spherex_repo: str, level2_dir: Path) -> None:
    out, _ = butler("ingest-spherex", spherex_repo, str(level2_dir))
    assert "Ingested 12 spectralImage files (2 exposures) into SPHEREx/l2b-v20; 0 failed." in out
    out, _ = butler("ingest-spherex", spherex_repo, str(level2_dir))
    assert "Ingested 0 spectralImage files (0 exposures)" in out and "12 already present" in out
    with Butler.from_config(spherex_repo) as b:
        refs = b.query_datasets("spectralImage", collections="SPHEREx/l2b-v20")
        assert len(refs) == 12
        for record in b.query_dimension_records("exposure", instrument="SPHEREx"):
            path = next(level2_dir.glob(f"level2_{record.obs_id}D1_*.fits"))
            header = fits.getheader(path, "IMAGE")
            assert record.id == exposure_id_from_obsid(header["OBSID"])
            assert record.timespan.begin.utc.mjd == pytest.approx(header["MJD-BEG"], abs=1e-8)
            assert record.exposure_time == pytest.approx(header["XPOSURE"])
            assert record.group_name == header["OBSID"].rsplit("_", 2)[0]
            assert record.has_simulated  # spherex-simulate's files say so (SIMSEED)
        ref = next(r for r in refs if r.dataId["detector"] == 4)
        image = b.get(ref)
        assert isinstance(image, SPHERExLevel2Image) and image.spectral_lookup is not None
        np.testing.assert_array_equal(b.get(ref.makeComponentRef("zodi")), image.zodi)
        assert b.get(ref.makeComponentRef("psf")).cube.shape == (9, 11, 11)
        maps = b.get(ref.makeComponentRef("wavelength"), parameters={"slices": (slice(10, 12), slice(3, 6))})
        np.testing.assert_allclose(maps, image.wavelength_maps()[:, 10:12, 3:6], rtol=1e-6)
        cut = b.get(ref, parameters={"slices": (slice(10, 12), slice(3, 6))})
        assert cut.origin == (3, 10)


def test_missing_repository_is_one_line(level2_dir: Path, tmp_path: Path) -> None:
    missing = tmp_path / "NO_REPO"
    _, err = butler("ingest-spherex", str(missing), str(level2_dir), expect=1)
    assert err.strip().splitlines() == [
        f"Error: {missing}: no such repository; create it with 'butler create'"
    ]
    assert not missing.exists()


def test_bad_file_fails_alone(spherex_repo: str, level2_dir: Path, tmp_path: Path) -> None:
    files = shutil.copytree(level2_dir, tmp_path / "files")
    bad = sorted(files.glob("level2_*_0000_2D3_*.fits"))[0]
    bad.write_bytes(bad.read_bytes()[:20000])
    wrong = sorted(files.glob("level2_*_0000_1D6_*.fits"))[0]
    with fits.open(wrong, mode="update") as hdul:
        hdul["IMAGE"].header["DETECTOR"] = 2
    out, err = butler("ingest-spherex", spherex_repo, str(files), expect=1)
    assert f"error: {bad}: truncated: HDU" in err
    assert f"error: {wrong}: file name says detector 6 but header DETECTOR=2" in err
    assert "Traceback" not in out + err
    # Each bad file costs its own dataset only: the other five of each exposure land, as they would if
    # the bad one were missing, and each exposure record comes from its good files.
    assert "Ingested 10 spectralImage files (2 exposures)" in out and "2 failed" in out
    with Butler.from_config(spherex_repo) as b:
        assert len(b.query_dimension_records("exposure", instrument="SPHEREx", explain=False)) == 2
        by_exposure: dict[int, set[int]] = {}
        for ref in b.query_datasets("spectralImage", collections="SPHEREx/l2b-v20"):
            by_exposure.setdefault(ref.dataId["exposure"], set()).add(ref.dataId["detector"])
        # Detector 3 is missing from one exposure, 6 from the other.
        assert sorted(tuple(set(range(1, 7)) - d) for d in by_exposure.values()) == [(3,), (6,)]


def test_versions_go_to_their_own_runs(spherex_repo: str, level2_dir: Path, tmp_path: Path) -> None:
    files = tmp_path / "files"
    files.mkdir()
    for path in sorted(level2_dir.glob("level2_*_0000_1D1_*.fits")):
        shutil.copy(path, files / path.name)
        shutil.copy(path, files / path.name.replace("-v20-", "-v21-"))
    report = ingest_spherex(spherex_repo, [str(files)])
    assert report.ok and len(report.ingested) == 2
    with Butler.from_config(spherex_repo) as b:
        assert {
            r.run for r in b.query_datasets("spectralImage", collections="SPHEREx/*", find_first=False)
        } == {
            "SPHEREx/l2b-v20",
            "SPHEREx/l2b-v21",
        }


# -- 3. spherex-simulate --format level2 ---------------------------------------------------------------------


def test_simulate_cli_writes_irsa_names(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        simulate_cli,
        [str(tmp_path), "--format", "level2", "--size", "32", "--exposures", "1", "--detectors", "5"],
    )
    assert result.exit_code == 0, result.output
    (path,) = tmp_path.glob("*.fits")
    assert re.fullmatch(r"level2_\d{4}W\d{2}_1A_0000_1D5_spx_l2b-v20-2025-299\.fits", path.name)
    psf = fits.open(path)["PSF"]
    assert psf.data.shape == (121, 101, 101) and "XCTR_121" in psf.header and "XCTR_0" not in psf.header
    # IRSA's pattern (93.22727273 and 186.45454546 wide for 2040 pixels), here over 32 pixels.
    assert psf.header["XCTR_1"] == pytest.approx(0.5 * 32 / 11 + 0.5)
    assert psf.header["XWID_1"] == pytest.approx(32 / 11 + 1) and psf.header["XWID_2"] == pytest.approx(
        32 / 11
    )
    assert fits.open(path)["WCS-WAVE"].header["TDIM3"] == "(2,11,11)"


# -- 4. spatial and spectral queries -------------------------------------------------------------------------


def test_find_images_covering_a_position_and_their_wavelength(spherex_repo: str, level2_dir: Path) -> None:
    ingest_spherex(spherex_repo, [str(level2_dir)])
    path = sorted(level2_dir.glob("level2_*_0000_1D2_*.fits"))[0]
    image = SPHERExLevel2Image.read(path)
    ra, dec = image.wcs.pixel_to_world_values(20.0, 30.0)
    hits = find_spectral_images(spherex_repo, float(ra), float(dec))
    found = {(hit.ref.dataId["exposure"], hit.ref.dataId["detector"]) for hit in hits}
    exposure = exposure_id_from_obsid(image.meta["OBSID"])
    # Array 5 sees the sky of array 2 through the dichroic; arrays 1 and 3 look elsewhere.
    assert {(exposure, 2), (exposure, 5)} <= found
    assert not {(exposure, 1), (exposure, 3)} & found
    hit = next(h for h in hits if h.ref.dataId["detector"] == 2 and h.ref.dataId["exposure"] == exposure)
    assert (hit.x, hit.y) == (pytest.approx(20.0, abs=1e-6), pytest.approx(30.0, abs=1e-6))
    assert hit.wavelength == pytest.approx(float(image.wavelength_at(20, 30)[0]), rel=1e-6)


def test_hit_wavelength_is_irsas_wave_tab_at_the_fractional_pixel(
    spherex_repo: str, level2_dir: Path
) -> None:
    ingest_spherex(spherex_repo, [str(level2_dir)])
    path = sorted(level2_dir.glob("level2_*_0000_2D6_*.fits"))[0]
    with fits.open(path) as hdul:
        celestial = WCS(hdul["IMAGE"].header)
        spectral = WCS(hdul["IMAGE"].header, fobj=hdul, key="W")
        spectral.sip = None  # as IRSA's tutorial does for the spectral WCS
    for x, y in [(20.37, 30.81), (0.2, 46.9), (47.4, 0.3)]:
        ra, dec = celestial.pixel_to_world_values(x, y)
        (hit,) = [
            h
            for h in find_spectral_images(spherex_repo, float(ra), float(dec))
            if h.ref.dataId["detector"] == 6
            and path.name.startswith(f"level2_{h.ref.dataId.records['exposure'].obs_id}")
        ]
        wavelength, bandwidth = spectral.pixel_to_world_values(hit.x, hit.y)
        assert (hit.wavelength, hit.bandwidth) == (
            pytest.approx(wavelength, abs=1e-6),
            pytest.approx(bandwidth, abs=1e-7),
        )
    rounded = spectral.pixel_to_world_values(20.0, 31.0)[0]
    assert abs(rounded - spectral.pixel_to_world_values(20.37, 30.81)[0]) > 1e-5  # the fraction matters
