"""Assemble the forced measurements of targets into spectra, one table per instrument and run.

Targets are not a dimension of the repository, so the spectra of every target of the quantum graph are
stored together in one ``targetSpectra`` table per instrument, a spectrum being the rows of one
``target``.  The one quantum reads the ``spectroTargets`` catalogues of the sky pixels (``healpix7``)
the graph's images overlap and every ``forcedSpectrophotometry`` table.

Why per instrument rather than per sky pixel: gathering is a table concatenation (milliseconds per
thousand rows) while each quantum costs the executor ~0.2-1 s of its own, and targets within half a
degree already spread over several ``healpix7`` pixels (~17 of the finer ``healpix8``); a graph of many
pixels spent most of its time starting gathering quanta.  A coarser sky pixel cannot be used: daf_butler
relates regions only to the common sky pixelization.  For very large catalogues, run the pipeline per
sub-catalogue (each ``spherex-spectrum --targets`` call is one graph).
"""

from __future__ import annotations

__all__ = [
    "GatherSpectraConfig",
    "GatherSpectraConnections",
    "GatherSpectraTask",
    "SPECTRUM_COLUMNS",
]

import astropy.units as u
import numpy as np
from astropy.table import Table, vstack
from lsst.pex.config import Field, ListField
from lsst.pipe.base import (
    InputQuantizedConnection,
    OutputQuantizedConnection,
    PipelineTask,
    PipelineTaskConfig,
    PipelineTaskConnections,
    QuantumContext,
    Struct,
)
from lsst.pipe.base import connectionTypes as cT

from .catalogue_cache import TARGET_CATALOGUES
from .spectrophotometry import MEASUREMENT_COLUMNS, TARGET_SKYPIX, _measurement_table

TARGET_COLUMNS = (
    ("target_ra", "ra", "ICRS right ascension of the target in its catalogue"),
    ("target_dec", "dec", "ICRS declination of the target in its catalogue"),
    ("target_kind", "kind", "The target's kind in its catalogue"),
)
"""Columns of a ``targetSpectra`` table copied from the target catalogue: (column, catalogue column,
description)."""

SPECTRUM_COLUMNS = MEASUREMENT_COLUMNS + ("used",) + tuple(column for column, _, _ in TARGET_COLUMNS)
"""Columns of a ``targetSpectra`` table: those of the measurements, ``used``, and the target's
catalogue position and kind."""


class GatherSpectraConnections(PipelineTaskConnections, dimensions=("instrument",)):
    """Connections of `GatherSpectraTask`: the targets, the measurements, the spectra."""

    targets = cT.Input(
        doc="Target catalogues of the sky pixels the graph's images overlap.",
        name="spectroTargets",
        storageClass="ArrowAstropy",
        dimensions=(TARGET_SKYPIX,),
        multiple=True,
    )
    measurements = cT.Input(
        doc="Forced measurements of every image of the graph.",
        name="forcedSpectrophotometry",
        storageClass="ArrowAstropy",
        dimensions=("instrument", "exposure", "detector"),
        multiple=True,
    )
    spectra = cT.Output(
        doc="Spectra of the targets: their measurements sorted by target then wavelength.",
        name="targetSpectra",
        storageClass="ArrowAstropy",
        dimensions=("instrument",),
    )


class GatherSpectraConfig(PipelineTaskConfig, pipelineConnections=GatherSpectraConnections):
    """Configuration of `GatherSpectraTask`."""

    excludeFlags = ListField[str](
        doc="Measurements with any of these FLAGS bits under the PSF core are kept but marked used=False.",
        default=[
            "TRANSIENT", "OVERFLOW", "SUR_ERROR", "NONFUNC", "MISSING_DATA", "HOT", "COLD", "PHANMISS",
            "PERSIST", "OUTLIER",
        ],
    )  # fmt: skip
    maxReducedChi2 = Field[float](
        doc="Measurements whose joint fit has a larger reduced chi-square (an unmodelled neighbour, "
        "a bad PSF) are kept but not used.  Isolated sources on ~120 pixels give 1 +- 0.13.",
        default=2.0,
        check=lambda value: value > 0.0,
    )
    minPsfFraction = Field[float](
        doc="Measurements whose fitted pixels hold less of the PSF than this (image edges) are not used.",
        default=0.9,
        check=lambda value: 0.0 <= value <= 1.0,
    )


class GatherSpectraTask(PipelineTask):
    """Gather the measurements of each target into its spectrum.

    A spectrum is the target's rows, sorted by wavelength; every measurement is kept, and ``used`` says
    whether it counts: finite flux and error, no flag of ``excludeFlags`` under the PSF core, and at least
    ``minPsfFraction`` of the PSF on the image.
    """

    ConfigClass = GatherSpectraConfig
    _DefaultName = "gatherSpectra"
    config: GatherSpectraConfig

    def runQuantum(
        self,
        butlerQC: QuantumContext,
        inputRefs: InputQuantizedConnection,
        outputRefs: OutputQuantizedConnection,
    ) -> None:
        """Read the targets (from the process's cache when measured here) and measurements; gather.

        Parameters
        ----------
        butlerQC : `lsst.pipe.base.QuantumContext`
            Butler access for this quantum.
        inputRefs : `lsst.pipe.base.InputQuantizedConnection`
            The target catalogues and measurement tables.
        outputRefs : `lsst.pipe.base.OutputQuantizedConnection`
            The spectra table.
        """
        targets = TARGET_CATALOGUES.get(butlerQC, inputRefs.targets)
        measurements = butlerQC.get(inputRefs.measurements)
        butlerQC.put(self.run(targets=targets, measurements=measurements), outputRefs)

    def run(self, targets: Table | list[Table], measurements: list[Table]) -> Struct:
        """Select the measurements of the targets and mark those to use.

        Parameters
        ----------
        targets : `astropy.table.Table` or `list` [`astropy.table.Table`]
            The targets (columns ``name``, ``ra``, ``dec``, ``kind``), one catalogue or several.
        measurements : `list` [`astropy.table.Table`]
            Measurement tables of `~spherex.tasks.ForcedSpectrophotometryTask`.

        Returns
        -------
        result : `lsst.pipe.base.Struct`
            ``spectra``: `astropy.table.Table` with `SPECTRUM_COLUMNS`, sorted by target then
            wavelength, with the target's catalogue entry in ``target_ra``, ``target_dec`` and
            ``target_kind``; ``meta`` holds ``excluded_flags`` (read it with
            ``parameters={"strip_astropy_meta_yaml": False}``: daf_butler's Parquet reader drops it).
        """
        if not isinstance(targets, Table):
            targets = vstack(list(targets), metadata_conflicts="silent")
        tables = [t for t in measurements if len(t)]
        combined = vstack(tables, metadata_conflicts="silent") if tables else _measurement_table([])
        if "role" in targets.colnames:
            targets = targets[np.asarray(targets["role"]) != "reference"]
        names = set(str(name) for name in targets["name"])
        spectra = combined[np.isin(np.asarray(combined["target"], dtype=str), list(names))]
        excluded = set(self.config.excludeFlags)
        clean = [not excluded.intersection(str(names).split("|")) for names in spectra["flag_names"]]
        spectra["used"] = (
            np.array(clean, dtype=bool).reshape(len(spectra))
            & np.isfinite(spectra["flux"])
            & np.isfinite(spectra["flux_err"])
            & (np.asarray(spectra["psf_fraction"]) >= self.config.minPsfFraction)
            & ~(np.asarray(spectra["reduced_chi2"]) > self.config.maxReducedChi2)
        )
        spectra["used"].description = "Measurement counted in the spectrum (flags, edge and fit checks)"
        spectra.sort(["target", "wavelength"])
        # The targets' catalogue entries as columns: in the table's meta they were YAML, whose writing
        # and reading grew to seconds at 10,000 targets.
        index = {str(name): i for i, name in enumerate(targets["name"])}
        rows = np.array([index[str(name)] for name in spectra["target"]], dtype=int)
        for column, source, text in TARGET_COLUMNS:
            values = np.asarray(targets[source])[rows] if len(rows) else np.zeros(0, targets[source].dtype)
            spectra[column] = values.astype(float) if column != "target_kind" else values.astype(str)
            spectra[column].description = text
        spectra["target_ra"].unit = spectra["target_dec"].unit = u.deg
        spectra.meta = {"excluded_flags": sorted(self.config.excludeFlags)}
        self.log.info(
            "Gathered %d measurements (%d used) of %d targets.",
            len(spectra),
            int(np.sum(spectra["used"])),
            len(names),
        )
        return Struct(spectra=spectra)
