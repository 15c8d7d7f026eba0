"""The demo's steps: simulate, create a repository, ingest, build the quantum graph, run, draw."""

from __future__ import annotations

__all__ = ["DemoError", "DemoResult", "run_demo"]

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path

from lsst.daf.butler import Butler, MissingCollectionError
from lsst.daf.butler.script import createRepo

from ..instrument import SimulatorInstrument
from ..script import DEFAULT_REGEX, ingest_simulated
from ..script.pipeline_recovery import recover_pipeline_output
from ..simulator import simulate
from .plots import plot_quicklook, plot_sky_map

SEED_CONFIG = "resource://spherex/configs/butler.yaml"
DIMENSION_CONFIG = "resource://spherex/configs/dimensions.yaml"
OUTPUT = "subtractr"
SIMULATOR_WORKERS = min(2, os.cpu_count() or 1)
"""Simulator worker processes (cheap to start: they import numpy and astropy only)."""


class DemoError(RuntimeError):
    """A demo step failed; the message names the step and what went wrong."""


@dataclass
class DemoResult:
    """What the demo did and wrote."""

    directory: Path
    repo: Path
    reused: bool
    """`True` if an earlier demo's files and repository were reused rather than made anew."""
    timings: list[tuple[str, float]] = field(default_factory=list)
    """Wall time of each step, seconds, in order."""
    outputs: dict[str, Path] = field(default_factory=dict)
    """Files written, by description."""
    dataset_counts: dict[str, int] = field(default_factory=dict)
    collections: list[str] = field(default_factory=list)


def run_demo(
    directory: Path,
    exposures: int = 4,
    size: int = 512,
    jobs: int = 2,
    seed: int = 2025,
    fresh: bool = False,
    echo: Callable[[str], None] = print,
) -> DemoResult:
    """Run the whole SPHEREx Butler workflow in ``directory``.

    Parameters
    ----------
    directory : `pathlib.Path`
        Where to put the simulated files (``simulated/``), the repository (``DATA/``), ``qgraph.dot``
        and the pictures.
    exposures : `int`, optional
        Number of simulated exposures (each has six detector images and six darks).
    size : `int`, optional
        Side of each simulated image in pixels (SPHEREx's arrays are 2040).
    jobs : `int`, optional
        Processes for ``pipetask run -j``.  With more than one, ctrl_mpexec spawns a new Python process
        per quantum (3-4 s of imports each), so ``jobs=1`` is faster for small images; the simulator
        always uses up to two worker processes.
    seed : `int`, optional
        Simulator seed.
    fresh : `bool`, optional
        Delete what an earlier run left in ``directory`` and start again; by default it is reused
        (ingest skips what is there, the pipeline run is replaced with ``--replace-run``).
    echo : `~collections.abc.Callable`, optional
        Where progress messages go.

    Returns
    -------
    result : `DemoResult`
        Timings, counts and the paths written.

    Raises
    ------
    DemoError
        Raised if a step fails.
    """
    directory = Path(directory).absolute()
    repo = directory / "DATA"
    simulated = directory / "simulated"
    if fresh and directory.exists():
        echo(f"Removing the earlier demo in {directory} (--fresh).")
        shutil.rmtree(directory)
    reused = (repo / "butler.yaml").exists()
    if reused:
        echo(f"Reusing the demo repository in {repo} (use --fresh to start again).")
    directory.mkdir(parents=True, exist_ok=True)
    result = DemoResult(directory=directory, repo=repo, reused=reused)

    def step(name: str, work: Callable[[], None]) -> None:
        echo(f"==> {name}")
        start = time.perf_counter()
        try:
            work()
        except DemoError:
            raise
        except Exception as err:
            raise DemoError(f"{name} failed: {err}") from err
        result.timings.append((name, time.perf_counter() - start))

    def simulate_step() -> None:
        expected = exposures * 6 * 2
        existing = list(simulated.glob("sim_exposure_*.fits"))
        if len(existing) >= expected:
            echo(f"    reusing {len(existing)} simulated files in {simulated}")
            return
        written = simulate(simulated, exposures=exposures, size=size, seed=seed, workers=SIMULATOR_WORKERS)
        echo(
            f"    wrote {len(written)} files ({exposures} exposures x 6 arrays, raws and darks) "
            f"to {simulated}"
        )

    def create_step() -> None:
        if not reused:
            createRepo(str(repo), seed_config=SEED_CONFIG, dimension_config=DIMENSION_CONFIG, override=True)
        with Butler.from_config(str(repo), writeable=True) as butler:
            SimulatorInstrument().register(butler.registry)
        echo(f"    repository {repo} (registry {repo / 'spherex.sqlite3'})")

    def ingest_step(ingest_type: str) -> Callable[[], None]:
        def work() -> None:
            regex = "dark_current.fits" if ingest_type == "dark" else DEFAULT_REGEX
            report = ingest_simulated(str(repo), [str(simulated)], regex=regex, ingest_type=ingest_type)
            echo(f"    {report.summary()}")
            if not report.ok:
                raise DemoError("\n".join(str(f) for f in report.failed))

        return work

    pipeline = str(files("spherex") / "pipelines" / "ExamplePipeline.yaml")

    def qgraph_step() -> None:
        # An earlier pipetask killed mid-run may have left an empty chain, orphan runs, temporaries.
        for leftover in recover_pipeline_output(str(repo), OUTPUT).describe():
            echo(f"    removed {leftover}")
        dot = directory / "qgraph.dot"
        _pipetask(
            [
                "qgraph",
                "-p",
                pipeline,
                "--qgraph-dot",
                str(dot),
                "-b",
                str(repo),
                "-i",
                "rawexpr,darkr",
                "-o",
                OUTPUT,
            ],
            echo,
        )
        result.outputs["quantum graph (Graphviz)"] = dot
        if shutil.which("dot"):
            svg = dot.with_suffix(".svg")
            subprocess.run(["dot", "-Tsvg", str(dot), "-o", str(svg)], check=True)
            result.outputs["quantum graph (SVG)"] = svg
        else:
            echo("    Graphviz 'dot' is not installed: no SVG of the quantum graph")

    def run_step() -> None:
        args = ["run", "-j", str(jobs), "-p", pipeline, "-b", str(repo), "-o", OUTPUT]
        if _collection_exists(repo, OUTPUT):
            echo(f"    {OUTPUT} exists: replacing its run (--replace-run --prune-replaced=purge)")
            args += ["--replace-run", "--prune-replaced=purge"]
        else:
            args += ["--register-dataset-types", "-i", "rawexpr,darkr"]
        _pipetask(args, echo)

    def pictures_step() -> None:
        with Butler.from_config(str(repo)) as butler:
            ref = butler.query_datasets(
                "postDark", collections=OUTPUT, limit=1, order_by=["exposure", "detector"]
            )[0]
            result.outputs["quick look (raw, dark, postDark)"] = plot_quicklook(
                butler, ref.dataId["exposure"], ref.dataId["detector"], OUTPUT, directory / "quicklook.png"
            )
            result.outputs["sky map of detector footprints"] = plot_sky_map(butler, directory / "skymap.png")

    step("Simulate SPHEREx exposures", simulate_step)
    step("Create repository and register instrument", create_step)
    step("Ingest raw exposures (rawexpr)", ingest_step("rawexp"))
    step("Ingest dark calibrations (darkr)", ingest_step("dark"))
    step("Build the quantum graph", qgraph_step)
    step(f"Run ExamplePipeline (pipetask run -j {jobs})", run_step)
    step("Draw pictures", pictures_step)

    with Butler.from_config(str(repo)) as butler:
        result.collections = sorted(info.name for info in butler.collections.query_info("*"))
        for name in ("rawexp", "dark", "postDark"):
            collections = "darkr" if name == "dark" else OUTPUT
            if name == "dark":
                result.dataset_counts[name] = len(
                    list(butler.registry.queryDatasetAssociations(name, collections=collections))
                )
            else:
                result.dataset_counts[name] = len(
                    butler.query_datasets(name, collections=collections, limit=None, explain=False)
                )
    return result


def _collection_exists(repo: Path, name: str) -> bool:
    with Butler.from_config(str(repo)) as butler:
        try:
            butler.collections.get_info(name)
        except MissingCollectionError:
            return False
    return True


def _pipetask(args: list[str], echo: Callable[[str], None]) -> None:
    """Run ``pipetask`` (the real command, from this Python's environment) and show what it ran."""
    exe = Path(sys.executable).parent / "pipetask"
    command = [str(exe) if exe.exists() else "pipetask", *args]
    echo("    $ pipetask " + " ".join(args))
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    completed = subprocess.run(command, capture_output=True, text=True, env=env)
    if completed.returncode != 0:
        tail = "\n".join((completed.stdout + completed.stderr).strip().splitlines()[-15:])
        raise DemoError(f"pipetask {args[0]} exited with {completed.returncode}:\n{tail}")
