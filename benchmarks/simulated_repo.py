"""A repository of simulated raws and darks, the starting point of the pipeline benchmarks."""

from __future__ import annotations

__all__ = ["make_simulated_repo"]

from pathlib import Path

from lsst.daf.butler.script import createRepo

from spherex.script import ingest_simulated
from spherex.simulator import simulate


def make_simulated_repo(work: Path, exposures: int, size: int, seed: int) -> str:
    """Simulate ``exposures`` x 6 raw/dark pairs under ``work/sim``, ingest them (symlinks) into a new
    repository ``work/DATA``, and return its path."""
    simulate(work / "sim", exposures=exposures, size=size, seed=seed, workers=2)
    repo = str(work / "DATA")
    createRepo(
        repo,
        seed_config="resource://spherex/configs/butler.yaml",
        dimension_config="resource://spherex/configs/dimensions.yaml",
        override=True,
    )
    ingest_simulated(repo, [str(work / "sim")], transfer="symlink")
    ingest_simulated(
        repo, [str(work / "sim")], regex="dark_current.fits", ingest_type="dark", transfer="symlink"
    )
    return repo
