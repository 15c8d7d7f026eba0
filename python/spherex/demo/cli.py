"""``spherex-demo`` command line (parsing only; the work is in `spherex.demo.run`)."""

from __future__ import annotations

__all__ = ["main"]

import sys
from pathlib import Path

import click

from .run import DemoError, run_demo


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path), default="spherex-demo")
@click.option(
    "--exposures",
    type=click.IntRange(1, 1000),
    default=4,
    show_default=True,
    help="Simulated exposures (six detector images and six darks each).",
)
@click.option(
    "--size",
    type=click.IntRange(16, 2040),
    default=512,
    show_default=True,
    help="Image side in pixels (SPHEREx arrays are 2040).",
)
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Processes for pipetask run -j.  With more than one, ctrl_mpexec starts each quantum in a freshly "
    "spawned Python (3-4 s of imports), so -j 1 is the faster route at the demo's sizes.",
)
@click.option("--seed", type=int, default=2025, show_default=True, help="Simulator seed.")
@click.option("--fresh", is_flag=True, help="Delete an earlier demo in DIRECTORY and start again.")
def main(directory: Path, exposures: int, size: int, jobs: int, seed: int, fresh: bool) -> None:
    """Simulate SPHEREx data, put it in a Butler repository and process it with ExamplePipeline.

    Everything goes into DIRECTORY (default ./spherex-demo): simulated/ (FITS files), DATA/ (the
    repository), qgraph.qg (and its pictures qgraph.dot, qgraph.svg), logs/ (pipetask's output),
    quicklook.png and skymap.png.  Running it again reuses what is there (ingest adds nothing, the
    pipeline run is replaced); --fresh starts from nothing.
    """
    try:
        result = run_demo(
            directory,
            exposures=exposures,
            size=size,
            jobs=jobs,
            seed=seed,
            fresh=fresh,
            echo=click.echo,
            live_progress=sys.stdout.isatty(),
        )
    except DemoError as err:
        raise click.ClickException(str(err)) from None
    click.echo("")
    click.echo("Summary")
    click.echo(f"  repository:  {_shown(result.repo)}" + ("  (reused)" if result.reused else "  (new)"))
    click.echo(f"  collections: {', '.join(result.collections)}")
    click.echo(f"  output run:  {result.output_run}")
    click.echo("  datasets:    " + ", ".join(f"{n} {k}" for k, n in result.dataset_counts.items()))
    click.echo("  wall time per step:")
    for name, seconds in result.timings:
        click.echo(f"    {seconds:7.1f} s  {name}")
    click.echo(f"    {sum(s for _, s in result.timings):7.1f} s  total")
    click.echo("  wrote:")
    for what, path in result.outputs.items():
        click.echo(f"    {_shown(path)}  ({what})")
    if result.not_written:
        click.echo("  not drawn:")
        for what, why in result.not_written.items():
            click.echo(f"    {what}: {why}")


def _shown(path: Path) -> str:
    """Return ``path`` relative to the working directory when it is below it, as the steps print it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
