"""SPHEREx files registered where an archive keeps them (HTTP, anonymous S3), read by checked byte ranges.

The archive is `tests.archive_http` (a real HTTP server on 127.0.0.1 with ranges and injectable faults)
and moto's S3 server; the files are simulated 512 x 512 Level-2 images, IRSA's size in the issue's
trial, under IRSA's directory layout.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from lsst.daf.butler import Butler

from spherex.archive import RemoteReadError
from spherex.core import SPHERExImageError, SPHERExLevel2Image
from spherex.script.ingest.level2 import ingest_spherex

from .archive_http import ArchiveHttpServer, Fault, irsa_path, lay_out_as_irsa
from .conftest import make_repo, venv_script

SIZE = 512
RUN = "SPHEREx/l2b-v20"
CUTOUT = (slice(100, 132), slice(200, 232))
# Retries without the waits (lsst-resources' own HTTP retries wait 1-3 s, doubling, by default).
QUICK_RETRIES = {
    "SPHEREX_ARCHIVE_BACKOFF": "0",
    "LSST_HTTP_BACKOFF_MIN": "0.001",
    "LSST_HTTP_BACKOFF_MAX": "0.002",
}


@pytest.fixture(scope="module")
def archive_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    from spherex.simulator.level2 import simulate_level2

    work = tmp_path_factory.mktemp("archive")
    paths = simulate_level2(work / "sim", exposures=2, size=SIZE, seed=11, detectors=[1])
    relative = lay_out_as_irsa(paths, work / "root")
    return work / "root", relative


@pytest.fixture
def archive(archive_files, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The archive server over a private copy of the files (tests change them), backoff shortened."""
    root = tmp_path / "root"
    shutil.copytree(archive_files[0], root)
    monkeypatch.setenv("SPHEREX_ARCHIVE_BACKOFF", "0.01")
    monkeypatch.setenv("DAF_BUTLER_CACHE_DIRECTORY", str(tmp_path / "cache"))
    with ArchiveHttpServer(root) as server:
        yield server, archive_files[1]


def _ingest_cli(repo: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [venv_script("butler"), "ingest-spherex", repo, *args, "--transfer", "direct"],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip


def _records(butler: Butler) -> list[dict]:
    exposures = butler.query_dimension_records("exposure", instrument="SPHEREx")
    detectors = butler.query_dimension_records("detector", instrument="SPHEREx")
    return sorted((r.toDict() for r in exposures), key=lambda r: r["id"]) + [r.toDict() for r in detectors]


def test_ingest_in_place_reads_only_headers(archive, tmp_path: Path) -> None:
    server, files = archive
    repo = make_repo(tmp_path / "repo")
    result = _ingest_cli(repo, *[server.url(f) for f in files])
    assert result.returncode == 0, result.stderr
    size = (server.root / files[0]).stat().st_size
    for relative in files:
        # Every HDU's header (the check that the file is whole), no pixels: 1.3% of a 9.2 MB file.
        assert 0 < server.bytes_sent(relative) < 0.05 * size
    with Butler(repo) as butler:
        refs = sorted(butler.query_datasets("spectralImage", collections=RUN), key=lambda r: str(r.dataId))
        assert {butler.getURI(ref).geturl() for ref in refs} == {server.url(f) for f in files}
        remote = _records(butler)
    local_repo = make_repo(tmp_path / "local")
    assert ingest_spherex(local_repo, [str(server.root / f) for f in files], transfer="symlink").ok
    with Butler(local_repo) as butler:
        assert _records(butler) == remote  # the same exposures, whatever the files' place


@pytest.fixture
def archive_repo(archive, tmp_path: Path):
    server, files = archive
    repo = make_repo(tmp_path / "repo")
    assert ingest_spherex(repo, [server.url(f) for f in files], transfer="direct").ok
    server.reset()
    with Butler(repo, collections=RUN) as butler:
        ref = butler.find_dataset(
            "spectralImage", instrument="SPHEREx", exposure=_first_exposure(butler), detector=1
        )
        yield server, butler, ref, server.root / files[0]


def _first_exposure(butler: Butler) -> int:
    return min(r.id for r in butler.query_dimension_records("exposure", instrument="SPHEREx"))


def test_cutout_reads_its_rows_and_one_psf_zone(archive_repo) -> None:
    server, butler, ref, path = archive_repo
    local = SPHERExLevel2Image.read(str(path))
    cutout = butler.get(ref, parameters={"slices": CUTOUT})
    np.testing.assert_array_equal(cutout.data, local.data[CUTOUT])
    np.testing.assert_array_equal(cutout.zodi, local.zodi[CUTOUT])
    zone = cutout.psf_zone(10.0, 10.0)
    assert zone == local.psf_zone(210.0, 110.0)
    np.testing.assert_array_equal(cutout.psf_at(10.0, 10.0), local.psf_model.cube[zone])
    # 32 rows of four planes, the headers and one 101 x 101 PSF plane: 4.6% of the file.
    assert server.bytes_sent() < 0.05 * path.stat().st_size
    far = next(k for k in range(len(local.psf_model.cube)) if k not in cutout.psf_model.cube.zones)
    with pytest.raises(SPHERExImageError, match=f"{path.name}: PSF plane {far} was not read"):
        cutout.psf_model.cube[far]

    server.reset()
    psf = butler.get(ref.makeComponentRef("psf"))
    np.testing.assert_array_equal(np.asarray(psf.cube), local.psf_model.cube)  # the component: all zones
    server.reset()
    image = butler.get(ref)  # a whole image: the file, once, into the datastore cache
    np.testing.assert_array_equal(image.data, local.data)
    assert server.bytes_sent() == path.stat().st_size
    server.reset()
    butler.get(ref)
    butler.get(ref, parameters={"slices": CUTOUT})
    assert server.bytes_sent() == 0


FAULTS = {
    "429 with Retry-After": Fault("status", status=429, retry_after=0.05, times=2),
    "502 from the proxy": Fault("status", status=502, times=3),
    "503": Fault("status", status=503, times=1),
    "dropped mid-body": Fault("drop", after_bytes=1000, times=2),
    "wrong Content-Range": Fault("wrong-range", times=1),
    "short Content-Range": Fault("short", after_bytes=4096, times=3),
    "timeout": Fault("delay", seconds=3.0, times=1),
}


@pytest.mark.parametrize("fault", FAULTS.values(), ids=FAULTS.keys())
def test_faults_a_retry_cures_leave_the_cutout_right(
    archive_repo, fault: Fault, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, butler, ref, path = archive_repo
    monkeypatch.setenv("SPHEREX_ARCHIVE_TIMEOUT", "0.5")
    server.inject(Fault(**{**fault.__dict__, "path": path.name}))
    cutout = butler.get(ref, parameters={"slices": CUTOUT})
    local = SPHERExLevel2Image.read(str(path))
    np.testing.assert_array_equal(cutout.data, local.data[CUTOUT])
    np.testing.assert_array_equal(cutout.flags, local.flags[CUTOUT])
    np.testing.assert_array_equal(cutout.psf_at(3.0, 3.0), local.psf_at(203.0, 103.0))


@pytest.mark.parametrize(
    ("fault", "error", "message"),
    [
        (
            Fault("status", status=502, times=100),
            RemoteReadError,
            r"gave up reading bytes .* after 3 attempts",
        ),
        (Fault("status", status=404, times=100), FileNotFoundError, r"not found on the server \(404\)"),
        (Fault("status", status=403, times=100), PermissionError, r"refused access \(403\)"),
        (Fault("ignore-range", times=100), RemoteReadError, r"ignored a Range request"),
    ],
    ids=["502 for good", "404", "403", "no ranges"],
)
def test_faults_no_retry_cures_are_one_error_naming_the_url(
    archive_repo, fault: Fault, error: type, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, butler, ref, path = archive_repo
    monkeypatch.setenv("SPHEREX_ARCHIVE_RETRIES", "3")
    server.inject(Fault(**{**fault.__dict__, "path": path.name}))
    with pytest.raises((error, ValueError)) as info:
        butler.get(ref, parameters={"slices": CUTOUT})
    # daf_butler names the formatter and dataset before the reader's one line: the URL and the problem.
    cause = info.value if isinstance(info.value, error) else info.value.__cause__
    assert isinstance(cause, error)
    assert re.fullmatch(re.escape(butler.getURI(ref).geturl()) + ": .*" + message + ".*", str(cause))


def test_a_file_changed_on_the_server_is_refused_by_name(archive_repo) -> None:
    server, butler, ref, path = archive_repo
    with open(path, "ab") as stream:  # IRSA re-issued it: another size
        stream.write(bytes(2880))
    with pytest.raises(RemoteReadError, match="changed since it was ingested") as info:
        butler.get(ref, parameters={"slices": CUTOUT})
    assert butler.getURI(ref).geturl() in str(info.value)


def test_ingest_with_a_failing_file_reports_it_and_a_rerun_completes(archive, tmp_path: Path) -> None:
    server, files = archive
    env = {**os.environ, "SPHEREX_ARCHIVE_RETRIES": "2", **QUICK_RETRIES}
    repo = make_repo(tmp_path / "repo")
    bad = files[0]
    server.inject(Fault("status", status=502, times=1000, path=Path(bad).name))
    urls = [server.url(f) for f in files]
    result = _ingest_cli(repo, *urls, env=env)
    assert result.returncode != 0
    line = (
        f"error: {server.url(bad)}: gave up reading bytes 0-16383 after 2 attempts (the server answered 502)"
    )
    assert line in result.stdout + result.stderr
    with Butler(repo) as butler:
        landed = {butler.getURI(r).geturl() for r in butler.query_datasets("spectralImage", collections=RUN)}
    assert landed == set(urls) - {server.url(bad)}  # the others, whole; the failed one not at all
    server.reset()
    again = _ingest_cli(repo, *urls, env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert server.bytes_sent() < 0.05 * (server.root / bad).stat().st_size * 2  # the missing file only
    with Butler(repo) as butler:
        assert len(list(butler.query_datasets("spectralImage", collections=RUN))) == len(files)


def test_anonymous_s3_mirror(archive_files, s3_server, tmp_path: Path) -> None:
    root, files = archive_files
    client = s3_server.client()
    bucket = "nasa-irsa-spherex"
    client.create_bucket(Bucket=bucket)
    for relative in files:
        key = relative.removeprefix("ibe/data/spherex/")  # s3://nasa-irsa-spherex/qr2/level2/...
        client.upload_file(str(root / relative), bucket, key, ExtraArgs={"ACL": "public-read"})
    urls = [f"s3://{bucket}/{f.removeprefix('ibe/data/spherex/')}" for f in files]
    # No credentials at all: only unsigned requests can succeed.
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(S3_ENDPOINT_URL=s3_server.endpoint_url, AWS_CONFIG_FILE=os.devnull)
    env.update(AWS_SHARED_CREDENTIALS_FILE=os.devnull, AWS_DEFAULT_REGION="us-east-1")
    env["DAF_BUTLER_CACHE_DIRECTORY"] = str(tmp_path / "cache")
    repo = make_repo(tmp_path / "repo")
    signed = _ingest_cli(repo, urls[0], env={**env, "SPHEREX_ANONYMOUS_S3_BUCKETS": ""})
    assert signed.returncode != 0  # signing needs credentials nobody has
    result = _ingest_cli(repo, *urls, env=env)
    assert result.returncode == 0, result.stderr
    check = (
        "import sys, numpy as np; from lsst.daf.butler import Butler\n"
        "from spherex.core import SPHERExLevel2Image\n"
        f"b = Butler({repo!r}, collections={RUN!r})\n"
        "ref = sorted(b.query_datasets('spectralImage'), key=lambda r: str(r.dataId))[0]\n"
        f"cut = b.get(ref, parameters={{'slices': {CUTOUT!r}}})\n"
        "local = SPHERExLevel2Image.read(sys.argv[1])\n"
        f"assert np.array_equal(cut.data, local.data[{CUTOUT!r}]), 'pixels differ'\n"
        "print(b.getURI(ref))\n"
    )
    first = sorted(root / f for f in files)[0]
    answer = subprocess.run(
        [sys.executable, "-c", check, str(first)], capture_output=True, text=True, env=env
    )
    assert answer.returncode == 0, answer.stderr
    assert answer.stdout.strip() == f"s3://{bucket}/{irsa_path(first.name).removeprefix('ibe/data/spherex/')}"
    assert fits.getval(first, "NAXIS1", ext=1) == SIZE


def _spectrum(
    repo: str, catalogue: Path, output: Path, env: dict | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [venv_script("spherex-spectrum"), repo, "--targets", str(catalogue), "--output", str(output)],
        capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=600,
    )  # fmt: skip


def test_spectrum_through_the_archive_equals_the_local_one(archive, tmp_path: Path) -> None:
    from astropy.table import Table

    server, files = archive
    local = SPHERExLevel2Image.read(str(server.root / files[0]))
    ra, dec = local.wcs.pixel_to_world_values([100.2, 300.7, 410.0], [120.4, 250.1, 60.9])
    catalogue = tmp_path / "targets.csv"
    Table({"name": ["t1", "t2", "t3"], "ra": ra, "dec": dec}).write(catalogue, format="ascii.csv")
    remote_repo, local_repo = make_repo(tmp_path / "remote"), make_repo(tmp_path / "local")
    assert ingest_spherex(remote_repo, [server.url(f) for f in files], transfer="direct").ok
    assert ingest_spherex(local_repo, [str(server.root / f) for f in files], transfer="symlink").ok
    server.reset()
    remote = _spectrum(remote_repo, catalogue, tmp_path / "remote-spectra")
    assert remote.returncode == 0, remote.stderr
    # Cutouts, not files: well under the bytes of the images measured.
    assert server.bytes_sent() < 0.5 * sum((server.root / f).stat().st_size for f in files)
    assert _spectrum(local_repo, catalogue, tmp_path / "local-spectra").returncode == 0
    for name in ("t1", "t2", "t3"):
        a = Table.read(tmp_path / "remote-spectra" / f"{name}.ecsv")
        b = Table.read(tmp_path / "local-spectra" / f"{name}.ecsv")
        assert len(a) == len(b) > 0
        np.testing.assert_array_equal(a["flux"], b["flux"])

    # An image the archive no longer serves: the run fails naming it, and leaves nothing behind.
    server.inject(Fault("status", status=502, times=10_000, path=Path(files[0]).name))
    with Butler(remote_repo) as butler:
        before = set(butler.collections.query("*"))
    failed = _spectrum(
        remote_repo,
        catalogue,
        tmp_path / "again",
        env={"SPHEREX_ARCHIVE_RETRIES": "2", **QUICK_RETRIES},
    )
    assert failed.returncode != 0
    last = failed.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: ") and server.url(files[0]) in last and "gave up reading bytes" in last
    with Butler(remote_repo) as butler:
        assert set(butler.collections.query("*")) == before
