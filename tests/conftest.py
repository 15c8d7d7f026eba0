"""Shared fixtures: real Butler repositories made from the package's seed configs."""

from __future__ import annotations

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
