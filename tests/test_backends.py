"""The README workflow on the back ends of a deployment: PostgreSQL registry, S3 datastore, both.

Real servers on 127.0.0.1 (a private PostgreSQL cluster and moto's S3 server, one each per test session,
see ``conftest.py``); each test gets its own database and bucket.  Create, register the instrument,
ingest raws and darks, ``pipetask run`` ExamplePipeline, query: the same commands as on sqlite + POSIX.
"""

from __future__ import annotations

import os
from pathlib import Path

import lsst.sphgeom
import pytest
from click.testing import CliRunner
from lsst.daf.butler import Butler
from lsst.daf.butler.cli.butler import cli as butler_cli

from spherex.script import ingest_simulated

from .backend_repos import BACKENDS, BackendRepo, make_backend_repo, s3_keys
from .conftest import SIM_EXPOSURES
from .test_example_pipeline import PIPELINE, check_outputs, pipetask

N_FILES = SIM_EXPOSURES * 6


def butler(*args: str, expect: int = 0) -> str:
    result = CliRunner().invoke(butler_cli, list(args))
    assert result.exit_code == expect, f"exit {result.exit_code}\n{result.output}\n{result.stderr}"
    return result.stdout


def check_registry_and_files(b: BackendRepo, request: pytest.FixtureRequest) -> None:
    """Check that the registry and the files are where the seed config says, not in the defaults."""
    local = Path(b.repo) if not b.repo.startswith("s3://") else None
    if b.registry == "postgres":
        # --override kept registry.db: no sqlite file, and the records are in the PostgreSQL database.
        assert local is None or not (local / "spherex.sqlite3").exists()
        with request.getfixturevalue("postgres_server").connect(b.database) as connection:
            names = {name for (name,) in connection.execute("SELECT name FROM dataset_type")}
            (files,) = connection.execute("SELECT count(*) FROM file_datastore_records").fetchone()
        assert {"rawexp", "dark", "postDark"} <= names
        assert files >= 3 * N_FILES  # raws, darks, postDarks (and the pipeline's logs and metadata)
    with Butler.from_config(b.repo) as butler_:
        (ref,) = butler_.query_datasets(
            "rawexp", collections="rawexpr", where="exposure = 0 AND detector = 1", instrument="simulator"
        )
        uri = butler_.getURI(ref)
    if b.datastore == "s3":
        assert uri.scheme == "s3" and uri.netloc == b.bucket
        # Every raw, dark and output file is an object in the bucket; nothing landed in a local directory.
        keys = s3_keys(b.bucket, "repo/")
        assert sum(k.startswith("rawexpr/") for k in keys) == N_FILES
        if local is not None:
            assert {p.name for p in local.iterdir()} == {"butler.yaml", "spherex.sqlite3"}
    else:
        assert uri.scheme == "file" and uri.ospath.startswith(b.repo)


@pytest.mark.parametrize("backend", BACKENDS)
def test_workflow(
    backend: tuple[str, str],
    tmp_path: Path,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    simulated_dir: Path,
) -> None:
    # PostgreSQL + S3 keeps even butler.yaml in the bucket: the repository is one URI for every machine.
    b = make_backend_repo(backend, tmp_path, request, monkeypatch, repo_on_s3=backend == ("postgres", "s3"))

    # Ingest from local files; into S3 that is a copy (an upload).
    transfer = "copy" if b.datastore == "s3" else "auto"
    raws = ingest_simulated(b.repo, [str(simulated_dir)], transfer=transfer)
    assert raws.ok and len(raws.ingested) == N_FILES, raws.summary()
    out = butler(
        "ingest-simulated", "--regex", "dark_current.fits", "--ingest-type", "dark", "--transfer", transfer,
        b.repo, str(simulated_dir),
    )  # fmt: skip
    assert f"Ingested {N_FILES} dark files ({SIM_EXPOSURES} dark epochs) into darkr" in out
    # Running it again adds nothing, on these back ends too.
    again = ingest_simulated(b.repo, [str(simulated_dir)], transfer=transfer)
    assert not again.ingested and len(again.already_present) == N_FILES

    # The real pipetask, in a subprocess that finds the servers through the same environment variables.
    pipetask(
        "run", "-p", PIPELINE, "-b", b.repo, "--register-dataset-types",
        "-i", "rawexpr,darkr", "-o", "subtractr", cwd=tmp_path,
    )  # fmt: skip
    check_outputs(b.repo, "subtractr", simulated_dir)
    check_registry_and_files(b, request)

    # Queries: the collections, and a spatial query on the common HEALPix pixelization.
    collections = butler("query-collections", b.repo).split()
    assert {"rawexpr", "darkr", "subtractr"} <= set(collections)
    with Butler.from_config(b.repo) as butler_:
        (record,) = butler_.query_dimension_records(
            "exposure_detector_region", where="instrument = 'simulator' AND exposure = 0 AND detector = 2"
        )
    pixel = lsst.sphgeom.HealpixPixelization(7).index(record.region.getCentroid())
    out = butler(
        "query-datasets", b.repo, "postDark", "--collections", "subtractr", "--where", f"healpix7 = {pixel}"
    )
    lines = out.strip().splitlines()
    rows = [dict(zip(lines[0].split(), line.split(), strict=True)) for line in lines[2:]]
    found = {(int(row["exposure"]), int(row["detector"])) for row in rows}
    assert {(0, 2), (0, 5)} <= found and not {(0, 1), (0, 3)} & found


def test_direct_ingest_of_s3_files(
    tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, simulated_dir: Path
) -> None:
    """Files already in S3 (where the downlink lands them) are ingested in place with --transfer direct."""
    b = make_backend_repo(("postgres", "s3"), tmp_path, request, monkeypatch)
    s3 = request.getfixturevalue("s3_server")
    landing = "spherex-landing-" + os.urandom(4).hex()
    s3.create_bucket(landing)
    client = s3.client()
    for path in sorted(simulated_dir.glob("sim_exposure_000001_*.fits")):
        client.upload_file(str(path), landing, f"downlink/{path.name}")

    out = butler("ingest-simulated", "--transfer", "direct", b.repo, f"s3://{landing}/downlink/")
    assert "Ingested 6 rawexp files (1 exposures) into rawexpr" in out
    out = butler(
        "ingest-simulated", "--regex", "dark_current.fits", "--ingest-type", "dark", "--transfer", "direct",
        b.repo, f"s3://{landing}/downlink/",
    )  # fmt: skip
    assert "Ingested 6 dark files" in out

    with Butler.from_config(b.repo, collections=["rawexpr"]) as butler_:
        refs = butler_.query_datasets("rawexp")
        assert len(refs) == 6
        uris = {str(butler_.getURI(ref)) for ref in refs}
        # Read in place: the datastore records the landing URIs and copied nothing into its own bucket.
        assert uris == {f"s3://{landing}/downlink/sim_exposure_000001_array_{d}.fits" for d in range(1, 7)}
        assert s3_keys(b.bucket, "repo/") == []
        image = butler_.get("rawexp", exposure=1, detector=3, instrument="simulator")
        from astropy.io import fits

        with fits.open(simulated_dir / "sim_exposure_000001_array_3.fits") as expected:
            assert (image.data == expected["IMAGE"].data).all()
