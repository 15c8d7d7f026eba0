"""SPHEREx repositories on the back ends of a deployment: PostgreSQL registry, S3 datastore.

Each repository is made from the seed config the package ships for its back ends
(``butler-postgres.yaml``, ``butler-s3.yaml``, ``butler-postgres-s3.yaml``) with its ``${...}``
placeholders filled in, exactly as the README tells users to, and created with ``--override``.
"""

from __future__ import annotations

__all__ = ["BACKENDS", "BackendRepo", "make_backend_repo", "render_seed"]

import re
import secrets
from dataclasses import dataclass
from pathlib import Path

import pytest
from lsst.daf.butler import Butler
from lsst.daf.butler.script import createRepo
from lsst.resources import ResourcePath

from spherex.instrument import SimulatorInstrument

from .conftest import DIMENSION_CONFIG, SEED_CONFIG

CONFIG_DIR = Path(__file__).parents[1] / "python" / "spherex" / "configs"
SEED_FILES = {
    ("postgres", "posix"): "butler-postgres.yaml",
    ("sqlite", "s3"): "butler-s3.yaml",
    ("postgres", "s3"): "butler-postgres-s3.yaml",
}
BACKENDS = [
    pytest.param(("postgres", "posix"), id="postgres-posix"),
    pytest.param(("sqlite", "s3"), id="sqlite-s3"),
    pytest.param(("postgres", "s3"), id="postgres-s3"),
]
"""The (registry, datastore) pairs beyond sqlite + POSIX, as pytest parameters with readable ids."""


@dataclass
class BackendRepo:
    """A repository made by `make_backend_repo`."""

    registry: str
    """``sqlite`` or ``postgres``."""
    datastore: str
    """``posix`` or ``s3``."""
    repo: str
    """What ``butler`` and ``pipetask -b`` take: a local directory, or an ``s3://`` URI."""
    workdir: Path
    """A local directory for the test's other files."""
    database: str | None = None
    """PostgreSQL database name, for a PostgreSQL registry."""
    bucket: str | None = None
    """Bucket of the datastore, for an S3 datastore."""

    def butler(self, **kwargs) -> Butler:
        """Return a Butler for the repository (keyword arguments go to `Butler.from_config`)."""
        return Butler.from_config(self.repo, **kwargs)


def render_seed(name: str, values: dict[str, str], out: Path) -> Path:
    """Fill in the ``${NAME}`` placeholders of a shipped seed config.

    Parameters
    ----------
    name : `str`
        File name in ``python/spherex/configs``.
    values : `dict` [`str`, `str`]
        Value of each placeholder; a placeholder without a value fails the test.
    out : `pathlib.Path`
        File to write.

    Returns
    -------
    out : `pathlib.Path`
        The seed config written.
    """
    text = (CONFIG_DIR / name).read_text()
    missing = set(re.findall(r"\$\{(\w+)\}", text)) - set(values)
    assert not missing, f"{name} has placeholders the test does not fill: {sorted(missing)}"
    out.write_text(re.sub(r"\$\{(\w+)\}", lambda m: values[m.group(1)], text))
    return out


def make_backend_repo(
    backend: tuple[str, str],
    workdir: Path,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    repo_on_s3: bool = False,
) -> BackendRepo:
    """Create a SPHEREx repository on the given back ends, with the simulator instrument registered.

    Parameters
    ----------
    backend : `tuple` [`str`, `str`]
        (registry, datastore): registry ``sqlite`` or ``postgres``, datastore ``posix`` or ``s3``.
    workdir : `pathlib.Path`
        Local directory of the test.
    request : `pytest.FixtureRequest`
        To start the session's servers on demand (``postgres_server``, ``s3_server``).
    monkeypatch : `pytest.MonkeyPatch`
        Sets the credential variables (``LSST_DB_AUTH``, ``S3_ENDPOINT_URL``, AWS keys) for this test and
        the subprocesses it starts.
    repo_on_s3 : `bool`, optional
        Put ``butler.yaml`` itself in the bucket (only with a PostgreSQL registry and S3 datastore), so
        that the repository is one URI that any machine can reach.

    Returns
    -------
    repo : `BackendRepo`
        The new repository.
    """
    registry, datastore = backend
    values: dict[str, str] = {}
    result = BackendRepo(registry, datastore, repo=str(workdir / "DATA"), workdir=workdir)
    if registry == "postgres":
        pg = request.getfixturevalue("postgres_server")
        for key, value in pg.env.items():
            monkeypatch.setenv(key, value)
        result.database = f"spherex_{secrets.token_hex(4)}"
        pg.create_database(result.database)
        values |= {
            "SPHEREX_DB_USER": pg.user,
            "SPHEREX_DB_HOST": pg.host,
            "SPHEREX_DB_PORT": str(pg.port),
            "SPHEREX_DB_NAME": result.database,
        }
    if datastore == "s3":
        s3 = request.getfixturevalue("s3_server")
        for key, value in s3.env.items():
            monkeypatch.setenv(key, value)
        result.bucket = f"spherex-{secrets.token_hex(4)}"
        s3.create_bucket(result.bucket)
        values |= {"SPHEREX_S3_BUCKET": result.bucket, "SPHEREX_S3_PREFIX": "repo"}
        if repo_on_s3:
            assert registry == "postgres", "a sqlite registry needs a local repository directory"
            result.repo = f"s3://{result.bucket}/repo/"
    if backend == ("sqlite", "posix"):
        seed = SEED_CONFIG  # no placeholders; its includes are relative to where it is installed
    else:
        seed = str(render_seed(SEED_FILES[backend], values, workdir / "seed.yaml"))
    createRepo(result.repo, seed_config=seed, dimension_config=DIMENSION_CONFIG, override=True)
    with Butler.from_config(result.repo, writeable=True) as butler:
        SimulatorInstrument().register(butler.registry)
    return result


def s3_keys(bucket: str, prefix: str = "") -> list[str]:
    """Return the keys of the objects under a prefix of a bucket (`list` [`str`])."""
    root = ResourcePath(f"s3://{bucket}/{prefix}", forceDirectory=True)
    return sorted(str(uri.relative_to(root)) for uri in ResourcePath.findFileResources([root]))
