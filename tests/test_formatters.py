"""Tests of spherex.formatters through a real Butler repository made from the package's seed config."""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Iterator
from pathlib import Path

import astropy.units as u
import numpy as np
import pytest
from astropy.io import fits
from astropy.nddata import CCDData, StdDevUncertainty, VarianceUncertainty
from astropy.wcs import WCS
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lsst.daf.butler import (
    Butler,
    Config,
    DatasetRef,
    DatasetType,
    FileDataset,
    StorageClassFactory,
)
from lsst.daf.butler.cli.butler import cli as butler_cli

from spherex.core import LEVEL2_FLAG_BITS, FitsLayoutError, SPHERExImage, SPHERExImageError
from spherex.formatters import (
    AstropyImageFormatter,
    CCDDataFormatter,
    SPHERExImageDelegate,
    SPHERExImageFormatter,
)

from .conftest import make_repo
from .test_spherex_image import (
    assert_bit_exact,
    assert_same_image,
    assert_same_wcs,
    make_image,
    meta_cards,
    needs_fitsverify,
    run_fitsverify,
    spherex_images,
)

INSTRUMENT = "simulator"
RUN = "u/test/formatters"
# Dataset types written with formatter parameters set in the repository configuration (see ``butler``).
CONFIGURED_FORMATTERS = {
    "rawexpGzip": {
        "formatter": "spherex.formatters.SPHERExImageFormatter",
        "parameters": {"recipe": "lossless"},
    },
    "rawexpRice": {
        "formatter": "spherex.formatters.SPHERExImageFormatter",
        "parameters": {"compression": "RICE_1"},
    },
    "ccdRice": {"formatter": "spherex.formatters.CCDDataFormatter", "parameters": {"compression": "RICE_1"}},
    "hdulGzip": {
        "formatter": "spherex.formatters.AstropyImageFormatter",
        "parameters": {"compression": "GZIP_2", "checksum": True},
    },
    "rawexpNoRecipe": {
        "formatter": "spherex.formatters.SPHERExImageFormatter",
        "parameters": {"recipe": "nonexistent"},
    },
}
DATASET_TYPES = {
    "rawexp": ("SPHERExImage", ("instrument", "exposure", "detector")),
    "rawexpGzip": ("SPHERExImage", ("instrument", "exposure", "detector")),
    "rawexpRice": ("SPHERExImage", ("instrument", "exposure", "detector")),
    "rawexpNoRecipe": ("SPHERExImage", ("instrument", "exposure", "detector")),
    "ccd": ("CCDData", ("instrument", "exposure", "detector")),
    "ccdRice": ("CCDData", ("instrument", "exposure", "detector")),
    "hdul": ("AstropyImage", ("instrument", "exposure", "detector")),
    "hdulGzip": ("AstropyImage", ("instrument", "exposure", "detector")),
    "myimage": ("MyImage", ("instrument", "exposure", "detector")),
}


def insert_exposure(butler: Butler, exposure: int) -> None:
    """Insert an exposure record (timespan and region omitted)."""
    butler.registry.insertDimensionData(
        "exposure",
        {
            "instrument": INSTRUMENT,
            "id": exposure,
            "obs_id": f"2025W18_1B_{exposure:04d}",
            "exposure_time": 112.0,
            "observation_type": "science",
            "group_name": "2025W18_1B",
            "group_id": 1,
            "tracking_ra": 150.1,
            "tracking_dec": 2.2,
            "sky_angle": 0.0,
            "gaussian_jitter": 0.1,
            "has_simulated": True,
        },
    )


def make_butler(root: Path) -> Butler:
    """Create a repository (simulator registered), configure formatter parameters, register types."""
    repo = make_repo(root)
    config = Config(str(root / "butler.yaml"))
    for name, entry in CONFIGURED_FORMATTERS.items():
        config["datastore", "formatters", name] = entry
    config.dumpToUri(str(root / "butler.yaml"))
    butler = Butler.from_config(repo, writeable=True, run=RUN)
    insert_exposure(butler, 1)
    for name, (storage_class, dimensions) in DATASET_TYPES.items():
        butler.registry.registerDatasetType(
            DatasetType(name, dimensions, storage_class, universe=butler.dimensions)
        )
    return butler


@pytest.fixture
def butler(repo: str) -> Iterator[Butler]:
    root = Path(repo)
    shutil.rmtree(root)
    with make_butler(root) as butler:
        yield butler


def data_id(detector: int = 1, exposure: int = 1) -> dict[str, object]:
    return {"instrument": INSTRUMENT, "exposure": exposure, "detector": detector}


def local_path(butler: Butler, ref: DatasetRef) -> Path:
    return Path(butler.getURI(ref).ospath)


# -- SPHERExImage ----------------------------------------------------------------------------------------


def test_formatters_import_from_plain_python() -> None:
    assert SPHERExImageFormatter.name() == "spherex.formatters.spherex_image.SPHERExImageFormatter"
    assert CCDDataFormatter.default_extension == AstropyImageFormatter.default_extension == ".fits"


@pytest.mark.parametrize("mask", [False, True])
def test_put_get_round_trip_is_exact(butler: Butler, mask: bool) -> None:
    image = make_image(shape=(64, 48), mask=mask, sip=True)
    ref = butler.put(image, "rawexp", data_id())
    assert_same_image(butler.get("rawexp", data_id()), image)
    assert_same_image(butler.get(ref), image)
    path = local_path(butler, ref)
    assert path.suffix == ".fits"
    with fits.open(path) as hdul:
        expected = ["PRIMARY", "IMAGE", "FLAGS", "VARIANCE"] + (["MASK"] if mask else [])
        assert [hdu.name for hdu in hdul] == expected
        assert hdul[0].header["OBSID"] == "2025W18_1B_0042_3"


def test_default_unit_round_trips_as_electron_per_second(butler: Butler) -> None:
    image = SPHERExImage(np.arange(12, dtype=np.float32).reshape(3, 4))
    ref = butler.put(image, "rawexp", data_id())
    assert butler.get(ref).unit == u.electron / u.s
    assert u.Unit(fits.getheader(local_path(butler, ref), "IMAGE")["BUNIT"]) == u.electron / u.s


def test_components_are_read_on_their_own(butler: Butler) -> None:
    image = make_image(shape=(64, 48), sip=True)
    butler.put(image, "rawexp", data_id())
    assert_bit_exact(butler.get("rawexp.image", data_id()), image.data)
    assert_bit_exact(butler.get("rawexp.variance", data_id()), image.uncertainty.array)
    assert_bit_exact(butler.get("rawexp.flags", data_id()), image.flags)
    assert butler.get("rawexp.mask", data_id()) is None
    assert_same_wcs(butler.get("rawexp.wcs", data_id()), image.wcs, image.shape)
    metadata = butler.get("rawexp.metadata", data_id())
    assert isinstance(metadata, fits.Header)
    assert meta_cards(metadata) == meta_cards(image.meta)


def _bytes_read() -> int:
    with open("/proc/self/io") as stream:
        return int(next(line for line in stream if line.startswith("rchar:")).split()[1])


@pytest.mark.skipif(
    not Path("/proc/self/io").exists(), reason="needs Linux /proc/self/io to count bytes read"
)
def test_component_read_reads_only_its_hdu(butler: Butler) -> None:
    image = make_image(shape=(512, 512))
    ref = butler.put(image, "rawexp", data_id())
    size = local_path(butler, ref).stat().st_size
    butler.get("rawexp.flags", data_id())  # warm up registry caches
    before = _bytes_read()
    variance = butler.get("rawexp.variance", data_id())
    component_bytes = _bytes_read() - before
    before = _bytes_read()
    butler.get("rawexp", data_id())
    full_bytes = _bytes_read() - before
    assert variance.nbytes == 512 * 512 * 4
    assert full_bytes > 0.95 * size
    # One plane of three, plus headers and the registry look-up.
    assert component_bytes < 0.5 * full_bytes


@pytest.mark.skipif(
    not Path("/proc/self/io").exists(), reason="needs Linux /proc/self/io to count bytes read"
)
def test_cutout_reads_only_the_rows_it_spans(butler: Butler) -> None:
    """A cutout by a ref with its datastore records reads its rows of each plane, and no header again."""
    image = make_image(shape=(1024, 1024))
    butler.put(image, "rawexp", data_id())
    ref = butler.find_dataset("rawexp", data_id(), collections=RUN, datastore_records=True)
    slices = (slice(500, 564), slice(300, 364))
    butler.get(ref, parameters={"slices": slices})  # the file's headers are scanned, and cached
    before = _bytes_read()
    cutout = butler.get(ref, parameters={"slices": slices})
    read = _bytes_read() - before
    assert_bit_exact(cutout.data, image.data[slices])
    assert_bit_exact(cutout.flags, image.flags[slices])
    # 64 rows of 1024 pixels of 4 bytes in each of IMAGE, FLAGS and VARIANCE: 0.75 of 12 MiB.
    rows = 3 * 64 * 1024 * 4
    assert rows <= read < rows + 2880, read - rows


@pytest.mark.parametrize("dataset_type", ["rawexp", "rawexpGzip", "rawexpRice"])
def test_slices_parameter_returns_cutout_of_every_plane(butler: Butler, dataset_type: str) -> None:
    image = make_image(shape=(80, 64), mask=True, sip=True)
    butler.put(image, dataset_type, data_id())
    full = butler.get(dataset_type, data_id())
    slices = (slice(10, 42), slice(20, 60))
    cutout = butler.get(dataset_type, data_id(), parameters={"slices": slices})
    expected = full[slices]
    assert cutout.shape == (32, 40)
    assert_bit_exact(cutout.data, expected.data)
    assert_bit_exact(cutout.flags, expected.flags)
    assert_bit_exact(cutout.uncertainty.array, expected.uncertainty.array)
    np.testing.assert_array_equal(cutout.mask, expected.mask)
    assert cutout.flag_defs == image.flag_defs
    assert_same_wcs(cutout.wcs, expected.wcs, expected.shape)
    # The cutout's pixel (0, 0) is the image's pixel (x=20, y=10) on the sky.
    assert cutout.wcs.pixel_to_world(0, 0).separation(full.wcs.pixel_to_world(20, 10)).arcsec < 1e-9
    variance = butler.get(f"{dataset_type}.variance", data_id(), parameters={"slices": slices})
    assert_bit_exact(variance, expected.uncertainty.array)
    wcs = butler.get(f"{dataset_type}.wcs", data_id(), parameters={"slices": slices})
    assert_same_wcs(wcs, expected.wcs, expected.shape)


def test_bad_slices_parameter_raises(butler: Butler) -> None:
    butler.put(make_image(), "rawexp", data_id())
    with pytest.raises(ValueError, match="selects no pixels") as info:
        butler.get("rawexp", data_id(), parameters={"slices": (slice(5, 5),)})
    assert isinstance(info.value.__cause__, SPHERExImageError)
    with pytest.raises(KeyError, match="not understood"):
        butler.get("rawexp", data_id(), parameters={"bbox": (0, 0, 5, 5)})


def test_compression_set_in_repository_config(butler: Butler) -> None:
    image = make_image(shape=(96, 80), mask=True)
    gzip_ref = butler.put(image, "rawexpGzip", data_id())
    rice_ref = butler.put(image, "rawexpRice", data_id())
    plain_ref = butler.put(image, "rawexp", data_id())
    for ref in (gzip_ref, rice_ref):
        with fits.open(local_path(butler, ref)) as hdul:
            assert hdul[0].data is None
            assert all(isinstance(hdu, fits.CompImageHDU) for hdu in hdul[1:])
    assert local_path(butler, rice_ref).stat().st_size < local_path(butler, plain_ref).stat().st_size
    assert_same_image(butler.get(gzip_ref), image)
    rice = butler.get(rice_ref)
    assert_bit_exact(rice.flags, image.flags)
    np.testing.assert_array_equal(rice.mask, image.mask)
    assert np.max(np.abs(rice.data - image.data)) < np.std(image.data) / 4


def test_unknown_write_recipe_raises(butler: Butler) -> None:
    with pytest.raises(RuntimeError, match="Failed to serialize dataset rawexpNoRecipe") as info:
        butler.put(make_image(), "rawexpNoRecipe", data_id())
    assert isinstance(info.value.__cause__, SPHERExImageError)
    assert "Write recipe 'nonexistent' is not defined" in str(info.value.__cause__)


def test_wrong_python_type_put_raises(butler: Butler) -> None:
    with pytest.raises(TypeError, match="numpy.ndarray"):
        butler.put(np.zeros((4, 4)), "rawexp", data_id())
    with pytest.raises(TypeError, match="HDUList"):
        butler.put(fits.HDUList([fits.PrimaryHDU()]), "rawexp", data_id())
    with pytest.raises(TypeError):
        butler.put(make_image(), "hdul", data_id())


def test_damaged_file_in_datastore_raises_naming_the_file(butler: Butler) -> None:
    ref = butler.put(make_image(), "rawexp", data_id())
    path = local_path(butler, ref)
    size = path.stat().st_size
    path.write_bytes(b"This is not a FITS file. " * (size // 25) + b"x" * (size % 25))
    with pytest.raises(ValueError, match="not a readable FITS file") as info:
        butler.get(ref)
    assert isinstance(info.value.__cause__, FitsLayoutError)
    assert info.value.__cause__.path == str(path)
    with pytest.raises(ValueError, match=str(path)):
        butler.get("rawexp.variance", data_id())


def test_missing_file_in_datastore_raises(butler: Butler) -> None:
    ref = butler.put(make_image(), "rawexp", data_id())
    local_path(butler, ref).unlink()
    with pytest.raises(FileNotFoundError):
        butler.get(ref)


def test_ingested_level2_like_file_reads(butler: Butler, tmp_path: Path) -> None:
    image = make_image(shape=(30, 20))
    path = tmp_path / "level2.fits"
    hdul = image.to_hdulist()
    hdul.append(fits.ImageHDU(np.zeros((30, 20), np.float32), name="ZODI"))
    hdul.writeto(path)
    dataset_type = butler.get_dataset_type("rawexp")
    ref = DatasetRef(dataset_type, butler.registry.expandDataId(data_id(3)), run=RUN)
    butler.ingest(FileDataset(path=str(path), refs=[ref]), transfer="copy")
    assert_same_image(butler.get(ref), image)


# -- delegate ------------------------------------------------------------------------------------------------


def test_delegate_components_parameters_and_disassembly(butler: Butler) -> None:
    storage_class = StorageClassFactory().getStorageClass("SPHERExImage")
    delegate = storage_class.delegate()
    assert isinstance(delegate, SPHERExImageDelegate)
    image = make_image(mask=True)
    assert_bit_exact(delegate.getComponent(image, "variance"), image.uncertainty.array)
    assert meta_cards(delegate.getComponent(image, "metadata")) == meta_cards(image.meta)
    cutout = delegate.handleParameters(image, {"slices": (slice(2, 10), slice(3, 9))})
    assert_bit_exact(cutout.flags, image.flags[2:10, 3:9])
    components = {name: c.component for name, c in delegate.disassemble(image).items()}
    assert set(components) == {"image", "variance", "flags", "mask", "wcs", "metadata"}
    assert_same_image(delegate.assemble(components), image)
    with pytest.raises(AttributeError, match="psf"):
        delegate.getComponent(image, "psf")


# -- CCDData and HDUList ---------------------------------------------------------------------------------


def make_ccddata() -> CCDData:
    rng = np.random.default_rng(7)
    shape = (40, 30)
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [10.0, -5.0]
    wcs.wcs.crpix = [15.5, 20.5]
    wcs.wcs.cdelt = [-0.0017, 0.0017]
    return CCDData(
        rng.normal(size=shape).astype(np.float32),
        unit="adu",
        uncertainty=StdDevUncertainty(rng.uniform(0.5, 1.0, size=shape).astype(np.float32)),
        mask=rng.random(shape) < 0.1,
        wcs=wcs,
        meta={"OBSID": "ccd-1", "EXPTIME": 10.0},
    )


@pytest.mark.parametrize("dataset_type", ["ccd", "ccdRice"])
def test_ccddata_round_trip(butler: Butler, dataset_type: str) -> None:
    ccd = make_ccddata()
    ref = butler.put(ccd, dataset_type, data_id())
    read = butler.get(ref)
    assert type(read) is CCDData
    assert read.unit == u.adu
    assert isinstance(read.uncertainty, StdDevUncertainty)
    np.testing.assert_array_equal(read.mask, ccd.mask)
    assert read.header["OBSID"] == "ccd-1"
    assert read.wcs.wcs.ctype[0] == "RA---TAN"
    if dataset_type == "ccd":
        assert_bit_exact(read.data, ccd.data)
        assert_bit_exact(read.uncertainty.array, ccd.uncertainty.array)
    else:
        with fits.open(local_path(butler, ref)) as hdul:
            assert hdul[0].data is None
            assert isinstance(hdul["IMAGE"], fits.CompImageHDU)
        assert np.max(np.abs(read.data - ccd.data)) < np.std(ccd.data) / 4
    hdu = "IMAGE" if dataset_type == "ccdRice" else 0
    assert CCDData.read(local_path(butler, ref), hdu=hdu).shape == ccd.shape


def test_ccddata_without_bunit_reads_as_electron_per_second(butler: Butler, tmp_path: Path) -> None:
    path = tmp_path / "nobunit.fits"
    fits.PrimaryHDU(np.ones((5, 6), np.float32)).writeto(path)
    ref = DatasetRef(butler.get_dataset_type("ccd"), butler.registry.expandDataId(data_id(2)), run=RUN)
    butler.ingest(FileDataset(path=str(path), refs=[ref]), transfer="copy")
    read = butler.get(ref)
    assert read.unit == u.electron / u.s
    np.testing.assert_array_equal(read.data, 1.0)


def make_hdulist() -> fits.HDUList:
    primary = fits.PrimaryHDU(np.arange(20, dtype=np.int16).reshape(4, 5))
    primary.header["OBSID"] = "hdul-1"
    image = fits.ImageHDU(np.linspace(0, 1, 60, dtype=np.float32).reshape(6, 10), name="SCI")
    table = fits.BinTableHDU.from_columns([fits.Column(name="A", format="J", array=[1, 2, 3])], name="CAT")
    return fits.HDUList([primary, image, table])


@pytest.mark.parametrize("dataset_type", ["hdul", "hdulGzip", "myimage"])
def test_hdulist_round_trip(butler: Butler, dataset_type: str) -> None:
    hdul = make_hdulist()
    ref = butler.put(hdul, dataset_type, data_id())
    read = butler.get(ref)
    assert isinstance(read, fits.HDUList)
    assert [hdu.name for hdu in read] == ["PRIMARY", "SCI", "CAT"]
    assert_bit_exact(read[0].data, hdul[0].data)
    assert_bit_exact(read["SCI"].data, hdul["SCI"].data)
    assert list(read["CAT"].data["A"]) == [1, 2, 3]
    assert read[0].header["OBSID"] == "hdul-1"
    compressed = dataset_type == "hdulGzip"
    with fits.open(local_path(butler, ref), checksum=compressed) as stored:
        assert isinstance(stored["SCI"], fits.CompImageHDU) is compressed
        assert ("CHECKSUM" in stored[0].header) is compressed


def test_hdulist_reads_any_fits_and_rejects_damage(butler: Butler) -> None:
    ref = butler.put(make_hdulist(), "hdul", data_id())
    path = local_path(butler, ref)
    raw = bytearray(path.read_bytes())
    raw[:6] = b"SIMPLX"
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=str(path)) as info:
        butler.get(ref)
    assert isinstance(info.value.__cause__, FitsLayoutError)


# -- every file the formatters write passes fitsverify -----------------------------------------------


@needs_fitsverify
def test_files_written_through_the_butler_pass_fitsverify(butler: Butler) -> None:
    refs = [
        butler.put(make_image(mask=True, sip=True), "rawexp", data_id()),
        butler.put(make_image(mask=True), "rawexpGzip", data_id()),
        butler.put(make_image(mask=True), "rawexpRice", data_id()),
        butler.put(make_ccddata(), "ccd", data_id()),
        butler.put(make_ccddata(), "ccdRice", data_id()),
        butler.put(make_hdulist(), "hdul", data_id()),
        butler.put(make_hdulist(), "hdulGzip", data_id()),
    ]
    for ref in refs:
        run_fitsverify(local_path(butler, ref))


# -- configuration -------------------------------------------------------------------------------------------


def test_seed_config_passes_butler_config_validate(tmp_path: Path) -> None:
    configs = Path(__file__).parent.parent / "python" / "spherex" / "configs"
    runner = CliRunner()
    with runner.isolated_filesystem(temp_dir=tmp_path):
        result = runner.invoke(
            butler_cli,
            [
                "create",
                "--override",
                "--seed-config",
                str(configs / "butler.yaml"),
                "--dimension-config",
                str(configs / "dimensions.yaml"),
                "DATA",
            ],
        )
        assert result.exit_code == 0, result.output
        for name, storage_class in [("rawexp", "SPHERExImage"), ("ccd", "CCDData"), ("old", "MyImage")]:
            result = runner.invoke(
                butler_cli,
                ["register-dataset-type", "DATA", name, storage_class, "instrument", "exposure", "detector"],
            )
            assert result.exit_code == 0, result.output
        result = runner.invoke(butler_cli, ["config-validate", "DATA"])
        assert result.exit_code == 0, result.output
        assert "No problems encountered" in result.output


# -- property: Butler round trips ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def shared_butler(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Butler]:
    with make_butler(tmp_path_factory.mktemp("prop") / "DATA") as butler:
        yield butler


_exposures = itertools.count(1000)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(image=spherex_images(), dataset_type=st.sampled_from(["rawexp", "rawexpGzip"]))
def test_property_butler_round_trip_is_exact(
    shared_butler: Butler, image: SPHERExImage, dataset_type: str
) -> None:
    exposure = next(_exposures)
    insert_exposure(shared_butler, exposure)
    ref = shared_butler.put(image, dataset_type, data_id(exposure=exposure))
    assert_same_image(shared_butler.get(ref), image)
    assert shared_butler.get(ref.makeComponentRef("flags")) is None or image.flags is not None


def test_level2_flag_bits_are_the_documented_ones() -> None:
    assert LEVEL2_FLAG_BITS["TRANSIENT"] == 0
    assert LEVEL2_FLAG_BITS["SOURCE"] == 21
    assert len(set(LEVEL2_FLAG_BITS.values())) == len(LEVEL2_FLAG_BITS) == 16


def test_variance_uncertainty_of_read_image_has_squared_unit(butler: Butler) -> None:
    image = make_image()
    butler.put(image, "rawexp", data_id())
    read = butler.get("rawexp", data_id())
    assert isinstance(read.uncertainty, VarianceUncertainty)
    assert read.uncertainty.unit == (u.MJy / u.sr) ** 2
