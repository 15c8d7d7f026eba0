"""Tests of the SPHEREx simulator (``spherex-simulate``): files, headers, WCS geometry and pixel content."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.time import Time
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from spherex.core import LEVEL2_FLAG_BITS, SPHERExImage
from spherex.instrument.detectors import DETECTORS
from spherex.simulator import (
    CADENCE_S,
    EXPOSURE_SPAN_S,
    EXPTIME_S,
    FIELD_SPAN_DEG,
    Pointing,
    SkyModel,
    StarField,
    array_wcs,
    count_rate_calibration,
    dark_filename,
    detector_model,
    exposure_pointing,
    planning_period,
    psf_sigma_pixels,
    raw_filename,
    render_point_sources,
    simulate,
    zodiacal_surface_brightness,
)
from spherex.simulator.cli import main

SIZE = 128
SEED = 7
RAW_REGEX = re.compile(r"sim_exposure_(\d+)_array_(\d).fits")
"""The regular expression ``butler ingest-simulated`` uses to find raw images."""


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Directory holding 2 exposures x 6 arrays of 128 x 128 pixels, seed 7."""
    outdir = tmp_path_factory.mktemp("sim")
    simulate(outdir, exposures=2, size=SIZE, seed=SEED)
    return outdir


def read(directory: Path, exposure: int, detector: int) -> tuple[SPHERExImage, SPHERExImage]:
    return (
        SPHERExImage.read(directory / raw_filename(exposure, detector)),
        SPHERExImage.read(directory / dark_filename(exposure, detector)),
    )


def truth(raw: SPHERExImage) -> tuple[np.ndarray, np.ndarray]:
    """Return the noiseless zodiacal background and star images behind a simulated raw image."""
    detector = raw.meta["DETECTOR"]
    sky = SkyModel(raw.meta["SIMSEED"], raw.shape[0])
    sigma = psf_sigma_pixels(detector, raw.meta["JITTER"])
    stars = sky.stars(raw.wcs, detector, margin=4 * sigma + 1)
    return sky.background(raw.wcs, detector), render_point_sources(stars, sigma, raw.shape[0])


def assert_same_images(dir1: Path, dir2: Path, names: list[str]) -> None:
    for name in names:
        with fits.open(dir1 / name) as hdul1, fits.open(dir2 / name) as hdul2:
            assert [hdu.name for hdu in hdul1] == [hdu.name for hdu in hdul2]
            for hdu1, hdu2 in zip(hdul1, hdul2, strict=True):
                assert hdu1.header == hdu2.header, name
                if hdu1.data is not None:
                    assert hdu1.data.tobytes() == hdu2.data.tobytes(), f"{name}[{hdu1.name}]"


# --- files ----------------------------------------------------------------------------------------


def test_file_names_and_count(simulated: Path) -> None:
    names = sorted(p.name for p in simulated.iterdir())
    expected = sorted(
        name
        for exposure in (0, 1)
        for d in range(1, 7)
        for name in (
            f"sim_exposure_{exposure:06d}_array_{d}.fits",
            f"sim_exposure_{exposure:06d}_array_{d}_dark_current.fits",
        )
    )
    assert names == expected
    raws = [(m.group(1), m.group(2)) for name in names if (m := RAW_REGEX.search(name))]
    assert sorted(raws) == [(f"{e:06d}", str(d)) for e in (0, 1) for d in range(1, 7)]
    assert len([n for n in names if n.endswith("dark_current.fits")]) == 12


def test_simulate_returns_written_paths(tmp_path: Path) -> None:
    paths = simulate(tmp_path / "new" / "dir", exposures=1, start_exposure=4, size=16, detectors=[6, 2])
    assert [p.name for p in paths] == [
        raw_filename(4, 2),
        dark_filename(4, 2),
        raw_filename(4, 6),
        dark_filename(4, 6),
    ]
    assert all(p.is_file() for p in paths)


def test_same_seed_gives_identical_pixels(simulated: Path, tmp_path: Path) -> None:
    # A separate run of exposure 1 alone, with the same seed, reproduces it bit for bit.
    simulate(tmp_path, exposures=1, start_exposure=1, size=SIZE, seed=SEED, detectors=[2, 5])
    names = [f(1, d) for d in (2, 5) for f in (raw_filename, dark_filename)]
    assert_same_images(simulated, tmp_path, names)


def test_other_seed_gives_other_sky(simulated: Path, tmp_path: Path) -> None:
    simulate(tmp_path, exposures=1, size=SIZE, seed=SEED + 1, detectors=[2])
    raw, _ = read(simulated, 0, 2)
    other = SPHERExImage.read(tmp_path / raw_filename(0, 2))
    assert not np.array_equal(raw.data, other.data)
    assert raw.meta["RA_BORE"] != other.meta["RA_BORE"]


def test_workers_give_the_same_output(tmp_path: Path) -> None:
    kwargs = dict(exposures=2, size=32, seed=3, detectors=[1, 5])
    serial = simulate(tmp_path / "serial", workers=1, **kwargs)
    parallel = simulate(tmp_path / "parallel", workers=2, **kwargs)
    assert [p.name for p in serial] == [p.name for p in parallel]
    assert_same_images(tmp_path / "serial", tmp_path / "parallel", [p.name for p in serial])


# --- headers --------------------------------------------------------------------------------------


def test_raw_headers(simulated: Path) -> None:
    path = simulated / raw_filename(1, 5)
    header = fits.getheader(path, 0)
    start = Time("2025-05-01T00:00:00", scale="utc") + CADENCE_S * u.s
    assert header["TELESCOP"] == "SPHEREx"
    assert header["INSTRUME"] == "simulator"
    assert header["ORIGIN"]
    assert header["IMAGETYP"] == "science"
    assert header["OBSID"] == "sim_000001"
    assert header["EXPID"] == 1
    assert header["DETECTOR"] == 5
    assert header["DATE-OBS"] == "2025-05-01T00:02:30.000"
    assert header["MJD-OBS"] == pytest.approx(start.mjd, abs=1e-9)
    # As IRSA's real headers: 113.58 s of integration within 118.19 s from start to end.
    assert header["EXPTIME"] == EXPTIME_S == 113.5826
    duration = Time(header["DATE-END"], scale="utc") - Time(header["DATE-OBS"], scale="utc")
    assert duration.sec == pytest.approx(EXPOSURE_SPAN_S, abs=1e-6) == 118.19
    assert (header["MJD-END"] - header["MJD-OBS"]) * 86400.0 == pytest.approx(118.19, abs=1e-3)
    assert header["GROUPID"] == 202518
    assert header["GROUPNAM"] == "SIM_2025W18"
    pointing = exposure_pointing(1, SEED)
    assert (header["RA_BORE"], header["DEC_BORE"]) == pytest.approx((pointing.ra, pointing.dec))
    assert 0.0 <= header["ROLL"] < 360.0
    assert 0.0 < header["JITTER"] < 5.0
    assert fits.getheader(path, "IMAGE")["BUNIT"] == "electron / s"
    with fits.open(path) as hdul:
        hdul.verify("exception")
        assert all(len(card.keyword) <= 8 for card in hdul[0].header.cards)
        flag_header = hdul["FLAGS"].header
    assert {k[3:]: v for k, v in flag_header.items() if k.startswith("MP_")} == dict(LEVEL2_FLAG_BITS)


def test_dark_headers(simulated: Path) -> None:
    raw = fits.getheader(simulated / raw_filename(1, 3), 0)
    dark = fits.getheader(simulated / dark_filename(1, 3), 0)
    assert dark["IMAGETYP"] == "dark"
    for keyword in ("DATE-OBS", "MJD-OBS", "EXPID", "OBSID", "DETECTOR", "EXPTIME", "GROUPID", "GROUPNAM"):
        assert dark[keyword] == raw[keyword], keyword
    assert fits.getheader(simulated / dark_filename(1, 3), "IMAGE")["BUNIT"] == "electron / s"


def test_planning_period_follows_the_iso_week() -> None:
    monday = exposure_pointing(4 * 86400 // int(CADENCE_S), SEED).start
    assert monday.isot == "2025-05-05T00:00:00.000"
    assert planning_period(monday) == (202519, "SIM_2025W19")


# --- WCS geometry ---------------------------------------------------------------------------------


def corners(size: int) -> tuple[np.ndarray, np.ndarray]:
    return np.array([-0.5, size - 0.5, size - 0.5, -0.5]), np.array([-0.5, -0.5, size - 0.5, size - 0.5])


def test_array_spans_three_and_a_half_degrees(simulated: Path) -> None:
    raw, _ = read(simulated, 0, 1)
    x, y = corners(SIZE)
    sky = raw.wcs.pixel_to_world(x, y)
    assert sky[0].separation(sky[1]).deg == pytest.approx(FIELD_SPAN_DEG, rel=1e-3)
    assert sky[1].separation(sky[2]).deg == pytest.approx(FIELD_SPAN_DEG, rel=1e-3)
    assert FIELD_SPAN_DEG == pytest.approx(3.5, abs=0.02)


def test_dichroic_arrays_see_the_same_sky(simulated: Path) -> None:
    x, y = corners(SIZE)
    for low in (1, 2, 3):
        swir, _ = read(simulated, 0, low)
        mwir, _ = read(simulated, 0, low + 3)
        np.testing.assert_allclose(
            swir.wcs.wcs_pix2world(x, y, 0), mwir.wcs.wcs_pix2world(x, y, 0), rtol=0, atol=1e-9
        )


def test_arrays_one_to_three_are_adjacent_and_do_not_overlap(simulated: Path) -> None:
    wcs = {d: read(simulated, 0, d)[0].wcs for d in (1, 2, 3)}
    rows = np.arange(SIZE, dtype=float)
    for left, right in ((1, 2), (2, 3)):
        # The facing edge pixels of two neighbours are next to each other: the centres of the left array's
        # last column fall one pixel before the right array's first column, over the whole edge.
        ra, dec = wcs[left].wcs_pix2world(np.full(SIZE, SIZE - 1.0), rows, 0)
        x, y = wcs[right].wcs_world2pix(ra, dec, 0)
        np.testing.assert_allclose(x, -1.0, atol=0.05)
        np.testing.assert_allclose(y, rows, atol=0.05)
        # And no pixel of one lands on the other.
        xx, yy = np.meshgrid(np.arange(SIZE, dtype=float), rows)
        x, y = wcs[right].wcs_world2pix(*wcs[left].wcs_pix2world(xx.ravel(), yy.ravel(), 0), 0)
        assert not np.any((x > -0.5) & (x < SIZE - 0.5) & (y > -0.5) & (y < SIZE - 0.5))


def test_consecutive_exposures_point_elsewhere(simulated: Path) -> None:
    boresights = [read(simulated, e, 2)[0].wcs.pixel_to_world((SIZE - 1) / 2, (SIZE - 1) / 2) for e in (0, 1)]
    step = boresights[0].separation(boresights[1]).deg
    assert 2.0 < step < 3.0
    later = [exposure_pointing(e, SEED) for e in (2, 3)]
    assert (later[0].ra, later[0].dec) != (later[1].ra, later[1].dec)
    # The pointing is a function of the seed and the exposure id alone.
    assert exposure_pointing(1, SEED) == exposure_pointing(1, SEED)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    exposure=st.integers(0, 10**5),
    size=st.sampled_from([16, 100, 2040]),
)
def test_array_geometry_holds_for_any_pointing(seed: int, exposure: int, size: int) -> None:
    pointing = exposure_pointing(exposure, seed)
    wcs = {d: array_wcs(pointing, d, size) for d in range(1, 7)}
    for d in (1, 2, 3):
        np.testing.assert_allclose(wcs[d].wcs.crval, wcs[d + 3].wcs.crval, atol=0)
        np.testing.assert_allclose(wcs[d].wcs.get_pc(), wcs[d + 3].wcs.get_pc(), atol=0)
    rows = np.linspace(0, size - 1, 7)
    for left, right in ((1, 2), (2, 3)):
        ra, dec = wcs[left].wcs_pix2world(np.full(rows.size, size - 1.0), rows, 0)
        x, y = wcs[right].wcs_world2pix(ra, dec, 0)
        np.testing.assert_allclose(x, -1.0, atol=0.05)
        np.testing.assert_allclose(y, rows, atol=0.05)
    following = exposure_pointing(exposure + 1, seed)
    step = SkyCoord(pointing.ra, pointing.dec, unit="deg").separation(
        SkyCoord(following.ra, following.dec, unit="deg")
    )
    assert 2.0 < step.deg < 3.0


@pytest.mark.parametrize(
    ("ra", "dec", "roll"),
    [(359.99, 0.0, 0.0), (0.01, 1.0, 90.0), (45.0, 89.3, 30.0), (200.0, -88.9, 250.0), (123.0, 60.0, 10.0)],
)
def test_stars_on_an_array_are_every_catalogue_star_there(ra: float, dec: float, roll: float) -> None:
    # Around the RA wrap and the poles too: the cells searched hold every star that lands on the array.
    pointing = Pointing(0, Time("2025-05-01T00:00:00", scale="utc"), EXPTIME_S, ra, dec, roll, 1.0)
    sky = SkyModel(SEED, 400)
    for detector in (1, 3):
        wcs = array_wcs(pointing, detector, 400)
        found = sky.stars(wcs, detector)
        all_ra, all_dec, _, _ = sky._catalogue_near(ra, dec, 12.0)
        x, y = wcs.wcs_world2pix(all_ra, all_dec, 0)
        on = (x > -0.5) & (x < 399.5) & (y > -0.5) & (y < 399.5)
        assert len(found) > 50
        assert sorted(zip(found.ra, found.dec, strict=True)) == sorted(
            zip(all_ra[on], all_dec[on], strict=True)
        )


# --- pixels ---------------------------------------------------------------------------------------


class StarCutouts:
    """Catalogue stars on one raw image, cut out of raw - dark with the sky and all other stars removed."""

    def __init__(self, raw: SPHERExImage, dark: SPHERExImage) -> None:
        detector = raw.meta["DETECTOR"]
        self.raw = raw
        self.sigma = raw.meta["PSFSIGMA"]
        sky = SkyModel(raw.meta["SIMSEED"], SIZE)
        # Pixel positions from the file's own WCS, for the catalogue's sky coordinates.
        self.stars = sky.stars(raw.wcs, detector, margin=4 * self.sigma + 1)
        all_stars = render_point_sources(self.stars, self.sigma, SIZE)
        self.residual = raw.data - dark.data - sky.background(raw.wcs, detector) - all_stars
        self.variance = raw.uncertainty.array + dark.uncertainty.array
        self.defective = raw.flag_mask("HOT", "COLD", "NONFUNC", "OVERFLOW")

    def find(self, ra: float, dec: float) -> int | None:
        match = np.flatnonzero((self.stars.ra == ra) & (self.stars.dec == dec))
        return int(match[0]) if match.size else None

    def single(self, index: int, dx: float = 0.0, dy: float = 0.0) -> np.ndarray:
        s = self.stars
        star = StarField(s.ra[[index]], s.dec[[index]], s.x[[index]] + dx, s.y[[index]] + dy, s.flux[[index]])
        return render_point_sources(star, self.sigma, SIZE)

    def box(self, index: int) -> tuple[slice, slice] | None:
        """Return the 5 x 5 box around a star, or None if it is cut by the edge or holds a defect."""
        col, row = round(self.stars.x[index]), round(self.stars.y[index])
        if not (2 <= col < SIZE - 2 and 2 <= row < SIZE - 2):
            return None
        box = np.s_[row - 2 : row + 3, col - 2 : col + 3]
        return None if self.defective[box].any() else box

    def chi2(self, index: int, dx: float = 0.0, dy: float = 0.0) -> float:
        """Return the chi^2 per pixel of the star's pixels against its model moved by (dx, dy)."""
        box = self.box(index)
        image = self.residual + self.single(index)
        return float(np.mean((image[box] - self.single(index, dx, dy)[box]) ** 2 / self.variance[box]))


def test_stars_appear_at_their_wcs_positions(simulated: Path) -> None:
    checked = 0
    for exposure in (0, 1):
        for detector in range(1, 7):
            cutouts = StarCutouts(*read(simulated, exposure, detector))
            for index in np.flatnonzero(cutouts.stars.flux > 15):
                box = cutouts.box(index)
                if box is None:
                    continue
                image = (cutouts.residual + cutouts.single(index))[box]
                yy, xx = np.mgrid[box]
                centroid = ((xx * image).sum() / image.sum(), (yy * image).sum() / image.sum())
                assert centroid == pytest.approx((cutouts.stars.x[index], cutouts.stars.y[index]), abs=0.2)
                assert image.sum() == pytest.approx(cutouts.stars.flux[index], rel=0.15)
                assert cutouts.raw.flag_mask("SOURCE")[box][2, 2]
                checked += 1
    assert checked >= 3


def test_overlapping_exposures_see_the_same_stars(simulated: Path) -> None:
    first = [StarCutouts(*read(simulated, 0, d)) for d in (1, 2, 3)]
    second = [StarCutouts(*read(simulated, 1, d)) for d in (1, 2, 3)]
    # Catalogue stars seen, clear of edges and defects, in both exposures: (flux, cutouts, index) pairs.
    common = []
    for a in first:
        for i in range(len(a.stars)):
            for b in second:
                j = b.find(a.stars.ra[i], a.stars.dec[i])
                if j is not None and a.box(i) is not None and b.box(j) is not None:
                    common.append((a.stars.flux[i], (a, i), (b, j)))
    assert common, "consecutive exposures must overlap"
    for cutouts, index in max(common, key=lambda item: item[0])[1:]:
        # The catalogue star, at its WCS position, explains the pixels down to the noise; one pixel off, not.
        best = cutouts.chi2(index)
        assert best < 2.5
        assert min(cutouts.chi2(index, dx, dy) for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1))) > best + 3


def test_raw_minus_dark_is_sky_plus_sources(simulated: Path) -> None:
    for detector in (1, 6):
        raw, dark = read(simulated, 0, detector)
        background, stars = truth(raw)
        residual = raw.data - dark.data - background - stars
        sigma = np.sqrt(raw.uncertainty.array + dark.uncertainty.array)
        good = ~raw.flag_mask("HOT", "COLD", "NONFUNC", "OVERFLOW")
        chi = residual[good] / sigma[good]
        assert abs(chi.mean()) < 5 / np.sqrt(chi.size)
        assert np.mean(chi**2) == pytest.approx(1.0, abs=0.1)
        # The dark current is gone, even where it dominates: hot pixels are sky + noise after subtraction.
        hot = raw.flag_mask("HOT")
        assert np.median(raw.data[hot] - background[hot]) > 1.0
        assert np.all(np.abs(residual[hot]) < 5 * sigma[hot])


def test_sky_background_is_darkest_near_3_5_micron(simulated: Path) -> None:
    """Zodiacal light (MJy/sr) falls from band 1 to band 4 (scattered sunlight), rises to band 6 (thermal)."""
    levels = []
    for detector in range(1, 7):
        raw, dark = read(simulated, 0, detector)
        clean = ~raw.flag_mask("HOT", "COLD", "NONFUNC", "SOURCE")
        levels.append(np.median((raw.data - dark.data)[clean]) * count_rate_calibration(detector))
    assert all(a > b for a, b in zip(levels[:4], levels[1:4], strict=False)), levels
    assert all(a < b for a, b in zip(levels[3:], levels[4:], strict=False)), levels
    assert all(0.04 < level < 1.0 for level in levels), levels
    wavelength = np.linspace(0.75, 5.0, 426)
    assert 3.2 < wavelength[np.argmin(zodiacal_surface_brightness(wavelength))] < 3.8


def test_variance_matches_pixel_scatter(simulated: Path) -> None:
    # Model-free: differences of neighbouring source-free pixels remove the smooth sky.
    chi2 = []
    for detector in range(1, 7):
        raw, dark = read(simulated, 0, detector)
        diff = raw.data.astype(float) - dark.data
        variance = raw.uncertainty.array.astype(float) + dark.uncertainty.array
        good = ~raw.flag_mask("HOT", "COLD", "NONFUNC", "SOURCE", "OVERFLOW")
        pair = good[:, 1:] & good[:, :-1]
        delta = (diff[:, 1:] - diff[:, :-1])[pair]
        chi2.append(np.mean(delta**2 / (variance[:, 1:] + variance[:, :-1])[pair]))
    assert np.mean(chi2) == pytest.approx(1.0, abs=0.05)


def test_hot_pixels_are_flagged_in_raw_and_dark(simulated: Path) -> None:
    for detector in (2, 5):
        raw, dark = read(simulated, 1, detector)
        model = detector_model(detector, SIZE, SEED)
        hot = model.flags & (1 << LEVEL2_FLAG_BITS["HOT"]) != 0
        assert 3 <= hot.sum() < 0.01 * SIZE * SIZE
        np.testing.assert_array_equal(raw.flag_mask("HOT"), hot)
        np.testing.assert_array_equal(dark.flag_mask("HOT"), hot)
        np.testing.assert_array_equal(dark.flags, model.flags)
        assert np.all(dark.data[hot] > 0.4)
        assert np.median(dark.data[~hot]) < 0.1
        assert raw.flag_mask("COLD").any() and raw.flag_mask("NONFUNC").any()
        assert raw.flag_defs == dict(LEVEL2_FLAG_BITS)


def test_hot_pixels_stay_hot_across_exposures(simulated: Path) -> None:
    np.testing.assert_array_equal(read(simulated, 0, 4)[1].flags, read(simulated, 1, 4)[1].flags)


# --- command line and errors ----------------------------------------------------------------------


def test_cli(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        [str(tmp_path), "--size", "32", "--exposures", "1", "--start-exposure", "3", "--detectors", "1,4"],
    )
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"Wrote 4 simulated files to {tmp_path}"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        f(3, d) for d in (1, 4) for f in (raw_filename, dark_filename)
    )


def test_python_m(tmp_path: Path) -> None:
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "spherex.simulator",
            str(tmp_path),
            "--size",
            "16",
            "--exposures",
            "1",
            "--detectors",
            "2",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert "Wrote 2 simulated files" in completed.stdout
    assert (tmp_path / raw_filename(0, 2)).is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--size", "8"], "Invalid value for '--size'"),
        (["--exposures", "0"], "Invalid value for '--exposures'"),
        (["--workers", "0"], "Invalid value for '--workers'"),
        (["--detectors", "7"], "7 is not a detector id (1-6)"),
        (["--detectors", "1,x"], "'x' is not a detector id (1-6)"),
        (["--seed", "-1"], "Invalid value for '--seed'"),
    ],
)
def test_cli_bad_option_is_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(main, [str(tmp_path), *args])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:") and message in lines[0], result.output
    assert not list(tmp_path.iterdir())


@settings(max_examples=25, deadline=None)
@given(
    size=st.integers(max_value=15),
    detectors=st.text(min_size=1).filter(lambda t: t.strip() not in set("123456")),
)
def test_cli_rejects_any_bad_size_or_detector(
    tmp_path_factory: pytest.TempPathFactory, size: int, detectors: str
) -> None:
    outdir = tmp_path_factory.mktemp("bad")
    for args in (["--size", str(size)], ["--detectors", detectors]):
        result = CliRunner().invoke(main, [str(outdir), *args])
        assert result.exit_code == 2, (args, result.output)
        assert len(result.output.strip().splitlines()) == 1 and result.output.startswith("Error:")
    assert not list(outdir.iterdir())


def test_cli_unwritable_outdir(tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    result = CliRunner().invoke(main, [str(blocker / "sim"), "--size", "16"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"Error: Cannot create output directory {blocker / 'sim'}: Not a directory. Choose a writable OUTDIR."
    ]
    assert "Traceback" not in result.output


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write to read-only directories")
def test_cli_read_only_outdir(tmp_path: Path) -> None:
    outdir = tmp_path / "ro"
    outdir.mkdir()
    outdir.chmod(0o555)
    try:
        result = CliRunner().invoke(main, [str(outdir), "--size", "16"])
    finally:
        outdir.chmod(0o755)
    assert result.exit_code == 1
    assert (
        "Cannot write to output directory" in result.output and len(result.output.strip().splitlines()) == 1
    )


def test_simulate_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="size must be at least 16"):
        simulate(tmp_path, size=8)
    with pytest.raises(LookupError, match="no detector 7"):
        simulate(tmp_path, size=16, detectors=[1, 7])
    with pytest.raises(ValueError, match="exposures must be at least 1"):
        simulate(tmp_path, exposures=0)
    assert not list(tmp_path.iterdir())


def test_every_detector_has_a_band_and_a_field() -> None:
    pointing = exposure_pointing(0, SEED)
    centres = {d.id: array_wcs(pointing, d.id, SIZE).wcs.crval.copy() for d in DETECTORS}
    assert len({tuple(c) for c in centres.values()}) == 3


def test_cli_progress(tmp_path: Path) -> None:
    from lsst.daf.butler.progress import Progress

    try:
        result = CliRunner().invoke(main, [str(tmp_path), "--size", "16", "--exposures", "1", "--progress"])
    finally:
        Progress.set_handler(None)
    assert result.exit_code == 0, result.output
    assert "Simulating arrays" in result.output
    assert result.output.strip().splitlines()[-1] == f"Wrote 12 simulated files to {tmp_path}"
