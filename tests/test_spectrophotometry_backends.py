"""Spectra on the back ends of a deployment (PostgreSQL + S3) and through ``bps submit``, unchanged.

The same functions and commands as on sqlite + POSIX: ``ingest-spherex --transfer copy`` puts the
Level-2 files in the bucket, `measure_spectra` runs the pipeline, and the cutouts are read from S3 by
byte ranges (nothing lands in the datastore's local cache).  The fluxes equal those measured on the
local files read whole.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS
from lsst.daf.butler import Butler

from spherex.core import SPHERExLevel2Image
from spherex.script import ingest_spherex, ingest_targets, measure_spectra, read_spectra
from spherex.simulator.level2 import simulate_level2
from spherex.tasks import ForcedSpectrophotometryTask

from .backend_repos import make_backend_repo
from .conftest import venv_script

BPS_YAML = str(Path(__file__).parents[1] / "bps" / "local-parsl.yaml")


@pytest.fixture(scope="module")
def level2_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Table]:
    """One exposure, arrays 1 and 4 (the same sky), 96 pixels; three targets on it."""
    outdir = tmp_path_factory.mktemp("level2")
    paths = simulate_level2(
        outdir, exposures=1, size=96, detectors=[1, 4], psf_zones=3, psf_size=41, wave_grid=5
    )
    wcs = WCS(fits.getheader(paths[0], "IMAGE"))
    ra, dec = wcs.pixel_to_world_values([20.3, 47.8, 70.1], [30.6, 50.2, 66.9])
    return outdir, Table({"name": ["a", "b", "c"], "ra": ra, "dec": dec, "kind": ["", "", ""]})


def expected_fluxes(files: Path, targets: Table) -> dict[tuple[str, int], float]:
    """Fluxes measured on the local files read whole, by (target, detector)."""
    task = ForcedSpectrophotometryTask()
    out = {}
    for path in sorted(files.glob("*.fits")):
        detector = int(re.search(r"D(\d)_", path.name).group(1))
        for row in task.run(SPHERExLevel2Image.read(path), [targets], 0, detector).measurements:
            out[(str(row["target"]), detector)] = float(row["flux"])
    return out


@pytest.mark.parametrize(
    "backend",
    [
        pytest.param(("postgres", "s3"), id="postgres-s3"),
        pytest.param(("postgres", "posix"), id="postgres-posix", marks=pytest.mark.slow),
        pytest.param(("sqlite", "s3"), id="sqlite-s3", marks=pytest.mark.slow),
    ],
)
def test_spectra_on_backends(
    backend: tuple[str, str],
    tmp_path: Path,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    level2_files: tuple[Path, Table],
) -> None:
    files, targets = level2_files
    b = make_backend_repo(backend, tmp_path, request, monkeypatch, repo_on_s3=backend == ("postgres", "s3"))
    cache = tmp_path / "cache"
    monkeypatch.setenv("DAF_BUTLER_CACHE_DIRECTORY", str(cache))
    transfer = "copy" if b.datastore == "s3" else "auto"
    assert ingest_spherex(b.repo, [str(files)], transfer=transfer).ok
    result = measure_spectra(b.repo, targets=_csv(targets, tmp_path), output=tmp_path / "spectra")
    assert set(result.spectra) == {"a", "b", "c"}
    expected = expected_fluxes(files, targets)
    for name, spectrum in result.spectra.items():
        assert sorted(spectrum["detector"]) == [1, 4]
        for row in spectrum:
            assert row["flux"] == pytest.approx(expected[(name, int(row["detector"]))], rel=1e-9)
    assert (tmp_path / "spectra" / "b.ecsv").exists() and (tmp_path / "spectra" / "b.png").exists()
    if b.datastore == "s3":
        with Butler.from_config(b.repo) as butler:
            (ref, *_) = butler.query_datasets("spectralImage", collections="SPHEREx/l2b-v20")
            assert butler.getURI(ref).scheme == "s3"
        # Cutouts and the WCS came by range reads: no image was downloaded into the cache.
        assert not [p for p in cache.rglob("*") if p.suffix in {".fits", ".fz"}]


def _csv(targets: Table, where: Path) -> Path:
    path = where / "targets.csv"
    targets.write(path, format="ascii.csv", overwrite=True)
    return path


@pytest.mark.slow
def test_bps_submit_spectrophotometry(
    tmp_path: Path,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    level2_files: tuple[Path, Table],
) -> None:
    """``bps submit`` of Spectrophotometry.yaml on PostgreSQL + S3: every quantum a Parsl task."""
    pytest.importorskip("lsst.ctrl.bps.parsl", reason="bps tests need pip install 'spherex-butler-poc[bps]'")
    files, targets = level2_files
    b = make_backend_repo(("postgres", "s3"), tmp_path, request, monkeypatch, repo_on_s3=True)
    assert ingest_spherex(b.repo, [str(files)], transfer="copy").ok
    ingest_targets(b.repo, targets, run="targets")
    bindir = str(Path(venv_script("pipetask")).parent)
    env = dict(os.environ, PATH=f"{bindir}{os.pathsep}{os.environ['PATH']}", PWD=str(tmp_path))
    result = subprocess.run(
        [venv_script("bps"), "submit", BPS_YAML, "-b", b.repo, "-p",
         "resource://spherex/pipelines/Spectrophotometry.yaml", "-i", "SPHEREx/l2b-v20,targets", "-o", "bps"],
        cwd=tmp_path, capture_output=True, text=True, env=env, timeout=900,
    )  # fmt: skip
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-5000:]
    shutdown = re.findall(r"'tasks_failed_count': (\d+), 'tasks_completed_count': (\d+)", log)
    # Two measurement quanta (arrays 1 and 4) and one gathering quantum per target sky pixel.
    assert shutdown and shutdown[-1][0] == "0" and int(shutdown[-1][1]) >= 3, log[-3000:]
    with Butler.from_config(b.repo) as butler:
        spectra = read_spectra(butler, "bps")
    expected = expected_fluxes(files, targets)
    assert set(spectra) == {"a", "b", "c"}
    for name, spectrum in spectra.items():
        np.testing.assert_allclose(
            spectrum["flux"], [expected[(name, int(d))] for d in spectrum["detector"]], rtol=1e-9
        )
