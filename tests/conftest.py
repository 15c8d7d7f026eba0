"""Shared fixtures: real Butler repositories made from the package's seed configs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from lsst.daf.butler import Butler
from lsst.daf.butler.script import createRepo

SEED_CONFIG = "resource://spherex/configs/butler.yaml"
DIMENSION_CONFIG = "resource://spherex/configs/dimensions.yaml"


def make_repo(root: Path, register_instrument: bool = True) -> str:
    """Create a SPHEREx repository at ``root`` exactly as ``butler create --override`` does.

    Parameters
    ----------
    root : `pathlib.Path`
        Directory to create the repository in.
    register_instrument : `bool`, optional
        Also register `spherex.instrument.SimulatorInstrument` (its six detectors).

    Returns
    -------
    repo : `str`
        The repository path, for ``Butler(repo)``.
    """
    createRepo(str(root), seed_config=SEED_CONFIG, dimension_config=DIMENSION_CONFIG, override=True)
    if register_instrument:
        from spherex.instrument import SimulatorInstrument

        with Butler.from_config(str(root), writeable=True) as butler:
            SimulatorInstrument().register(butler.registry)
    return str(root)


@pytest.fixture
def repo(tmp_path: Path) -> str:
    """Return the path of a new SPHEREx repository with the simulator instrument registered."""
    return make_repo(tmp_path / "DATA")


SIM_EXPOSURES = 3
SIM_SIZE = 48


@pytest.fixture(scope="session")
def simulated_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Simulated raws and darks (3 exposures x 6 arrays, 48x48 pixels), shared by a test session.

    Tests that modify or move files copy them first (`simulated_copy`).
    """
    from spherex.simulator import simulate

    outdir = tmp_path_factory.mktemp("simulated")
    simulate(outdir, exposures=SIM_EXPOSURES, size=SIM_SIZE, seed=42)
    return outdir


@pytest.fixture
def simulated_copy(simulated_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the simulated files, for tests that change, corrupt or move them."""
    import shutil

    return Path(shutil.copytree(simulated_dir, tmp_path / "simulated"))


def venv_script(name: str) -> str:
    """Return the path of a console script installed beside the running Python (``butler``, ``pipetask``)."""
    import shutil
    import sys

    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed beside {sys.executable} nor on PATH")
    return found


def skip_or_fail(reason: str) -> None:
    """Skip a test whose server is missing, or fail it where CI promises the servers.

    ``.ci/run`` sets ``SPHEREX_REQUIRE_SERVERS=1`` after installing PostgreSQL, so that a broken server
    set-up fails the build instead of silently skipping the back-end tests.
    """
    if os.environ.get("SPHEREX_REQUIRE_SERVERS") == "1":
        pytest.fail(f"{reason} (SPHEREX_REQUIRE_SERVERS=1)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres_server():
    """A private PostgreSQL cluster on 127.0.0.1 for the test session; skips if PostgreSQL is missing.

    Tests create their own database in it (``postgres_server.create_database()``).
    """
    from .servers import PostgresServer, ServerUnavailableError

    server = PostgresServer()
    try:
        server.start()
    except ServerUnavailableError as err:
        skip_or_fail(f"PostgreSQL registry tests need a PostgreSQL server: {err}")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def s3_server():
    """A moto S3 server on 127.0.0.1 for the test session; skips if moto is missing.

    Tests create their own bucket in it (``s3_server.create_bucket(name)``).
    """
    from .servers import MotoS3Server, ServerUnavailableError

    server = MotoS3Server()
    try:
        server.start()
    except ServerUnavailableError as err:
        skip_or_fail(f"S3 datastore tests need an S3 server: {err}")
    try:
        yield server
    finally:
        server.stop()
