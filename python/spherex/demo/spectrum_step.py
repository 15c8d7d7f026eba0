"""The demo's last step: one source's 0.75-5 micron spectrum, measured from the repository.

`spectrum_step` simulates a small Level-2 deep field (`spherex.simulator.deep_field`: sources of known
spectra seen through every band as the arrays step over them), keeps the images its sources fall on
(the simulation writes all six arrays of every exposure; the field is on two), ingests them into the
demo repository as ``butler ingest-spherex`` does, and runs the forced spectrophotometry pipeline for
one source with `spherex.script.measure_spectra`, as ``spherex-spectrum`` does.  The spectrum is written as
``spectra/<name>.ecsv`` and ``spectra/<name>.png`` in the demo directory, the simulation's truth beside
the measurements.
"""

from __future__ import annotations

__all__ = [
    "DEEP_FIELD",
    "DEEP_FIELD_SHAPE",
    "DEEP_FIELD_SIZE",
    "DEEP_FIELD_SOURCES",
    "DEEP_FIELD_STEPS",
    "spectrum_step",
]

from pathlib import Path
from typing import TYPE_CHECKING

from astropy.table import Table

from ..instrument.level2_files import Level2FileName
from ..script import ingest_spherex, measure_spectra
from ..simulator.deep_field import deep_field_sources, simulate_deep_field

if TYPE_CHECKING:
    from .run import DemoContext

DEEP_FIELD = (150.0, 2.0)
"""ICRS centre of the demo's deep field, degrees (as in the README's section on spectra)."""
DEEP_FIELD_SIZE = 96
"""Pixels per side of its arrays: small, so that the step takes tens of seconds on 2 cores."""
DEEP_FIELD_STEPS = 4
"""Pointings per array (3 x 4 = 12 exposures of 6 arrays): every band at least once."""
DEEP_FIELD_SOURCES = 3
"""A flat continuum, a 3.05 micron ice absorption and a 3.3 micron PAH line."""
DEEP_FIELD_SHAPE = {"psf_zones": 3, "psf_size": 41, "wave_grid": 5}
"""Fewer PSF zones, a smaller PSF plane and a coarser wavelength table than real files: faster to write."""
_TARGET_KIND = "ice"


def spectrum_step(ctx: DemoContext) -> None:
    """Simulate a small deep field, ingest it, and measure the spectrum of its ice-absorption source."""
    field = ctx.directory / "deep_field"
    truth = ctx.directory / "deep_field_truth.ecsv"
    ra, dec = DEEP_FIELD
    if truth.exists() and any(field.glob("*.fits")):
        ctx.echo(f"    reusing the deep field in {field}")
    else:
        written = simulate_deep_field(
            field,
            ra,
            dec,
            steps=DEEP_FIELD_STEPS,
            sources=DEEP_FIELD_SOURCES,
            size=DEEP_FIELD_SIZE,
            seed=ctx.seed,
            truth=truth,
            **DEEP_FIELD_SHAPE,
        )
        from .run import _rel  # run.py imports this module

        kept = _keep_images_with_sources(written, Table.read(truth, format="ascii.ecsv"))
        ctx.echo(
            f"    simulated {len(written)} Level-2 images of {DEEP_FIELD_SIZE}^2 pixels; kept the {kept} "
            f"the sources fall on, in {_rel(field)}"
        )
    report = ingest_spherex(str(ctx.repo), [str(field)])
    ctx.echo(f"    {report.summary()}")
    if not report.ok:
        from .run import DemoError

        raise DemoError("; ".join(str(failure) for failure in report.failed))
    sources = deep_field_sources(ra, dec, DEEP_FIELD_SOURCES, DEEP_FIELD_SIZE, ctx.seed)
    source = next((s for s in sources if s.name.endswith(_TARGET_KIND)), sources[0])
    result = measure_spectra(
        str(ctx.repo),
        ra=source.ra,
        dec=source.dec,
        name=source.name,
        output=ctx.directory / "spectra",
        truth=truth,
    )
    spectrum = result.spectra[source.name]
    ctx.echo(
        f"    {source.name} at RA {source.ra:.4f} Dec {source.dec:.4f}: {len(spectrum)} measurements, "
        f"{int(spectrum['used'].sum())} used, {spectrum['wavelength'].min():.2f}-"
        f"{spectrum['wavelength'].max():.2f} micron ({result.n_quanta} quanta, RUN {result.output_run})"
    )
    for path in result.files:
        kind = "spectrum plot" if path.suffix == ".png" else "spectrum table"
        ctx.result.outputs[f"{kind} of {source.name}"] = path


def _keep_images_with_sources(paths: list[Path], truth: Table) -> int:
    """Delete the simulated images no source falls on (per the truth table); return how many are kept."""
    seen = {(int(e), int(d)) for e, d in zip(truth["exposure"], truth["detector"], strict=True)}
    kept = 0
    for path in paths:
        name = Level2FileName.parse(path.name)
        if name is not None and (name.exposure, name.detector) in seen:
            kept += 1
        else:
            path.unlink()
    return kept
