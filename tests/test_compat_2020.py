"""A 2020 proof-of-concept user's keywords, files, scripts, datastore records and pipelines still work.

The 2020 facts (signatures, layouts, class paths) come from the public source of
Caltech-IPAC/spherex_butler_poc; the files are built with plain astropy calls in `compat_2020_files`.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import astropy.units as u
import numpy as np
import pytest
from astropy.io import fits
from astropy.nddata import CCDData, StdDevUncertainty, VarianceUncertainty
from hypothesis import given, settings
from hypothesis import strategies as st
from lsst.daf.butler import Butler, DatasetRef, DatasetType, FileDataset

from spherex.core import (
    FitsLayoutError,
    SPHERExImage,
    SPHERExImageError,
    spherex_image_reader,
    spherex_image_writer,
)

from .compat_2020_files import FLAG_DEFS_2020, SMALL_BLANK, small_planes, write_2020_layout
from .conftest import make_repo, venv_script
from .test_spherex_image import make_wcs

SMALL = Path(__file__).parent / "data" / "small.fits"


def assert_small(image: SPHERExImage, unit: u.UnitBase = u.electron / u.s) -> None:
    """Check an image read from ``small.fits`` against the planes it was made from."""
    data, flags, variance = small_planes()
    assert isinstance(image, SPHERExImage) and isinstance(image, CCDData)
    np.testing.assert_array_equal(image.data, data)
    # The int32 bitmask, BLANK pixels included, not astropy's floats with NaN.
    assert image.flags.dtype.kind == "i" and image.flags.dtype.itemsize == 4
    np.testing.assert_array_equal(image.flags, flags)
    assert image.flags[0, 0] == SMALL_BLANK
    assert image.flag_defs == FLAG_DEFS_2020
    assert isinstance(image.uncertainty, VarianceUncertainty)
    np.testing.assert_array_equal(image.uncertainty.array, variance)
    assert image.unit == unit
    assert image.wcs is not None and image.wcs.wcs.ctype[0] == "RA---TAN"
    assert image.meta["OBSID"] == "sim-2020"


# -- 1. the 2020 keywords --------------------------------------------------------------------------------


def test_committed_small_fits_is_what_the_helper_writes() -> None:
    with fits.open(SMALL) as hdul:
        assert [hdu.name for hdu in hdul] == ["PRIMARY", "", "FLAGS", "VARIANCE"]
        assert hdul[0].header["NAXIS"] == 0
        assert hdul[2].header["BITPIX"] == 32 and hdul[2].header["BLANK"] == SMALL_BLANK
        # What astropy makes of an integer plane with BLANK: floats with NaN.
        assert hdul[2].data.dtype.kind == "f" and np.isnan(hdul[2].data[0, 0])
    assert_small(SPHERExImage.read(SMALL))


def test_the_2020_test_reads_small_fits() -> None:
    """The 2020 test_spherex_image.py call, verbatim."""
    image = spherex_image_reader(SMALL, unit=(u.electron / u.s), hdu_uncertainty=3, hdu_flags=2)
    assert_small(image)
    assert len(image.flag_defs) == 9


@pytest.mark.parametrize(
    "keywords",
    [
        {"hdu": 1, "hdu_uncertainty": "VARIANCE", "hdu_flags": "FLAGS"},
        {"hdu": 0, "hdu_uncertainty": 3, "hdu_flags": 2, "hdu_mask": "MASK"},
        {"hdu": "", "hdu_uncertainty": "variance", "hdu_flags": "flags", "key_uncertainty_type": "UTYPE"},
    ],
)
def test_planes_by_index_or_name(keywords: dict) -> None:
    assert_small(SPHERExImage.read(SMALL, **keywords))


def test_none_leaves_a_plane_out() -> None:
    image = spherex_image_reader(SMALL, hdu_flags=None, hdu_uncertainty=None)
    assert image.flags is None and image.uncertainty is None and image.flag_defs == {}
    # A named plane the file does not have is no plane, as in astropy's reader.
    assert SPHERExImage.read(SMALL, hdu_flags="NOSUCH").flags is None


def test_unit_overrides_bunit_as_ccddata_read_does() -> None:
    image = SPHERExImage.read(SMALL, unit="adu")
    assert image.unit == u.adu
    assert image.uncertainty.unit == u.adu**2
    np.testing.assert_array_equal(image.uncertainty.array, small_planes()[2])


def test_2020_keywords_with_slices() -> None:
    image = SPHERExImage.read(
        SMALL, hdu=1, hdu_flags=2, hdu_uncertainty=3, slices=(slice(2, 9), slice(4, 15))
    )
    data, flags, variance = small_planes()
    np.testing.assert_array_equal(image.data, data[2:9, 4:15])
    np.testing.assert_array_equal(image.flags, flags[2:9, 4:15])
    np.testing.assert_array_equal(image.uncertainty.array, variance[2:9, 4:15])


def test_missing_image_hdu_is_named(tmp_path: Path) -> None:
    with pytest.raises(FitsLayoutError, match=r"small\.fits.*hdu='SCI': no such HDU"):
        SPHERExImage.read(SMALL, hdu="SCI")
    with pytest.raises(FitsLayoutError, match="FLAGS is a table|table, not an image"):
        path = tmp_path / "table.fits"
        fits.HDUList(
            [
                fits.PrimaryHDU(np.zeros((2, 2))),
                fits.BinTableHDU.from_columns([fits.Column("A", "J", array=[1])], name="FLAGS"),
            ]
        ).writeto(path)
        SPHERExImage.read(path, hdu_flags="FLAGS")


def test_key_uncertainty_type(tmp_path: Path) -> None:
    data, flags, variance = small_planes()
    path = tmp_path / "stddev.fits"
    write_2020_layout(path, data, flags, variance)
    with fits.open(path, mode="update") as hdul:
        hdul["VARIANCE"].header["ERRTYPE"] = "StdDevUncertainty"
    image = SPHERExImage.read(path, key_uncertainty_type="ERRTYPE")
    assert isinstance(image.uncertainty, StdDevUncertainty)
    assert isinstance(SPHERExImage.read(path).uncertainty, VarianceUncertainty)


def test_extra_keywords_go_to_fits_open(tmp_path: Path) -> None:
    data, flags, variance = small_planes()
    path = tmp_path / "uint16.fits"
    # astropy stores uint16 as int16 with BZERO = 32768; fits.open(uint=False) returns the scaled floats.
    write_2020_layout(path, (data * 1000).astype(np.uint16), flags, variance)
    assert SPHERExImage.read(path).data.dtype == np.uint16
    assert SPHERExImage.read(path, uint=False).data.dtype.kind == "f"
    with pytest.raises(TypeError, match="do_not_scale_image_data"):
        SPHERExImage.read(path, do_not_scale_image_data=True)


def test_2020_writer_keywords(tmp_path: Path) -> None:
    """The 2020 test's writer call, then the keywords' effects."""
    image = SPHERExImage.read(SMALL)
    out = tmp_path / "small.fits"
    spherex_image_writer(
        image,
        out,
        hdu_uncertainty="VARIANCE",
        hdu_flags="FLAGS",
        wcs_relax=True,
        key_uncertainty_type="UTYPE",
    )
    with fits.open(out) as hdul:
        assert [hdu.name for hdu in hdul] == ["PRIMARY", "IMAGE", "FLAGS", "VARIANCE"]
        assert hdul["VARIANCE"].header["UTYPE"] == "VarianceUncertainty"
    # With UTYPE, astropy's own reader takes the plane as variance (without, as standard deviation).
    ccd = CCDData.read(out, hdu="IMAGE", hdu_uncertainty="VARIANCE", hdu_mask=None)
    assert isinstance(ccd.uncertainty, VarianceUncertainty)

    image.mask = image.data > 10
    renamed = tmp_path / "renamed.fits"
    image.write(renamed, hdu_flags="BITS", hdu_uncertainty=None, hdu_mask="BAD", overwrite=True)
    with fits.open(renamed) as hdul:
        assert [hdu.name for hdu in hdul] == ["PRIMARY", "IMAGE", "BITS", "BAD"]
    again = SPHERExImage.read(renamed, hdu_flags="BITS", hdu_mask="BAD")
    np.testing.assert_array_equal(again.flags, image.flags)
    np.testing.assert_array_equal(again.mask, image.mask)
    assert again.uncertainty is None


def test_wcs_relax_false_drops_sip(tmp_path: Path) -> None:
    image = SPHERExImage(np.ones((8, 8), dtype=np.float32), wcs=make_wcs((8, 8), sip=True))
    image.write(tmp_path / "sip.fits")
    image.write(tmp_path / "nosip.fits", wcs_relax=False)
    assert "A_ORDER" in fits.getheader(tmp_path / "sip.fits", "IMAGE")
    assert "A_ORDER" not in fits.getheader(tmp_path / "nosip.fits", "IMAGE")


# -- 2. files of the 2020 writer, with and without a Butler ------------------------------------------------


def test_2020_layout_with_mask_and_no_blank(tmp_path: Path) -> None:
    data, flags, variance = small_planes()
    flags[0, :3] = 7
    mask = data > 10
    path = tmp_path / "masked.fits"
    write_2020_layout(path, data, flags, variance, blank=None, bunit=None, mask=mask)
    image = SPHERExImage.read(path)
    np.testing.assert_array_equal(image.flags, flags)
    np.testing.assert_array_equal(image.mask, mask)
    # No BUNIT: electron/s, the 2020 formatters' unit.
    assert image.unit == u.electron / u.s


def test_plain_hdulist_reads(tmp_path: Path) -> None:
    path = tmp_path / "plain.fits"
    fits.HDUList([fits.PrimaryHDU(np.arange(12, dtype=np.float32).reshape(3, 4))]).writeto(path)
    image = SPHERExImage.read(path)
    np.testing.assert_array_equal(image.data, np.arange(12).reshape(3, 4))
    assert image.flags is None and image.uncertainty is None and image.wcs is None


def _ingest(
    butler: Butler, name: str, storage_class: str, path: Path, formatter: str, exposure: int
) -> DatasetRef:
    butler.registry.registerDatasetType(
        DatasetType(name, ("instrument", "exposure", "detector"), storage_class, universe=butler.dimensions)
    )
    butler.registry.insertDimensionData(
        "exposure",
        {"instrument": "simulator", "id": exposure, "obs_id": f"e{exposure}", "group_name": "2020"},
        replace=True,
    )
    ref = DatasetRef(
        butler.get_dataset_type(name),
        {"instrument": "simulator", "exposure": exposure, "detector": 1},
        run="ingest2020",
    )
    butler.collections.register("ingest2020")
    # The formatter as a 2020 datastore record names it (a string, as records hold it).
    butler.ingest(FileDataset(refs=[ref], path=str(path), formatter=formatter), transfer="copy")
    return ref


def _set_record_formatters(root: Path, formatters: dict[str, str]) -> set[str]:
    """Make the datastore records name formatters as a 2020 repository's did; return what they name."""
    with sqlite3.connect(f"file:{root / 'spherex.sqlite3'}?mode=rw", uri=True) as db:
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        table = next(t for t in tables if t.endswith("datastore_records"))
        for new, old in formatters.items():
            db.execute(f"UPDATE {table} SET formatter = ? WHERE formatter = ?", (old, new))
        return {row[0] for row in db.execute(f"SELECT formatter FROM {table}")}


def test_2020_records_and_files_read_through_the_butler(tmp_path: Path) -> None:
    root = tmp_path / "DATA"
    make_repo(root)
    with Butler.from_config(str(root), writeable=True) as butler:
        spherex = _ingest(
            butler,
            "spherex_image",
            "SPHERExImage",
            SMALL,
            "spherex.formatters.spherex_image.SPHERExImageFormatter",
            11,
        )
        ccd_path = tmp_path / "ccd.fits"
        CCDData(small_planes()[0], unit="adu").write(ccd_path)
        ccd = _ingest(
            butler,
            "ccddata_image",
            "CCDData",
            ccd_path,
            "spherex.formatters.ccddata_image.CCDDataFormatter",
            12,
        )
        hdul = _ingest(
            butler,
            "astropy_image",
            "MyImage",
            SMALL,
            "spherex.formatters.astropy_image.AstropyImageFormatter",
            13,
        )
        # CCDData files and plain HDU lists read as SPHERExImage datasets too.
        ccd_as_spherex = _ingest(
            butler, "ccd_as_spherex", "SPHERExImage", ccd_path, "spherex.formatters.SPHERExImageFormatter", 14
        )
        plain_path = tmp_path / "plain.fits"
        fits.HDUList([fits.PrimaryHDU(small_planes()[2])]).writeto(plain_path)
        plain_as_spherex = _ingest(
            butler,
            "plain_as_spherex",
            "SPHERExImage",
            plain_path,
            "spherex.formatters.SPHERExImageFormatter",
            15,
        )
    paths_2020 = {
        "spherex.formatters.spherex_image.SPHERExImageFormatter",
        "spherex.formatters.ccddata_image.CCDDataFormatter",
        "spherex.formatters.astropy_image.AstropyImageFormatter",
    }
    # Ingest records today's class paths; a 2020 repository's records name the 2020 modules.
    renamed = _set_record_formatters(
        root,
        {"spherex.formatters.ccddata.CCDDataFormatter": "spherex.formatters.ccddata_image.CCDDataFormatter"},
    )
    assert renamed == paths_2020
    with Butler.from_config(str(root)) as butler:
        assert_small(butler.get(spherex))
        flags = butler.get(spherex.makeComponentRef("flags"))
        assert flags.dtype.kind == "i" and flags.dtype.itemsize == 4 and flags[0, 0] == SMALL_BLANK
        cutout = butler.get(spherex, parameters={"slices": (slice(0, 4), slice(0, 5))})
        np.testing.assert_array_equal(cutout.flags, small_planes()[1][:4, :5])
        got = butler.get(ccd)
        assert isinstance(got, CCDData) and got.unit == u.adu
        np.testing.assert_array_equal(got.data, small_planes()[0])
        got = butler.get(ccd_as_spherex)
        assert isinstance(got, SPHERExImage) and got.unit == u.adu and got.flags is None
        np.testing.assert_array_equal(got.data, small_planes()[0])
        got = butler.get(plain_as_spherex)
        assert got.unit == u.electron / u.s and got.uncertainty is None
        np.testing.assert_array_equal(got.data, small_planes()[2])
        got = butler.get(hdul)
        assert isinstance(got, fits.HDUList) and [hdu.name for hdu in got] == [
            "PRIMARY",
            "",
            "FLAGS",
            "VARIANCE",
        ]


# -- 3. a 2020 script and a 2020 pipeline -------------------------------------------------------------------

SCRIPT_2020 = """
import sys
from lsst.daf.butler import Butler
from spherex.core import SPHERExImage, spherex_image_reader, spherex_image_writer
from spherex.formatters import AstropyImageFormatter, CCDDataFormatter, SPHERExImageFormatter
from spherex.formatters.astropy_image import AstropyImageFormatter
from spherex.formatters.ccddata_image import CCDDataFormatter
from spherex.formatters.spherex_image import SPHERExImageFormatter
from spherex.instrument.simulator_instrument import SimulatorInstrument
from spherex.script import ingestSimulated
from spherex.tasks import SubtractTask, SubtractTaskConfig, SubtractTaskConnections

repo, files = sys.argv[1], sys.argv[2]
ingestSimulated(repo, [files], None, None)
ingestSimulated(repo, [files], "dark_current.fits", None, ingest_type="dark")
butler = Butler(repo)
refs = list(butler.registry.queryDatasets("rawexp", collections="rawexpr"))
image = butler.get(refs[0])
assert isinstance(image, SPHERExImage) and image.flags is not None
assert SimulatorInstrument.getName() == "simulator"
assert SubtractTaskConfig.ConnectionsClass is SubtractTaskConnections
print(len(refs), image.shape)
"""

PIPELINE_2020 = """description: ExamplePipeline
tasks:
  subtract:
    class: spherex.tasks.SubtractTask
    config:
      connections.inputImage: 'rawexp'
      connections.subtractImage: 'dark'
      connections.outputImage: 'postDark'
"""

CONFIG_2020 = """from spherex.tasks import SubtractTaskConfig, SubtractTaskConnections

assert isinstance(config, SubtractTaskConfig), type(config)
config.connections.outputImage = "postDark"
"""


@pytest.fixture(scope="module")
def repo_2020(tmp_path_factory: pytest.TempPathFactory, simulated_dir: Path) -> Path:
    """A repository filled by the 2020 script (a subprocess, as a user runs it)."""
    work = tmp_path_factory.mktemp("compat2020")
    make_repo(work / "DATA")
    script = work / "script2020.py"
    script.write_text(textwrap.dedent(SCRIPT_2020))
    result = subprocess.run(
        [sys.executable, str(script), str(work / "DATA"), str(simulated_dir)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] == "18"
    return work


def test_2020_script_runs(repo_2020: Path, simulated_dir: Path) -> None:
    with Butler.from_config(str(repo_2020 / "DATA")) as butler:
        # darkr is a CALIBRATION collection: one dark per array, certified over the exposures' times.
        assert len(butler.query_datasets("dark", collections="darkr", find_first=False)) == len(
            list(simulated_dir.glob("*dark_current*"))
        )


def test_pipetask_runs_a_2020_pipeline_and_config(repo_2020: Path) -> None:
    (repo_2020 / "ExamplePipeline.yaml").write_text(PIPELINE_2020)
    (repo_2020 / "config2020.py").write_text(CONFIG_2020)
    env = dict(os.environ, PATH=f"{Path(venv_script('pipetask')).parent}{os.pathsep}{os.environ['PATH']}")
    result = subprocess.run(
        [
            venv_script("pipetask"),
            "run",
            "-p",
            "ExamplePipeline.yaml",
            "-C",
            "subtract:config2020.py",
            "-b",
            "DATA",
            "--register-dataset-types",
            "-i",
            "rawexpr,darkr",
            "-o",
            "subtractr",
        ],
        cwd=repo_2020,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    with Butler.from_config(str(repo_2020 / "DATA")) as butler:
        outputs = butler.query_datasets("postDark", collections="subtractr")
        assert len(outputs) == 18
        assert isinstance(butler.get(outputs[0]), SPHERExImage)


def test_readme_2020_script_runs_as_written(tmp_path: Path, simulated_dir: Path) -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    section = readme.split("## Coming from the 2020 proof of concept", 1)[1].split("\n## ", 1)[0]
    block = section.split("```python\n", 1)[1].split("```", 1)[0]
    make_repo(tmp_path / "DATA")
    (tmp_path / "simulator_files").symlink_to(simulated_dir)
    (tmp_path / "script.py").write_text(block)
    result = subprocess.run(
        [sys.executable, "script.py"], cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "(48, 48)" in result.stdout


@pytest.mark.parametrize(
    ("keywords", "message"),
    [
        ({"hdu": True}, "hdu=True"),
        ({"hdu_flags": 2.5}, "hdu_flags=2.5"),
        ({"hdu_uncertainty": ["VARIANCE"]}, "hdu_uncertainty="),
        ({"key_uncertainty_type": ""}, "key_uncertainty_type"),
        ({"unit": 3}, "unit=3"),
        ({"hdu": 9}, r"small\.fits: hdu=9: no such HDU"),
    ],
)
def test_bad_reader_keywords_say_which(keywords: dict, message: str) -> None:
    with pytest.raises((SPHERExImageError, FitsLayoutError), match=message):
        SPHERExImage.read(SMALL, **keywords)


@pytest.mark.parametrize("keywords", [{"hdu_flags": ""}, {"hdu_mask": 3}, {"key_uncertainty_type": " "}])
def test_bad_writer_keywords_say_which(tmp_path: Path, keywords: dict) -> None:
    with pytest.raises(SPHERExImageError, match=next(iter(keywords))):
        SPHERExImage.read(SMALL).write(tmp_path / "out.fits", **keywords)
    assert not (tmp_path / "out.fits").exists()


_FORMS = st.sampled_from(
    [
        {},
        {"hdu": 1, "hdu_flags": 2, "hdu_uncertainty": 3},
        {"hdu": 0, "hdu_flags": "FLAGS", "hdu_uncertainty": "VARIANCE"},
        {"hdu": "", "hdu_flags": "flags", "hdu_uncertainty": 3, "hdu_mask": None},
    ]
)


@settings(max_examples=40, deadline=None)
@given(
    keywords=_FORMS,
    rows=st.tuples(st.integers(0, 15), st.integers(1, 16), st.integers(1, 3)),
    columns=st.tuples(st.integers(0, 19), st.integers(1, 20), st.integers(1, 3)),
)
def test_any_keyword_form_and_cutout_reads_the_same_pixels(
    keywords: dict, rows: tuple, columns: tuple
) -> None:
    start_r, length_r, step_r = rows
    start_c, length_c, step_c = columns
    cut = (slice(start_r, start_r + length_r, step_r), slice(start_c, start_c + length_c, step_c))
    image = SPHERExImage.read(SMALL, slices=cut, **keywords)
    data, flags, variance = small_planes()
    np.testing.assert_array_equal(image.data, data[cut])
    np.testing.assert_array_equal(image.flags, flags[cut])
    np.testing.assert_array_equal(image.uncertainty.array, variance[cut])
    assert image.flags.dtype.kind == "i" and image.flags.dtype.itemsize == 4
