"""The seed config and dimension universe, used exactly as a new user would: through ``butler``."""

from __future__ import annotations

from pathlib import Path

from lsst.daf.butler import Butler
from lsst.daf.butler.cli.butler import cli as butler_cli
from lsst.daf.butler.cli.utils import LogCliRunner

CONFIGS = Path(__file__).parents[1] / "python" / "spherex" / "configs"


def run_butler(*args: str) -> str:
    result = LogCliRunner().invoke(butler_cli, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def create(root: Path, seed: str, dims: str) -> str:
    repo = str(root / "DATA")
    run_butler("create", "--override", "--seed-config", seed, "--dimension-config", dims, repo)
    return repo


def test_create_from_checkout_paths(tmp_path: Path) -> None:
    repo = create(tmp_path, str(CONFIGS / "butler.yaml"), str(CONFIGS / "dimensions.yaml"))
    assert (Path(repo) / "spherex.sqlite3").is_file()
    assert "No problems encountered" in run_butler("config-validate", repo)


def test_create_from_installed_resources(tmp_path: Path) -> None:
    repo = create(
        tmp_path, "resource://spherex/configs/butler.yaml", "resource://spherex/configs/dimensions.yaml"
    )
    with Butler.from_config(repo) as butler:
        universe = butler.dimensions
        assert universe.namespace == "spherex"
        assert universe.version == 3
        assert universe.commonSkyPix.name.startswith("healpix")
        assert {"instrument", "detector", "exposure", "exposure_detector_region"} <= set(
            universe.getStaticElements().names
        )
        # Both skypix systems are available for queries.
        assert "htm7" in universe and "healpix7" in universe and "healpix8" in universe


def test_universe_topology(repo: str) -> None:
    with Butler.from_config(repo) as butler:
        universe = butler.dimensions
        assert universe["exposure"].temporal is not None
        assert universe["exposure"].spatial is not None
        # Each detector's footprint is its own spatial element, since SPHEREx's arrays see different sky.
        assert universe["exposure_detector_region"].spatial == universe["exposure"].spatial
        assert set(universe["exposure_detector_region"].required.names) >= {"exposure", "detector"}


def test_register_instrument_cli(tmp_path: Path) -> None:
    repo = create(tmp_path, str(CONFIGS / "butler.yaml"), str(CONFIGS / "dimensions.yaml"))
    run_butler("register-instrument", repo, "spherex.instrument.SimulatorInstrument")
    with Butler.from_config(repo) as butler:
        (instrument,) = butler.query_dimension_records("instrument")
        assert instrument.name == "simulator"
        assert instrument.class_name == "spherex.instrument.SimulatorInstrument"
        detectors = butler.query_dimension_records("detector", order_by="detector")
        assert [d.id for d in detectors] == [1, 2, 3, 4, 5, 6]
        assert [d.focal_plane for d in detectors] == ["SWIR"] * 3 + ["MWIR"] * 3
        assert detectors[0].lmin == 0.75 and detectors[5].lmax == 5.0
    # Registering twice is harmless (syncDimensionData).
    run_butler("register-instrument", repo, "spherex.instrument.SimulatorInstrument")
