"""The demo's steps: simulate, create a repository, ingest, build the quantum graph, run, draw.

`run_demo` runs `DEMO_STEPS` in order.  Each step is a function of the `DemoContext` (where things go,
the options, what earlier steps found); a new step is a function and an entry in that list.
"""

from __future__ import annotations

__all__ = [
    "DEMO_STEPS",
    "DemoContext",
    "DemoError",
    "DemoResult",
    "DemoStep",
    "estimate_demo_bytes",
    "run_demo",
]

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path

from lsst.daf.butler import Butler, MissingCollectionError
from lsst.daf.butler.script import createRepo
from lsst.pipe.base import Instrument

from ..instrument import SimulatorInstrument
from ..script import DEFAULT_REGEX, ingest_simulated
from ..script.pipeline_recovery import recover_pipeline_output
from ..simulator import simulate
from .graph import write_grouped_dot
from .pipetask import PipetaskError, QuantumProgress, run_pipetask
from .plots import plot_quicklook, plot_sky_map
from .spectrum_step import spectrum_step

SEED_CONFIG = "resource://spherex/configs/butler.yaml"
DIMENSION_CONFIG = "resource://spherex/configs/dimensions.yaml"
OUTPUT = "subtractr"
INPUTS = "rawexpr,darkr"
SIMULATOR_WORKERS = min(2, os.cpu_count() or 1)
"""Simulator worker processes (cheap to start: they import numpy and astropy only)."""
DETECTORS = 6


GRAPHVIZ_MISSING = (
    "Graphviz's `dot` is not on PATH (Debian/Ubuntu: apt-get install graphviz; then dot -Tsvg {dot} -o {svg})"
)
"""Why the quantum graph has no SVG, and how to get one."""


class DemoError(RuntimeError):
    """A demo step failed; the message names the step and what went wrong, in one line."""


@dataclass
class DemoResult:
    """What the demo did and wrote."""

    directory: Path
    repo: Path
    reused: bool
    """`True` if an earlier demo's files and repository were reused rather than made anew."""
    output_run: str = ""
    """The RUN collection this demo's pipeline wrote (``subtractr/<timestamp>``)."""
    timings: list[tuple[str, float]] = field(default_factory=list)
    """Wall time of each step, seconds, in order."""
    outputs: dict[str, Path] = field(default_factory=dict)
    """Files written, by description."""
    not_written: dict[str, str] = field(default_factory=dict)
    """Pictures the demo could not draw, by description, with why and how to get them."""
    dataset_counts: dict[str, int] = field(default_factory=dict)
    collections: list[str] = field(default_factory=list)


@dataclass
class DemoContext:
    """Everything a demo step needs: options, paths, where messages go, and the result so far."""

    directory: Path
    exposures: int
    size: int
    jobs: int
    seed: int
    echo: Callable[..., None]
    live_progress: bool
    result: DemoResult
    pipeline: str = str(files("spherex") / "pipelines" / "ExamplePipeline.yaml")

    @property
    def repo(self) -> Path:
        """The demo's Butler repository."""
        return self.directory / "DATA"

    @property
    def simulated(self) -> Path:
        """The simulated FITS files."""
        return self.directory / "simulated"

    @property
    def logs(self) -> Path:
        """Directory of the ``pipetask`` logs."""
        return self.directory / "logs"


@dataclass(frozen=True)
class DemoStep:
    """One step of the demo: its title (printed and timed) and its work."""

    title: str
    """Printed before the step and in the timings; ``{jobs}`` is replaced by the ``-j`` value."""
    work: Callable[[DemoContext], None]


def simulate_step(ctx: DemoContext) -> None:
    """Simulate raws and darks, unless an earlier demo left enough of them."""
    expected = ctx.exposures * DETECTORS * 2
    existing = list(ctx.simulated.glob("sim_exposure_*.fits"))
    if len(existing) >= expected:
        ctx.echo(f"    reusing {len(existing)} simulated files in {_rel(ctx.simulated)}")
        return
    written = simulate(
        ctx.simulated, exposures=ctx.exposures, size=ctx.size, seed=ctx.seed, workers=SIMULATOR_WORKERS
    )
    ctx.echo(
        f"    wrote {len(written)} files ({ctx.exposures} exposures x {DETECTORS} arrays, raws and darks) "
        f"to {_rel(ctx.simulated)}"
    )


def create_step(ctx: DemoContext) -> None:
    """Create the repository (as ``butler create`` does) and register the instrument."""
    if not ctx.result.reused:
        try:
            createRepo(
                str(ctx.repo), seed_config=SEED_CONFIG, dimension_config=DIMENSION_CONFIG, override=True
            )
        except FileExistsError as err:
            # butler create prints a traceback for this; one line is enough.
            raise DemoError(
                f"{_rel(ctx.repo)} already holds (part of) a repository ({err.filename} exists); "
                "remove it or run spherex-demo --fresh"
            ) from None
    with Butler.from_config(str(ctx.repo), writeable=True) as butler:
        SimulatorInstrument().register(butler.registry)
    ctx.echo(f"    repository {_rel(ctx.repo)} (registry {_rel(ctx.repo / 'spherex.sqlite3')})")


def _ingest(ctx: DemoContext, ingest_type: str) -> None:
    regex = "dark_current.fits" if ingest_type == "dark" else DEFAULT_REGEX
    report = ingest_simulated(str(ctx.repo), [str(ctx.simulated)], regex=regex, ingest_type=ingest_type)
    ctx.echo(f"    {report.summary()}")
    if not report.ok:
        raise DemoError("; ".join(str(f) for f in report.failed))


def ingest_raws_step(ctx: DemoContext) -> None:
    """Ingest the raws into ``rawexpr``."""
    _ingest(ctx, "rawexp")


def ingest_darks_step(ctx: DemoContext) -> None:
    """Ingest and certify the darks in ``darkr``."""
    _ingest(ctx, "dark")


def _replacing(ctx: DemoContext) -> bool:
    with Butler.from_config(str(ctx.repo)) as butler:
        try:
            butler.collections.get_info(OUTPUT)
        except MissingCollectionError:
            return False
    return True


def qgraph_step(ctx: DemoContext) -> None:
    """Build the quantum graph for the run the next step creates, and draw it grouped by exposure."""
    # An earlier pipetask killed mid-run may have left an empty chain, orphan runs, temporaries.
    for leftover in recover_pipeline_output(str(ctx.repo), OUTPUT).describe():
        ctx.echo(f"    removed {leftover}")
    saved = ctx.directory / "qgraph.qg"
    args = ["qgraph", "-p", ctx.pipeline, "-b", _rel(ctx.repo), "-i", INPUTS, "-o", OUTPUT]
    args += ["--output-run", ctx.result.output_run, "--save-qgraph", _rel(saved)]
    if _replacing(ctx):
        args.append("--replace-run")  # the graph the run step builds: without the replaced run's outputs
    run_pipetask(args, ctx.logs / "pipetask-qgraph.log", ctx.echo)
    dot = write_grouped_dot(saved, ctx.directory / "qgraph.dot")
    ctx.result.outputs["quantum graph (Graphviz)"] = dot
    if shutil.which("dot"):
        svg = dot.with_suffix(".svg")
        subprocess.run(["dot", "-Tsvg", str(dot), "-o", str(svg)], check=True)
        ctx.result.outputs["quantum graph (SVG)"] = svg
    else:
        why = GRAPHVIZ_MISSING.format(dot=_rel(dot), svg=_rel(dot.with_suffix(".svg")))
        ctx.result.not_written["quantum graph (SVG)"] = why
        ctx.echo(f"    no SVG of the quantum graph: {why}")


def run_step(ctx: DemoContext) -> None:
    """Run ExamplePipeline into the run named in the quantum graph, showing quanta done / total."""
    args = ["run", "-j", str(ctx.jobs), "-p", ctx.pipeline, "-b", _rel(ctx.repo), "-o", OUTPUT]
    args += ["--output-run", ctx.result.output_run]
    if _replacing(ctx):
        ctx.echo(f"    {OUTPUT} exists: replacing its run (--replace-run --prune-replaced=purge)")
        args += ["--replace-run", "--prune-replaced=purge"]
    else:
        args += ["--register-dataset-types", "-i", INPUTS]
    progress = QuantumProgress(ctx.echo, live=ctx.live_progress)
    run_pipetask(args, ctx.logs / "pipetask-run.log", ctx.echo, progress)


def pictures_step(ctx: DemoContext) -> None:
    """Draw the quick look at one detector and the sky map of all footprints."""
    with Butler.from_config(str(ctx.repo)) as butler:
        ref = butler.query_datasets(
            "postDark", collections=OUTPUT, limit=1, order_by=["exposure", "detector"]
        )[0]
        ctx.result.outputs["quick look (raw, dark, postDark, raw - postDark)"] = plot_quicklook(
            butler, ref.dataId["exposure"], ref.dataId["detector"], OUTPUT, ctx.directory / "quicklook.png"
        )
        ctx.result.outputs["sky map of detector footprints"] = plot_sky_map(
            butler, ctx.directory / "skymap.png"
        )


DEMO_STEPS: list[DemoStep] = [
    DemoStep("Simulate SPHEREx exposures", simulate_step),
    DemoStep("Create repository and register instrument", create_step),
    DemoStep("Ingest raw exposures (rawexpr)", ingest_raws_step),
    DemoStep("Ingest dark calibrations (darkr)", ingest_darks_step),
    DemoStep("Build the quantum graph", qgraph_step),
    DemoStep("Run ExamplePipeline (pipetask run -j {jobs})", run_step),
    DemoStep("Draw pictures", pictures_step),
    DemoStep("Measure a spectrum (spherex-spectrum)", spectrum_step),
]
"""The demo, in order."""


def estimate_demo_bytes(exposures: int, size: int) -> int:
    """Return an upper estimate of the disk space a demo of this size needs.

    Every simulated raw and dark and every ``postDark`` holds three planes of 4-byte pixels (image,
    variance, flags) plus headers; ingest hard-links (or symlinks) the simulated files into the
    repository, so they count once.  A rerun writes the new ``postDark`` run before it purges the old,
    so that set counts twice.  Registry, quantum graph and pictures add a few MB.

    Parameters
    ----------
    exposures : `int`
        Simulated exposures.
    size : `int`
        Image side in pixels.

    Returns
    -------
    nbytes : `int`
        Bytes.
    """
    per_file = 3 * 4 * size * size + 40 * 2880  # planes + four HDUs' headers (generous)
    files_written = exposures * DETECTORS * (2 + 2)
    return files_written * per_file + 20 * 2**20


def _check_free_space(ctx: DemoContext) -> None:
    needed = estimate_demo_bytes(ctx.exposures, ctx.size)
    existing = ctx.directory
    while not existing.exists():
        existing = existing.parent
    free = shutil.disk_usage(existing).free
    if needed > free:
        raise DemoError(
            f"{ctx.exposures} exposures of {ctx.size}x{ctx.size} pixels need about {_human(needed)} in "
            f"{existing}, which has {_human(free)} free; choose fewer --exposures, a smaller --size or "
            "another DIRECTORY"
        )
    if needed > 2**30:
        ctx.echo(f"This demo needs about {_human(needed)} of disk space ({_human(free)} free in {existing}).")


def run_demo(
    directory: Path,
    exposures: int = 4,
    size: int = 512,
    jobs: int = 1,
    seed: int = 2025,
    fresh: bool = False,
    echo: Callable[..., None] = print,
    live_progress: bool = False,
) -> DemoResult:
    """Run the whole SPHEREx Butler workflow in ``directory``.

    Parameters
    ----------
    directory : `pathlib.Path`
        Where to put the simulated files (``simulated/``), the repository (``DATA/``), the quantum graph
        (``qgraph.qg``, ``qgraph.dot``, ``qgraph.svg``), pipetask's logs (``logs/``) and the pictures.
    exposures : `int`, optional
        Number of simulated exposures (each has six detector images and six darks).
    size : `int`, optional
        Side of each simulated image in pixels (SPHEREx's arrays are 2040).
    jobs : `int`, optional
        Processes for ``pipetask run -j``.  ``1`` (the default) runs every quantum in one process; with
        more, ctrl_mpexec spawns a new Python process per quantum (3-4 s of imports each), which only
        pays off for large images.
    seed : `int`, optional
        Simulator seed.
    fresh : `bool`, optional
        Delete what an earlier run left in ``directory`` and start again; by default it is reused
        (ingest skips what is there, the pipeline run is replaced with ``--replace-run``).
    echo : `~collections.abc.Callable`, optional
        Where progress messages go (``click.echo`` or `print`).
    live_progress : `bool`, optional
        Rewrite the "quanta done / total" line in place (for a terminal; ``echo`` must accept ``nl``).

    Returns
    -------
    result : `DemoResult`
        Timings, counts and the paths written.

    Raises
    ------
    DemoError
        Raised if a step fails or the disk is too small; nothing is written in the latter case.
    """
    directory = Path(directory).absolute()
    ctx = DemoContext(
        directory=directory,
        exposures=exposures,
        size=size,
        jobs=jobs,
        seed=seed,
        echo=echo,
        live_progress=live_progress,
        result=DemoResult(directory=directory, repo=directory / "DATA", reused=False),
    )
    _check_free_space(ctx)
    if fresh and directory.exists():
        echo(f"Removing the earlier demo in {directory} (--fresh).")
        shutil.rmtree(directory)
    ctx.result.reused = (ctx.repo / "butler.yaml").exists()
    if ctx.result.reused:
        echo(f"Reusing the demo repository in {_rel(ctx.repo)} (use --fresh to start again).")
    directory.mkdir(parents=True, exist_ok=True)
    ctx.result.output_run = f"{OUTPUT}/{Instrument.makeCollectionTimestamp()}"

    for step in DEMO_STEPS:
        title = step.title.format(jobs=ctx.jobs)
        echo(f"==> {title}")
        start = time.perf_counter()
        try:
            step.work(ctx)
        except (DemoError, PipetaskError) as err:
            raise DemoError(f"{title}: {err}") from None
        except Exception as err:
            raise DemoError(f"{title} failed: {type(err).__name__}: {err}") from err
        ctx.result.timings.append((title, time.perf_counter() - start))

    _count(ctx)
    return ctx.result


def _count(ctx: DemoContext) -> None:
    with Butler.from_config(str(ctx.repo)) as butler:
        ctx.result.collections = sorted(info.name for info in butler.collections.query_info("*"))
        ctx.result.dataset_counts["rawexp"] = len(
            butler.query_datasets("rawexp", collections=OUTPUT, limit=None, explain=False)
        )
        ctx.result.dataset_counts["dark"] = len(
            list(butler.registry.queryDatasetAssociations("dark", collections="darkr"))
        )
        ctx.result.dataset_counts["postDark"] = len(
            butler.query_datasets("postDark", collections=OUTPUT, limit=None, explain=False)
        )


def _rel(path: Path) -> str:
    """Return ``path`` relative to the working directory when it is below it (shorter commands)."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _human(nbytes: int) -> str:
    return f"{nbytes / 1e9:.1f} GB" if nbytes >= 1e9 else f"{nbytes / 1e6:.0f} MB"
