"""Hostile header cards and valid-but-unusual FITS: one bad file fails alone, by name; valid files land.

Cards are written byte for byte into files made by ``spherex-simulate`` (raws) and
``spherex.simulator.level2`` (Level-2 images), so astropy's own writer cannot tidy them up.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from click.testing import CliRunner
from lsst.daf.butler import Butler
from lsst.daf.butler.cli.butler import cli as butler_cli

from spherex.script import ingest_simulated, ingest_spherex
from spherex.simulator.level2 import simulate_level2

from .conftest import SIM_EXPOSURES, make_repo

N_RAWS = SIM_EXPOSURES * 6


def set_card(path: Path, keyword: str, card: bytes) -> None:
    """Replace the first 80-byte card of ``keyword`` by ``card`` (padded), bypassing astropy's checks."""
    data = bytearray(path.read_bytes())
    key = keyword.encode().ljust(8)
    for start in range(0, len(data), 80):
        if data[start : start + 8] == key:
            data[start : start + 80] = card.ljust(80)[:80]
            path.write_bytes(bytes(data))
            return
    raise AssertionError(f"{keyword} not in {path}")


def cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(butler_cli, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize(
    ("keyword", "card", "problem"),
    [
        ("EXPTIME", b"EXPTIME = 12.3.4", "header card EXPTIME cannot be parsed"),
        ("OBSID", b"OBSID   = 'sim_\n000'", "header card OBSID cannot be parsed"),
        ("EXPTIME", b"EXPTIME = 'abc'", "header keyword EXPTIME='abc' is not float"),
    ],
    ids=["unparsable number", "newline byte", "text"],
)
def test_one_bad_card_fails_its_file_only(
    repo: str, simulated_copy: Path, keyword: str, card: bytes, problem: str
) -> None:
    bad = simulated_copy / "sim_exposure_000001_array_3.fits"
    set_card(bad, keyword, card)
    code, out, err = cli("ingest-simulated", repo, str(simulated_copy))
    assert code == 1
    assert "Traceback" not in out + err
    lines = err.strip().splitlines()
    # The bad file alone is named, with its exposure; the other five files of exposure 1 land with
    # every other exposure, as they would if the bad file were missing.
    (line,) = lines
    assert line.startswith(f"error: {bad}: {problem}") and "(exposure 1)" in line, line
    assert f"Ingested {N_RAWS - 1} rawexp files ({SIM_EXPOSURES} exposures)" in out
    with Butler.from_config(repo) as b:
        detectors = {
            ref.dataId["detector"]
            for ref in b.query_datasets(
                "rawexp",
                collections="rawexpr",
                where="instrument = 'simulator' AND exposure = 1",
                explain=False,
            )
        }
        assert detectors == {1, 2, 4, 5, 6}
        (record,) = b.query_dimension_records("exposure", instrument="simulator", exposure=1)
        assert record.exposure_time > 0


def test_scaled_int16_image_and_uint16_flags_are_ingested_and_read(
    repo: str, simulated_dir: Path, tmp_path: Path
) -> None:
    # Both are valid FITS (astropy writes uint16 as BITPIX=16, BZERO=32768); neither may be refused.
    location = tmp_path / "files"
    location.mkdir()
    for path in sorted(simulated_dir.glob("sim_exposure_000000_array_?.fits")):
        with fits.open(path) as hdul:
            copy = fits.HDUList([hdu.copy() for hdu in hdul])
        image = fits.ImageHDU(copy["IMAGE"].data.astype(np.float64), copy["IMAGE"].header, name="IMAGE")
        image.scale("int16", bscale=0.01, bzero=100.0)
        flags = fits.ImageHDU(copy["FLAGS"].data.astype(np.uint16), copy["FLAGS"].header, name="FLAGS")
        copy[copy.index_of("IMAGE")] = image
        copy[copy.index_of("FLAGS")] = flags
        copy.writeto(location / path.name)
    header = fits.getheader(location / "sim_exposure_000000_array_1.fits", "FLAGS")
    assert (header["BITPIX"], header["BZERO"]) == (16, 32768)
    report = ingest_simulated(repo, [str(location)])
    assert report.ok, [str(f) for f in report.failed]
    assert len(report.ingested) == 6
    with Butler.from_config(repo) as b:
        stored = b.get("rawexp", instrument="simulator", exposure=0, detector=1, collections="rawexpr")
    source = location / "sim_exposure_000000_array_1.fits"
    np.testing.assert_array_equal(np.asarray(stored.data), fits.getdata(source, "IMAGE"))
    np.testing.assert_array_equal(np.asarray(stored.flags), fits.getdata(source, "FLAGS"))


def test_scaled_flags_are_refused_without_contradiction(repo: str, simulated_copy: Path) -> None:
    bad = simulated_copy / "sim_exposure_000002_array_4.fits"
    with fits.open(bad, mode="update") as hdul:
        hdul["FLAGS"].header["BSCALE"] = 0.5
    report = ingest_simulated(repo, [str(simulated_copy)])
    (line,) = [str(f) for f in report.failed if f.path == str(bad)]
    assert "the FLAGS plane is scaled (BSCALE=0.5, BZERO=0); a bitmask must hold integers" in line
    assert "must be 8, 16 or 32 bits" not in line


@pytest.fixture(scope="module")
def level2_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two exposures x 6 arrays of small Level-2 images."""
    outdir = tmp_path_factory.mktemp("level2")
    simulate_level2(outdir, exposures=2, size=32, seed=3, psf_zones=3, psf_size=11, wave_grid=7)
    return outdir


@pytest.mark.parametrize(
    ("keyword", "card", "problem"),
    [
        # SPHEREx Level-2 headers carry the integration time as XPOSURE, not EXPTIME.
        ("XPOSURE", b"XPOSURE = 'abc'", "header keyword XPOSURE='abc' is not a number"),
        ("XPOSURE", b"XPOSURE =                  NaN", "XPOSURE"),
        ("XPOSURE", b"XPOSURE =                 -5.0", "XPOSURE=-5 is not a plausible exposure time (s)"),
        ("XPOSURE", b"XPOSURE =               1E+300", "XPOSURE=1e+300 is not a plausible exposure time (s)"),
        ("XPOSURE", b"XPOSURE = 12.3.4", "Unparsable card (XPOSURE)"),
        ("MJD-END", b"MJD-END =               1E+12", "MJD-END=1000000000000.0 is outside 2000-2100"),
        ("TIMESYS", b"TIMESYS = 'GPS'", "TIMESYS='GPS' is not a time scale astropy knows"),
    ],
    ids=["text", "nan", "negative", "huge", "unparsable", "far future", "unknown scale"],
)
def test_level2_bad_value_fails_its_file_only(
    level2_files: Path, tmp_path: Path, keyword: str, card: bytes, problem: str
) -> None:
    repo = make_repo(tmp_path / "DATA", register_instrument=False)
    files = Path(shutil.copytree(level2_files, tmp_path / "files"))
    bad = sorted(files.glob("level2_*_0000_2D4_*.fits"))[0]
    set_card(bad, keyword, card)
    report = ingest_spherex(repo, [str(files)])
    failed = {f.path: f.reason for f in report.failed}
    assert problem in failed.pop(str(bad))
    # The bad file costs no more than a missing one: the other five of its exposure land, and the
    # exposure record comes from their headers.
    assert not failed
    assert len(report.ingested) == 11 and len(report.exposures) == 2
    with Butler.from_config(repo) as b:
        refs = b.query_datasets("spectralImage", collections="SPHEREx/l2b-v20", explain=False)
        assert len(refs) == 11
        exposures = {ref.dataId["exposure"] for ref in refs}
        records = {r.id: r for r in b.query_dimension_records("exposure", instrument="SPHEREx")}
        assert set(records) == exposures and all(r.exposure_time > 100 for r in records.values())
        (exposure,) = {e for e in exposures if sum(ref.dataId["exposure"] == e for ref in refs) == 5}

    # Mended, the file joins its exposure.
    shutil.copy(sorted(level2_files.glob("level2_*_0000_2D4_*.fits"))[0], bad)
    report = ingest_spherex(repo, [str(files)])
    assert report.ok and len(report.ingested) == 1 and len(report.already_present) == 11
    with Butler.from_config(repo) as b:
        refs = b.query_datasets("spectralImage", collections="SPHEREx/l2b-v20", explain=False)
        assert len(refs) == 12
        assert sum(ref.dataId["exposure"] == exposure for ref in refs) == 6
