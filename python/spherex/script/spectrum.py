"""Spectra of sky positions from a repository: ingest targets, run Spectrophotometry, write the results.

`measure_spectra` is what ``spherex-spectrum`` runs: it stores the targets (a position or a CSV
catalogue) in a RUN of their own, builds the quantum graph of ``Spectrophotometry.yaml`` against the
Level-2 images of the repository and executes it with pipe_base's `SimplePipelineExecutor` (the graph
builder and single-quantum executor ``pipetask run -j 1`` uses), then writes for every target its
spectrum as ``<name>.ecsv`` and a plot as ``<name>.png``.
"""

from __future__ import annotations

__all__ = [
    "SPECTROPHOTOMETRY_PIPELINE",
    "SpectraResult",
    "measure_spectra",
    "read_spectra",
    "write_spectrum_files",
]

import fnmatch
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from astropy.table import Table
from lsst.daf.butler import Butler, CollectionType
from lsst.resources import ResourcePath

from .ingest.level2 import LEVEL2_DATASET_TYPE
from .ingest.targets import TargetCatalogError, ingest_targets, read_targets
from .spectrum_inputs import check_images_measured, prefetch_remote_headers
from .spectrum_runs import SpectrumRuns, recover_spectrum_runs, write_versions

SPECTROPHOTOMETRY_PIPELINE = "resource://spherex/pipelines/Spectrophotometry.yaml"
"""The pipeline `measure_spectra` runs."""

SPECTRA_DATASET_TYPE = "targetSpectra"
_TRUTH_MATCH_ARCSEC = 1.0
_log = logging.getLogger(__name__)


@dataclass
class SpectraResult:
    """What `measure_spectra` produced."""

    output_run: str
    """RUN collection holding the measurements and spectra."""
    target_run: str
    """RUN collection holding the target catalogue."""
    chain: str = "spectra"
    """CHAINED collection whose first children are these two runs (the latest spectra of every target)."""
    spectra: dict[str, Table] = field(default_factory=dict)
    """Spectrum of each target, by name (targets no image covers are absent)."""
    files: list[Path] = field(default_factory=list)
    """``.ecsv`` and ``.png`` files written."""
    n_quanta: int = 0
    """Quanta executed (measurement and gathering)."""


class _NoEupsWarning(logging.Filter):
    """Drop lsst.utils' "Unable to import eups" warning, which says nothing about a pip-installed run.

    pipe_base records the package versions of every run; outside an EUPS stack lsst.utils then warns,
    once per process, that it cannot ask EUPS.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Unable to import eups")


logging.getLogger("lsst.utils.packages").addFilter(_NoEupsWarning())


def measure_spectra(
    repo: str | Butler,
    *,
    ra: float | None = None,
    dec: float | None = None,
    name: str | None = None,
    targets: str | os.PathLike | None = None,
    output: str | os.PathLike | None = "spectra",
    collections: str | list[str] = "SPHEREx/*",
    truth: str | os.PathLike | Table | None = None,
    pipeline: str = SPECTROPHOTOMETRY_PIPELINE,
    run_prefix: str = "spectra",
) -> SpectraResult:
    """Measure the spectrum of a sky position or of every target of a catalogue.

    Parameters
    ----------
    repo : `str` or `lsst.daf.butler.Butler`
        Repository with Level-2 images (``butler ingest-spherex``), or a writeable Butler on it.
    ra, dec : `float`, optional
        A position (ICRS degrees); give these or ``targets``.
    name : `str`, optional
        Name of that position's target (files ``<name>.ecsv``/``.png``); from the position by default.
    targets : `str` or `os.PathLike`, optional
        CSV catalogue (``name, ra, dec[, kind]``), as for ``butler ingest-targets``.
    output : `str` or `os.PathLike`, optional
        Directory for ``<name>.ecsv`` and ``<name>.png``; `None` writes no files.
    collections : `str` or `list` [`str`], optional
        Collections (glob patterns allowed) of the Level-2 images.
    truth : `str` or `os.PathLike` or `astropy.table.Table`, optional
        ``spherex-simulate --truth`` table: adds ``flux_true`` to the spectra and the truth to the plots.
    pipeline : `str`, optional
        Pipeline file to run.
    run_prefix : `str`, optional
        Targets go to ``<prefix>/targets/<time>`` and results to ``<prefix>/<time>``; once finished, both
        are put at the front of the CHAINED collection ``<prefix>`` (`spherex.script.spectrum_runs`).
        The runs of an earlier call killed before it finished are removed first.

    Returns
    -------
    result : `SpectraResult`
        Collections, spectra and files.

    Raises
    ------
    ValueError
        Raised for a bad position or catalogue (`TargetCatalogError`), a position and a catalogue both
        or neither given, or no image in ``collections`` covering any target.
    """
    # pipe_base is imported here, not with the module: `butler` loads this package's commands.
    from lsst.pipe.base.simple_pipeline_executor import SimplePipelineExecutor

    table = _targets_table(ra, dec, name, targets)
    truth_table = _read_truth(truth)
    from .ingest.simulated import writeable_butler

    butler = writeable_butler(repo)
    inputs = _image_collections(butler, collections)
    recover_spectrum_runs(butler, run_prefix)
    runs = SpectrumRuns.begin(butler, run_prefix)
    target_run, output_run = runs.target_run, runs.output_run
    try:
        ingest_targets(butler, table, run=target_run)
        run_butler = Butler.from_config(butler=butler, collections=[*inputs, target_run], run=output_run)
        executor = SimplePipelineExecutor.from_pipeline_filename(
            pipeline, butler=run_butler, output_run=output_run
        )
        if len(executor.predicted) == 0:
            raise ValueError(
                f"No Level-2 image in {', '.join(inputs)} overlaps the sky pixel of any of the {len(table)} "
                "target(s); nothing to measure"
            )
        prefetch_remote_headers(run_butler, executor)
        quanta = executor.run(register_dataset_types=True, save_versions=False)
        check_images_measured(run_butler, executor, output_run)
        write_versions(executor)
        runs.finish(
            butler,
            inputs,
            f"spherex-spectrum of {len(table)} target(s) from {table.meta.get('source', 'a table')}",
        )
    except BaseException:
        # Nothing half-written: a call that fails (or is interrupted) leaves neither of its runs.
        runs.abandon(butler)
        raise
    spectra = read_spectra(butler, output_run)
    result = SpectraResult(output_run, target_run, runs.chain, spectra, n_quanta=len(quanta))
    if truth_table is not None:
        for target, spectrum in spectra.items():
            _add_truth(spectrum, truth_table, target)
    if output is not None:
        result.files = write_spectrum_files(spectra, output, truth=truth_table)
    missing = sorted(set(table["name"]) - set(spectra))
    if missing:
        _log.warning("No image covers %d target(s): %s", len(missing), ", ".join(missing[:10]))
    return result


def read_spectra(butler: Butler, collection: str) -> dict[str, Table]:
    """Read the spectra of a Spectrophotometry run, one table per target.

    Parameters
    ----------
    butler : `lsst.daf.butler.Butler`
        Butler of the repository.
    collection : `str`
        Collection holding ``targetSpectra``.

    Returns
    -------
    spectra : `dict` [`str`, `astropy.table.Table`]
        By target name: rows sorted by wavelength, with units (micron, microJy); ``meta`` holds the
        target's ``ra``, ``dec``, ``kind``, the flag definitions and the run.
    """
    spectra: dict[str, Table] = {}
    for ref in butler.query_datasets(SPECTRA_DATASET_TYPE, collections=collection, explain=False, limit=None):
        table = butler.get(ref, parameters={"strip_astropy_meta_yaml": False})
        names = np.asarray(table["target"], dtype=str)
        # One pass over the rows, grouped by target (a stable sort keeps each spectrum's row order).
        order = np.argsort(names, kind="stable")
        unique, starts = np.unique(names[order], return_index=True)
        rows = dict(zip(unique.tolist(), np.split(order, starts[1:]), strict=True)) if len(names) else {}
        for target, position in _target_positions(table, rows).items():
            if target not in rows:
                continue
            spectrum = table[rows[target]]
            spectrum.meta = {
                "target": target,
                **position,
                "excluded_flags": table.meta.get("excluded_flags", []),
                "run": collection,
            }
            spectra[target] = spectrum
    return spectra


def _target_positions(table: Table, rows: dict[str, np.ndarray]) -> dict[str, dict[str, Any]]:
    """Return each target's catalogue ``ra``, ``dec`` and ``kind`` from a ``targetSpectra`` table.

    Runs before 2026-12-06 kept them in the table's ``meta`` (``targets``); later ones in columns.
    """
    if "target_ra" not in table.colnames:
        return dict(table.meta.get("targets", {}))
    ra, dec, kind = (np.asarray(table[c]) for c in ("target_ra", "target_dec", "target_kind"))
    return {
        target: {"ra": float(ra[i[0]]), "dec": float(dec[i[0]]), "kind": str(kind[i[0]])}
        for target, i in rows.items()
    }


def write_spectrum_files(
    spectra: dict[str, Table], output: str | os.PathLike, truth: Table | None = None
) -> list[Path]:
    """Write each spectrum as ``<name>.ecsv`` and its plot as ``<name>.png``.

    Parameters
    ----------
    spectra : `dict` [`str`, `astropy.table.Table`]
        Spectra by target name (`read_spectra`).
    output : `str` or `os.PathLike`
        Directory, created if missing.
    truth : `astropy.table.Table`, optional
        Simulation truth to overlay on the plots.

    Returns
    -------
    files : `list` [`pathlib.Path`]
        Files written.
    """
    from .spectrum_plot import plot_spectrum

    outdir = Path(output)
    outdir.mkdir(parents=True, exist_ok=True)
    files = []
    for target, spectrum in sorted(spectra.items()):
        # Names were checked at ingest (no path characters); check again, as the table could come from
        # anywhere.
        if Path(target).name != target or target.startswith("."):
            raise ValueError(f"Target name {target!r} cannot be used as a file name")
        ecsv = outdir / f"{target}.ecsv"
        spectrum.write(ecsv, format="ascii.ecsv", overwrite=True)
        png = outdir / f"{target}.png"
        plot_spectrum(spectrum, png, truth=_truth_rows(truth, spectrum) if truth is not None else None)
        files += [ecsv, png]
    return files


def _targets_table(
    ra: float | None, dec: float | None, name: str | None, targets: str | os.PathLike | None
) -> Table:
    if targets is not None:
        if ra is not None or dec is not None:
            raise ValueError("Give either --ra/--dec or --targets, not both")
        return read_targets(targets)
    if ra is None or dec is None:
        raise ValueError("Give a position (--ra and --dec) or a catalogue (--targets)")
    name = name or f"ra{ra:.5f}_dec{dec:+.5f}"
    # The same checks as a catalogue's row (name, ranges), through a one-row CSV in memory.
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "position.csv")
        path.write_text(f"name,ra,dec\n{name},{ra!r},{dec!r}\n")
        try:
            table = read_targets(path)
        except TargetCatalogError as err:
            raise TargetCatalogError(str(err).replace(f"{path} row 2", "position")) from None
    table.meta["source"] = "position"
    return table


def _image_collections(butler: Butler, collections: str | list[str]) -> list[str]:
    patterns = [collections] if isinstance(collections, str) else list(collections)
    names = []
    for info in butler.collections.query_info(
        "*", collection_types={CollectionType.RUN, CollectionType.CHAINED}
    ):
        if any(fnmatch.fnmatchcase(info.name, pattern) for pattern in patterns) and info.name not in names:
            names.append(info.name)
    names = [
        n for n in names if butler.query_datasets(LEVEL2_DATASET_TYPE, collections=n, limit=1, explain=False)
    ]
    if not names:
        raise ValueError(f"No collection matching {', '.join(patterns)} holds {LEVEL2_DATASET_TYPE} datasets")
    return names


def _read_truth(truth: str | os.PathLike | Table | None) -> Table | None:
    if truth is None or isinstance(truth, Table):
        return truth
    uri = ResourcePath(os.fspath(truth))
    if not uri.exists():
        raise FileNotFoundError(f"{truth}: no such truth file")
    table = Table.read(os.fspath(truth), format="ascii.ecsv")
    missing = {"name", "ra", "dec", "exposure", "detector", "wavelength", "flux"} - set(table.colnames)
    if missing:
        raise ValueError(
            f"{truth}: not a spherex-simulate truth table (missing {', '.join(sorted(missing))})"
        )
    return table


def _truth_rows(truth: Table, spectrum: Table) -> Table:
    """Return the truth rows of a spectrum's target: by name, else by position within 1 arcsec."""
    target = spectrum.meta.get("target")
    names = np.asarray(truth["name"], dtype=str)
    rows = truth[names == target]
    if not len(rows) and "ra" in spectrum.meta:
        ra, dec = spectrum.meta["ra"], spectrum.meta["dec"]
        dra = (np.asarray(truth["ra"]) - ra + 180) % 360 - 180
        separation = np.hypot(dra * np.cos(np.radians(dec)), np.asarray(truth["dec"]) - dec) * 3600
        if np.any(separation < _TRUTH_MATCH_ARCSEC):
            rows = truth[names == names[np.argmin(separation)]]
    return rows


def _add_truth(spectrum: Table, truth: Table, target: str) -> None:
    rows = _truth_rows(truth, spectrum)
    lookup = {(int(r["exposure"]), int(r["detector"])): float(r["flux"]) for r in rows}
    spectrum["flux_true"] = [
        lookup.get((int(e), int(d)), np.nan) for e, d in zip(spectrum["exposure"], spectrum["detector"])
    ]
    spectrum["flux_true"].unit = spectrum["flux"].unit
    spectrum["flux_true"].description = "Simulated flux density at this image's wavelength (truth file)"
