"""The simulated sky with known spectra: source spectra, their rendering, the deep field and its truth."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from astropy import units as u
from astropy.table import Table
from click.testing import CliRunner
from lsst.daf.butler import Butler
from lsst.daf.butler.cli.butler import cli as butler_cli

from spherex.core import SPHERExLevel2Image, mjy_per_sr_to_microjansky, pixel_solid_angle, psf_stamp
from spherex.instrument import exposure_id_from_obsid
from spherex.instrument.detectors import DETECTORS
from spherex.simulator.cli import main as simulate_cli
from spherex.simulator.deep_field import deep_field_sources
from spherex.simulator.level2 import make_level2_image
from spherex.simulator.pointing import EXPTIME_S
from spherex.simulator.sky_model import count_rate_calibration
from spherex.simulator.source_rendering import TRUTH_COLUMNS, render_sources
from spherex.simulator.spectra import ICE_WAVELENGTH, PAH_WAVELENGTH, SimulatedSource, SourceSpectrum

from .conftest import make_repo

SHAPE = dict(psf_zones=5, psf_size=41, wave_grid=7)
NEP = (270.0, 66.56)


def _psf_fit_flux(
    image: SPHERExLevel2Image, x: float, y: float, psf_of: tuple[float, float] | None = None
) -> float:
    """Flux density (microJy) of the PSF amplitude fitting the image at (x, y) by least squares.

    ``psf_of``: fit instead the PSF of another position (same sub-pixel phase), as a wrong zone would.
    """
    stamp, bbox = psf_stamp(image, x, y, half_size=6)
    if psf_of is not None:
        stamp, _ = psf_stamp(image, *psf_of, half_size=6)
    amplitude = (stamp * image.data[bbox]).sum() / (stamp**2).sum()
    return float(mjy_per_sr_to_microjansky(amplitude, pixel_solid_angle(image.wcs, x, y)))


def _sources_at(image: SPHERExLevel2Image, positions, spectra) -> list[SimulatedSource]:
    sources = []
    for index, ((x, y), spectrum) in enumerate(zip(positions, spectra, strict=True)):
        ra, dec = image.wcs.pixel_to_world_values(x, y)
        sources.append(SimulatedSource(f"s{index}", float(ra), float(dec), spectrum))
    return sources


# -- spectra ------------------------------------------------------------------------------------------------


def test_spectral_features_have_their_stated_size():
    ice = SourceSpectrum(500.0, slope=1.0, ice_depth=0.4)
    assert ice.kind == "ice"
    assert ice(ICE_WAVELENGTH) / ice.continuum(ICE_WAVELENGTH) == pytest.approx(0.6)
    assert ice(2.0) == pytest.approx(500.0, rel=1e-6)
    assert ice(4.5) == pytest.approx(ice.continuum(4.5), rel=1e-6)
    pah = SourceSpectrum(500.0, slope=0.0, pah_peak=1.2)
    assert pah.kind == "pah"
    assert pah(PAH_WAVELENGTH) == pytest.approx(500.0 * 2.2)
    assert pah(3.0) == pytest.approx(500.0)
    assert SourceSpectrum(10.0, slope=-2.0)(1.0) == pytest.approx(40.0)


def test_band_average_is_the_mean_over_the_band():
    spectrum = SourceSpectrum(300.0, slope=-1.0, ice_depth=0.5, pah_peak=0.0)
    wavelength, bandwidth = np.array([1.0, 3.05, 4.7]), np.array([0.025, 0.087, 0.037])
    fine = np.linspace(-0.5, 0.5, 20001)
    samples = [spectrum(w + b * fine) for w, b in zip(wavelength, bandwidth, strict=True)]
    expected = [0.5 * np.mean(y[1:] + y[:-1]) for y in samples]  # the trapezoid rule
    np.testing.assert_allclose(spectrum.band_average(wavelength, bandwidth), expected, rtol=1e-6)
    line = SourceSpectrum(300.0, slope=0.0, pah_peak=1.0)
    # A band wider than the line dilutes it: the band sees less than the line's peak.
    assert line.band_average(PAH_WAVELENGTH, 0.094) < 0.8 * line(PAH_WAVELENGTH)


@pytest.mark.parametrize(
    "kwargs", [{"flux_2um": 0.0, "slope": 0.0}, {"flux_2um": 1.0, "slope": 0.0, "ice_depth": 1}]
)
def test_unphysical_spectra_are_refused(kwargs):
    with pytest.raises(ValueError):
        SourceSpectrum(**kwargs)


# -- rendering ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("detector", [1, 4])
def test_truth_is_what_a_psf_fit_of_the_noiseless_pixels_gives(detector):
    image = make_level2_image(0, detector, size=256, seed=1, **SHAPE)
    image.data[:] = 0.0
    positions = [(40.3, 30.8), (128.0, 128.5), (200.71, 220.2), (230.5, 60.05)]
    spectra = [
        SourceSpectrum(2e4, slope=-2.0),
        SourceSpectrum(3e4, slope=1.0, ice_depth=0.5),
        SourceSpectrum(1e4, slope=0.0, pah_peak=1.5),
        SourceSpectrum(5e4, slope=1.5),
    ]
    truth = render_sources(image, _sources_at(image, positions, spectra), exposure=7, detector=detector)
    assert [row["name"] for row in truth] == ["s0", "s1", "s2", "s3"]
    for row, (x, y), spectrum in zip(truth, positions, spectra, strict=True):
        assert (row["x"], row["y"]) == pytest.approx((x, y), abs=1e-6)
        wavelength, bandwidth = image.wavelength_at(x, y)
        assert row["wavelength"] == pytest.approx(float(wavelength))
        assert row["flux"] == pytest.approx(float(spectrum.band_average(wavelength, bandwidth)))
        assert _psf_fit_flux(image, x, y) == pytest.approx(row["flux"], rel=1e-3)
        assert (row["exposure"], row["detector"]) == (7, detector)


def test_ice_absorption_has_its_depth_where_the_filter_passes_3_05_micron():
    image = make_level2_image(0, 4, size=256, seed=1, **SHAPE)
    image.data[:] = 0.0
    wavelength = image.wavelength_maps()[0][:, 128]
    row = float(np.interp(-ICE_WAVELENGTH, -wavelength, np.arange(256)))  # wavelength falls with row
    ice = SourceSpectrum(2e4, slope=1.0, ice_depth=0.45)
    (truth,) = render_sources(image, _sources_at(image, [(128.3, row)], [ice]), exposure=0, detector=4)
    assert truth["wavelength"] == pytest.approx(ICE_WAVELENGTH, abs=1e-3)
    depth = 1.0 - _psf_fit_flux(image, 128.3, row) / float(ice.continuum(ICE_WAVELENGTH))
    # The band (R = 35, 0.087 micron) averages the absorption over its width: 2% shallower.
    assert depth == pytest.approx(0.45, rel=0.03)


def test_fitting_with_another_zone_psf_is_visibly_wrong():
    image = make_level2_image(0, 2, size=256, seed=1, psf_zones=11, psf_size=41, wave_grid=7)
    image.data[:] = 0.0
    (row,) = render_sources(
        image, _sources_at(image, [(30.2, 200.6)], [SourceSpectrum(3e4, 0.0)]), exposure=0, detector=2
    )
    right = _psf_fit_flux(image, row["x"], row["y"])
    assert right == pytest.approx(row["flux"], rel=1e-3)
    # The PSF of the transposed zone (x and y swapped, the pre-fix IRSA header mix-up), and of the next
    # zone along x, each evaluated at the source's sub-pixel phase.
    transposed = _psf_fit_flux(image, row["x"], row["y"], psf_of=(row["x"] + 170.0, row["y"] - 170.0))
    neighbour = _psf_fit_flux(image, row["x"], row["y"], psf_of=(row["x"] + 23.0, row["y"]))
    # With a PSF about one pixel wide the pixel, not the zone's shape, sets most of a stamp: each wrong
    # zone misreads the flux by ~1%, ten times the error of the right one (IRSA's notice: up to 5%
    # with the real PSFs, whose wings our Gaussian zones lack).
    assert abs(transposed / row["flux"] - 1) > 0.005
    assert abs(neighbour / row["flux"] - 1) > 0.005
    assert not np.array_equal(image.psf_at(30, 200), image.psf_at(76, 154))


def test_noise_of_the_sources_is_the_variance_added():
    sky = make_level2_image(0, 4, size=128, seed=2, **SHAPE)
    quiet = make_level2_image(0, 4, size=128, seed=2, **SHAPE)
    noisy = make_level2_image(0, 4, size=128, seed=2, **SHAPE)
    grid = [(x + 0.3, y + 0.6) for x in range(12, 120, 12) for y in range(12, 120, 12)]
    sources = _sources_at(noisy, grid, [SourceSpectrum(2e7, slope=0.0)] * len(grid))
    render_sources(quiet, sources, exposure=0, detector=4)  # the same sources without noise
    electrons = EXPTIME_S / count_rate_calibration(4)  # per MJy/sr, as the deep field adds its sources
    truth = render_sources(
        noisy, sources, exposure=0, detector=4, electrons_per_unit=electrons, rng=np.random.default_rng(5)
    )
    assert len(truth) == len(grid)
    added = noisy.uncertainty.array - quiet.uncertainty.array
    lit = added > 10 * quiet.uncertainty.array  # where the sources' photon noise dominates
    assert lit.sum() > 300
    np.testing.assert_allclose(added[lit], (quiet.data - sky.data)[lit] / electrons, rtol=1e-3)
    pulls = (noisy.data - quiet.data)[lit] / np.sqrt(noisy.uncertainty.array[lit])
    assert abs(np.mean(pulls)) < 0.15
    assert np.std(pulls) == pytest.approx(1.0, abs=0.1)
    assert noisy.flag_mask("SOURCE")[lit].all()


# -- deep field ---------------------------------------------------------------------------------------------


README_DEEP_FIELD = (
    "--format level2 --size 128 --deep-field 270.0 66.56 --deep-field-steps 4 "
    "--deep-field-sources 3 --truth truth.ecsv --targets targets.csv deep_files"
)
"""The README's deep-field command, as written (after ``spherex-simulate``)."""


@pytest.fixture(scope="module")
def deep_field(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Table, list[Path]]:
    """The README's deep field: 3 x 4 exposures of all six 128-pixel arrays, three sources."""
    root = tmp_path_factory.mktemp("deep")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        result = CliRunner().invoke(simulate_cli, README_DEEP_FIELD.split())
    assert result.exit_code == 0, result.output
    return root, Table.read(root / "truth.ecsv"), sorted((root / "deep_files").glob("*.fits"))


def test_deep_field_sees_each_source_from_0_75_to_5_micron(deep_field):
    root, truth, paths = deep_field
    assert len(paths) == 3 * 4 * 6
    assert all(
        re.fullmatch(r"level2_2025W18_1A_\d{4}_\dD\d_spx_l2b-v20-2025-299\.fits", p.name) for p in paths
    )
    assert list(Table.read(root / "targets.csv")["kind"]) == ["continuum", "ice", "pah"]
    assert sorted(set(truth["name"])) == ["df01-continuum", "df02-ice", "df03-pah"]
    for name in set(truth["name"]):
        rows = truth[truth["name"] == name]
        assert set(rows["detector"]) == {info.id for info in DETECTORS}
        # Within one step (128 / 3 rows) of both ends of the range.
        assert rows["wavelength"].min() < 0.85 and rows["wavelength"].max() > 4.85
        # Arrays 1-3 and 4-6 look through the dichroic at the same sky: pairs in every exposure.
        for exposure in set(rows["exposure"]):
            detectors = sorted(rows["detector"][rows["exposure"] == exposure])
            assert len(detectors) == 2 and detectors[1] == detectors[0] + 3
    # The central source crosses the first and the last row of every array.
    central = truth[truth["name"] == "df01-continuum"]
    assert len(central) == 24
    assert central["wavelength"].min() < 0.751 and central["wavelength"].max() > 4.99


def test_truth_table_columns_and_units(deep_field):
    _, truth, _ = deep_field
    assert truth.colnames == list(TRUTH_COLUMNS)
    assert truth["wavelength"].unit == u.micron and truth["flux"].unit == u.uJy
    assert truth["ra"].unit == u.deg and truth["x"].unit == u.pix
    assert np.all(truth["flux"] > 0)


def test_truth_matches_the_written_pixels_within_their_noise(deep_field):
    _, truth, paths = deep_field
    images = {}
    for path in paths:
        image = SPHERExLevel2Image.read(path)
        images[exposure_id_from_obsid(image.meta["OBSID"]), image.meta["DETECTOR"]] = image.zodi_subtracted()
    pulls = []
    for row in truth:
        image = images[row["exposure"], row["detector"]]
        stamp, bbox = psf_stamp(image, row["x"], row["y"], 6)
        weight = (stamp**2).sum()
        amplitude = (stamp * image.data[bbox]).sum() / weight
        sigma = np.sqrt((stamp**2 * image.uncertainty.array[bbox]).sum()) / weight
        omega = pixel_solid_angle(image.wcs, row["x"], row["y"])
        measured, error = (float(mjy_per_sr_to_microjansky(v, omega)) for v in (amplitude, sigma))
        assert error < 0.2 * row["flux"]
        pulls.append((measured - row["flux"]) / error)
    assert len(pulls) == len(truth) == 60
    assert abs(np.median(pulls)) < 0.5
    assert 0.7 < np.std(pulls) < 1.4


def test_truth_names_the_data_ids_ingest_spherex_gives(deep_field, tmp_path):
    root, truth, _ = deep_field
    repo = make_repo(tmp_path / "DATA", register_instrument=False)
    result = CliRunner().invoke(butler_cli, ["ingest-spherex", repo, str(root / "deep_files")])
    assert result.exit_code == 0, result.output
    with Butler.from_config(repo) as butler:
        ingested = {
            (ref.dataId["exposure"], ref.dataId["detector"])
            for ref in butler.query_datasets("spectralImage", collections="*", find_first=False)
        }
    assert len(ingested) == 72
    assert {(int(e), int(d)) for e, d in zip(truth["exposure"], truth["detector"], strict=True)} <= ingested


def test_deep_field_sources_avoid_the_catalogue_stars():
    sources = deep_field_sources(*NEP, count=9, size=128, seed=4)
    assert [s.kind for s in sources[:3]] == ["continuum", "ice", "pah"]
    assert len({s.name for s in sources}) == 9
    with pytest.raises(ValueError, match="isolated positions"):
        deep_field_sources(*NEP, count=500, size=128, seed=4)


# -- the command line ---------------------------------------------------------------------------------------


def test_cli_deep_field_writes_truth_and_targets(tmp_path):
    args = [str(tmp_path / "files"), "--format", "level2", "--size", "64", "--detectors", "2,5"]
    args += ["--deep-field", "150.1", "2.2", "--deep-field-steps", "1", "--deep-field-sources", "2"]
    args += ["--truth", str(tmp_path / "truth.ecsv"), "--targets", str(tmp_path / "targets.csv")]
    result = CliRunner().invoke(simulate_cli, args)
    assert result.exit_code == 0, result.output
    assert "Wrote 6 simulated files" in result.output
    targets = Table.read(tmp_path / "targets.csv", format="ascii.csv")
    assert targets.colnames == ["name", "ra", "dec", "kind"]
    assert list(targets["name"]) == ["df01-continuum", "df02-ice"]
    truth = Table.read(tmp_path / "truth.ecsv")
    # One pointing per array column; the field is on arrays 2 and 5 only in the middle one.
    assert set(truth["detector"]) == {2, 5} and len(truth) == 4
    assert targets["ra"][0] == pytest.approx(150.1) and targets["dec"][0] == pytest.approx(2.2)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--truth", "t.ecsv"], "--truth needs --deep-field RA DEC"),
        (["--deep-field", "10", "20"], "--deep-field needs --format level2"),
        (
            ["--format", "level2", "--deep-field", "10", "20", "--exposures", "3"],
            "--exposures does not apply",
        ),
        (["--format", "level2", "--deep-field", "10", "89.5"], "celestial pole"),
        (["--format", "level2", "--deep-field", "10", "nan"], "must be finite"),
        (["--format", "level2", "--deep-field", "10", "20", "--start-exposure", "39990"], "0-39999"),
        (
            ["--format", "level2", "--deep-field", "10", "20", "--truth", "a.csv", "--targets", "a.csv"],
            "same file",
        ),
        (
            ["--format", "level2", "--deep-field", "10", "20", "--truth", "no/such/dir/t.ecsv"],
            "does not exist",
        ),
    ],
)
def test_cli_deep_field_errors_are_one_line_and_write_nothing(tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(simulate_cli, ["files", "--size", "32", *args])
    assert result.exit_code != 0
    assert message in result.output and len(result.output.strip().splitlines()) == 1
    assert not Path("files").exists() or not any(Path("files").iterdir())
