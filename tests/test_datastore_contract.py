"""`SPHERExFileDatastore` and `SPHERExSqliteDatabase` behave as daf_butler's classes they extend: the
configuration search path applies to them, and what users of the parents do works the same."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from click.testing import CliRunner
from lsst.daf.butler import Butler, DatasetType
from lsst.daf.butler.cli.butler import cli as butler_cli
from lsst.daf.butler.datastores.fileDatastore import FileDatastore
from lsst.daf.butler.registry.databases.sqlite import SqliteDatabase

from spherex.core import SPHERExImage
from spherex.datastores import SPHERExFileDatastore
from spherex.registry import SPHERExSqliteDatabase

SITE_OVERRIDE = """datastore:
  cached:
    expiry:
      mode: files
      threshold: 7
  templates:
    testImage: "site/{run}/{datasetType}_{instrument}_{detector}"
"""


def site_dir(root: Path) -> Path:
    (root / "datastores").mkdir(parents=True)
    (root / "datastores" / "fileDatastore.yaml").write_text(SITE_OVERRIDE)
    return root


def stored_path(butler: Butler) -> str:
    butler.registry.registerDatasetType(
        DatasetType("testImage", ["instrument", "detector"], "SPHERExImage", universe=butler.dimensions)
    )
    butler.collections.register("run1")
    ref = butler.put(
        SPHERExImage(np.ones((3, 3), np.float32), unit="adu"),
        "testImage",
        instrument="simulator",
        detector=2,
        run="run1",
    )
    (root,) = butler.get_datastore_roots().values()
    return butler.getURI(ref).relative_to(root)


def test_site_override_through_daf_butler_config_path(repo: str, tmp_path: Path, monkeypatch) -> None:
    site = site_dir(tmp_path / "site")
    monkeypatch.setenv("DAF_BUTLER_CONFIG_PATH", str(site))
    with Butler.from_config(repo, writeable=True) as butler:
        datastore = butler._datastore
        assert isinstance(datastore, SPHERExFileDatastore)
        assert datastore.config["cached", "expiry", "threshold"] == 7
        # The site's template decides where files go, as it would for daf_butler's own datastore.
        assert stored_path(butler) == "site/run1/testImage_simulator_2.fits"
        # SPHEREx's defaults still fill what the site did not set; daf_butler's template for
        # physical_filter (a dimension SPHEREx does not have) stays out.
        templates = datastore.config["templates"]
        assert "{exposure.group_name:?}" in templates["default"]
        assert "physical_filter+detector+exposure" not in templates


def test_site_override_through_search_paths(repo: str, tmp_path: Path) -> None:
    site = site_dir(tmp_path / "site")
    with Butler.from_config(repo, writeable=True, searchPaths=[str(site)]) as butler:
        assert butler._datastore.config["cached", "expiry", "mode"] == "files"
        assert stored_path(butler) == "site/run1/testImage_simulator_2.fits"
    with Butler.from_config(repo) as butler:  # without them: SPHEREx's defaults
        assert butler._datastore.config["cached", "expiry", "mode"] == "datasets"


def test_repository_config_beats_the_site(repo: str, tmp_path: Path, monkeypatch) -> None:
    site = site_dir(tmp_path / "site")
    monkeypatch.setenv("DAF_BUTLER_CONFIG_PATH", str(site))
    config = Path(repo) / "butler.yaml"
    config.write_text(
        config.read_text().replace(
            "datastore:\n", "datastore:\n  cached:\n    expiry:\n      threshold: 2\n", 1
        )
    )
    with Butler.from_config(repo) as butler:
        assert butler._datastore.config["cached", "expiry", "threshold"] == 2  # repository > site > defaults
        assert butler._datastore.config["cached", "expiry", "mode"] == "files"


def test_defaults_without_any_override(repo: str, tmp_path: Path) -> None:
    with Butler.from_config(repo, writeable=True) as butler:
        # SPHEREx's template: under the run and dataset type, named after instrument and detector.
        assert stored_path(butler) == "run1/testImage/testImage_simulator_D2_run1.fits"
    result = CliRunner().invoke(butler_cli, ["config-validate", repo])
    assert result.exit_code == 0 and "No problems encountered" in result.output, result.output


def test_datastore_is_the_parent_for_its_users(repo: str) -> None:
    # What daf_butler's own code asks of a FileDatastore: its type, transfer modes, put/get/remove.
    with Butler.from_config(repo, writeable=True) as butler:
        datastore = butler._datastore
        assert isinstance(datastore, FileDatastore)
        # A Butler made from another (as pipe_base's executors do) clones the datastore: still ours.
        with Butler.from_config(butler=butler) as clone:
            assert isinstance(clone._datastore, SPHERExFileDatastore)
        stored_path(butler)
        (ref,) = butler.query_datasets("testImage", collections="run1")
        assert butler.stored(ref)
        np.testing.assert_array_equal(butler.get(ref).data, np.ones((3, 3)))
        butler.pruneDatasets([ref], purge=True, unstore=True, disassociate=True)
        assert not butler.query_datasets("testImage", collections="run1", explain=False)


def test_sqlite_engine_is_the_parent_for_its_users(repo: str) -> None:
    with Butler.from_config(repo) as butler:  # read-only: the engine daf_butler makes
        database = butler._registry._db
        assert isinstance(database, SPHERExSqliteDatabase) and isinstance(database, SqliteDatabase)
        assert not database.isWriteable()
        assert butler.query_dimension_records("detector", instrument="simulator")
    # An in-memory database, as daf_butler's tests make them.
    engine = SPHERExSqliteDatabase.makeEngine("sqlite://", writeable=True)
    with engine.connect() as connection:
        assert connection.exec_driver_sql("select 1").scalar() == 1
