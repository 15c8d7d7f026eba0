"""Shared fixtures: real Butler repositories made from the package's seed configs."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from lsst.daf.butler import Butler
from lsst.daf.butler.script import createRepo

SEED_CONFIG = "resource://spherex/configs/butler.yaml"
DIMENSION_CONFIG = "resource://spherex/configs/dimensions.yaml"


_PRISTINE: dict[bool, Path] = {}
"""Repositories made once per test process by `make_repo`, never written to; keyed by instrument."""


def make_repo(root: Path, register_instrument: bool = True) -> str:
    """Create a SPHEREx repository at ``root`` as ``butler create --override`` does.

    The first call in a test process runs ``butler create`` (and registers the instrument) in a
    private directory; every call copies that repository to ``root``.  The seed config makes
    repositories relocatable (registry and datastore are found relative to ``butler.yaml``), and
    copying two files takes ~2 ms where creating and registering cost ~0.25 CPU-s.

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

    Raises
    ------
    FileExistsError
        Raised if ``root`` already holds a repository, as ``butler create`` does.
    """
    root = Path(root)
    if (root / "butler.yaml").exists():
        raise FileExistsError(f"{root / 'butler.yaml'} exists: a repository is already there")
    if register_instrument not in _PRISTINE:
        pristine = Path(tempfile.mkdtemp(prefix="spherex-pristine-")) / "DATA"
        atexit.register(shutil.rmtree, pristine.parent, ignore_errors=True)
        createRepo(str(pristine), seed_config=SEED_CONFIG, dimension_config=DIMENSION_CONFIG, override=True)
        if register_instrument:
            from spherex.instrument import SimulatorInstrument

            with Butler.from_config(str(pristine), writeable=True) as butler:
                SimulatorInstrument().register(butler.registry)
        _PRISTINE[register_instrument] = pristine
    shutil.copytree(_PRISTINE[register_instrument], root, dirs_exist_ok=True)
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
    return Path(shutil.copytree(simulated_dir, tmp_path / "simulated"))


def venv_script(name: str) -> str:
    """Return the path of a console script installed beside the running Python (``butler``, ``pipetask``)."""
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


def deep_field_repo(
    work: Path, ra: float, dec: float, sources: int, size: int, seed: int, **simulate
) -> tuple[str, Path]:
    """Simulate a deep field under ``work``, ingest it into a new repository, and write its targets.

    Parameters
    ----------
    work : `pathlib.Path`
        Directory for the files (``field/``), the repository (``DATA``) and ``targets.csv``.
    ra, dec, sources, size, seed
        As for `spherex.simulator.deep_field.simulate_deep_field`.
    **simulate
        Further keywords of `~spherex.simulator.deep_field.simulate_deep_field` (``steps``, ``truth``,
        ``psf_zones``, ...).

    Returns
    -------
    repo, targets : `str`, `pathlib.Path`
        The repository, and a CSV catalogue (``name, ra, dec``) of every simulated source.
    """
    from astropy.table import Table

    from spherex.script import ingest_spherex
    from spherex.simulator.deep_field import deep_field_sources, simulate_deep_field

    simulate_deep_field(work / "field", ra, dec, sources=sources, size=size, seed=seed, **simulate)
    repo = make_repo(work / "DATA", register_instrument=False)
    assert ingest_spherex(repo, [str(work / "field")]).ok
    found = deep_field_sources(ra, dec, sources, size, seed)
    targets = work / "targets.csv"
    Table(
        {"name": [s.name for s in found], "ra": [s.ra for s in found], "dec": [s.dec for s in found]}
    ).write(targets, format="ascii.csv")
    return repo, targets
