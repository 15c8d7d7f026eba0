"""Forced PSF photometry of target positions on SPHEREx Level-2 spectral images.

`ForcedSpectrophotometryTask` runs once per image ({instrument, exposure, detector}) that overlaps a
sky pixel holding targets (``spectroTargets``, see `spherex.script.ingest.targets`).  For every target
that falls on the image it reads only the cutout around it (all of them in one read of the deferred
image's ``cutouts`` component), subtracts the zodiacal light model, and fits the image's own PSF
(`spherex.core.psf_stamp`) at the fixed position plus a constant local background by variance-weighted
linear least squares.  Its output, ``forcedSpectrophotometry``, is an astropy table with one row per
target measured on the image.
`GatherSpectraTask` (in `spherex.tasks.spectrophotometry_gather`) assembles these rows into spectra.
"""

from __future__ import annotations

__all__ = [
    "BLENDED_BIT",
    "MEASUREMENT_COLUMNS",
    "TARGET_SKYPIX",
    "ForcedSpectrophotometryConfig",
    "ForcedSpectrophotometryConnections",
    "ForcedSpectrophotometryTask",
    "fit_psf_flux",
]

import math
from typing import Any

import numpy as np
from astropy.nddata import VarianceUncertainty
from astropy.table import Table, vstack
from lsst.daf.butler import DeferredDatasetHandle
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

from ..core import SPHERExLevel2Image
from ..core.photometry.joint_fit import fit_joint_psf_fluxes, fit_psf_flux, neighbour_design
from ..core.photometry.psf_model import mjy_per_sr_to_microjansky, pixel_solid_angle, psf_stamp
from ..core.photometry.target_motion import is_moving, normalise_catalogue, positions_at
from .catalogue_cache import TARGET_CATALOGUES
from .measurement_table import BLENDED_BIT, MEASUREMENT_COLUMNS, _flag_names, _measurement_table

TARGET_SKYPIX = "healpix7"
"""Sky pixel dimension of the ``spectroTargets`` catalogues: the common skypix of universe version 3,
the only level daf_butler can relate to the images' footprints."""


class ForcedSpectrophotometryConnections(
    PipelineTaskConnections, dimensions=("instrument", "exposure", "detector")
):
    """Connections of `ForcedSpectrophotometryTask`: a Level-2 image, the targets near it, the table."""

    image = cT.Input(
        doc="Level-2 spectral image; read as cutouts around the targets only.",
        name="spectralImage",
        storageClass="SPHERExLevel2Image",
        dimensions=("instrument", "exposure", "detector"),
        deferLoad=True,
    )
    targets = cT.Input(
        doc="Target catalogues of the common sky pixels that overlap the image.",
        name="spectroTargets",
        storageClass="ArrowAstropy",
        dimensions=(TARGET_SKYPIX,),
        multiple=True,
    )
    measurements = cT.Output(
        doc="One row per target on the image: forced PSF flux (microJy) at the pixel's wavelength.",
        name="forcedSpectrophotometry",
        storageClass="ArrowAstropy",
        dimensions=("instrument", "exposure", "detector"),
    )


class ForcedSpectrophotometryConfig(
    PipelineTaskConfig, pipelineConnections=ForcedSpectrophotometryConnections
):
    """Configuration of `ForcedSpectrophotometryTask`."""

    cutoutHalfSize = Field[int](
        doc="Half size (pixels) of the fitted box: (2 h + 1)^2 pixels around the target's pixel.",
        default=5,
        check=lambda value: 1 <= value <= 50,
    )
    cutoutTileSize = Field[int](
        doc="Targets in the same tile of this many pixels are measured on one cutout (fewer reads).",
        default=256,
        check=lambda value: value >= 1,
    )
    coreFraction = Field[float](
        doc="Pixels whose PSF value is at least this fraction of the peak form the PSF core (flags).",
        default=0.1,
        check=lambda value: 0.0 < value <= 1.0,
    )
    minNeighbourFraction = Field[float](
        doc="A catalogue neighbour is fitted with a target if this much of its PSF is in the target's box.",
        default=0.02,
        check=lambda value: 0.0 <= value <= 1.0,
    )
    neighbourRadius = Field[float](
        doc="Catalogue sources within this many pixels of a target are counted in its 'n_neighbours'.",
        default=2.0,
        check=lambda value: value >= 0.0,
    )
    fitMaskFlags = ListField[str](
        doc="FLAGS bits whose pixels are left out of the fit (still reported in 'flags').",
        default=["OVERFLOW", "SUR_ERROR", "NONFUNC", "MISSING_DATA", "HOT", "COLD", "PHANMISS"],
    )


class ForcedSpectrophotometryTask(PipelineTask):
    """Measure forced PSF fluxes of targets on one Level-2 spectral image.

    Only cutouts around the targets are read, all in one read of the image's ``cutouts`` component
    (one pass over the rows they span), plus the WCS: from a POSIX datastore by positioned reads, from
    S3 or HTTP by range requests.
    """

    ConfigClass = ForcedSpectrophotometryConfig
    _DefaultName = "forcedSpectrophotometry"
    config: ForcedSpectrophotometryConfig

    def runQuantum(
        self,
        butlerQC: QuantumContext,
        inputRefs: InputQuantizedConnection,
        outputRefs: OutputQuantizedConnection,
    ) -> None:
        """Read the targets and the image's WCS, measure every target on it, write the table.

        Parameters
        ----------
        butlerQC : `lsst.pipe.base.QuantumContext`
            Butler access for this quantum.
        inputRefs : `lsst.pipe.base.InputQuantizedConnection`
            The image (deferred) and the target catalogues.
        outputRefs : `lsst.pipe.base.OutputQuantizedConnection`
            The measurement table.
        """
        data_id = butlerQC.quantum.dataId
        outputs = self.run(
            image=butlerQC.get(inputRefs.image),
            targets=TARGET_CATALOGUES.get(butlerQC, inputRefs.targets),
            exposure=int(data_id["exposure"]),
            detector=int(data_id["detector"]),
        )
        butlerQC.put(outputs, outputRefs)

    def run(
        self,
        image: DeferredDatasetHandle | SPHERExLevel2Image,
        targets: list[Table],
        exposure: int,
        detector: int,
    ) -> Struct:
        """Measure every target that falls on an image.

        Parameters
        ----------
        image : `lsst.daf.butler.DeferredDatasetHandle` or `~spherex.core.SPHERExLevel2Image`
            The image; a handle is read only as the WCS and one cutout per group of nearby targets.
        targets : `list` [`astropy.table.Table`]
            Target catalogues (columns ``name``, ``ra``, ``dec``).
        exposure, detector : `int`
            Data ID values written in the table.

        Returns
        -------
        result : `lsst.pipe.base.Struct`
            ``measurements``: `astropy.table.Table` with `MEASUREMENT_COLUMNS`, one row per target whose
            position is on the image (zero rows if none is).
        """
        read = _reader(image)
        wcs = read(component="wcs")
        n_rows, n_columns = wcs.array_shape
        catalogue = normalise_catalogue(
            vstack(targets, metadata_conflicts="silent") if targets else Table(names=["name", "ra", "dec"])
        )
        # A moving source is put where it was at the image's mid-time: one more header read, only then.
        mjd = _mjd(read(component="metadata")) if len(catalogue) and is_moving(catalogue) else math.nan
        ra, dec = positions_at(catalogue, mjd)
        x, y = (np.atleast_1d(v) for v in wcs.world_to_pixel_values(ra, dec))
        finite = np.isfinite(x) & np.isfinite(y)
        on_image = finite & (x >= -0.5) & (x < n_columns - 0.5) & (y >= -0.5) & (y < n_rows - 0.5)
        indices = np.flatnonzero(on_image & (np.asarray(catalogue["role"]) != "reference"))
        solid_angle = pixel_solid_angle(wcs, x[indices], y[indices]) if len(indices) else np.array([])
        half = self.config.cutoutHalfSize
        records = []
        groups = self.group_targets(x[indices], y[indices], (n_rows, n_columns))
        origins, boxes = [], []
        for group in groups:
            columns = np.round(x[indices][group]).astype(int)
            rows = np.round(y[indices][group]).astype(int)
            x0, y0 = max(int(columns.min()) - half, 0), max(int(rows.min()) - half, 0)
            origins.append((x0, y0))
            boxes.append(
                (
                    slice(y0, min(int(rows.max()) + half + 1, n_rows)),
                    slice(x0, min(int(columns.max()) + half + 1, n_columns)),
                )
            )
        # Every cutout of the image from one pass over the rows they span.
        cutouts = read(component="cutouts", parameters={"boxes": boxes}) if boxes else []
        sources = np.flatnonzero(finite)
        for group, (x0, y0), box, cutout in zip(groups, origins, boxes, cutouts, strict=True):
            wanted = np.searchsorted(sources, indices[group])
            fits = self.measure_cutout(cutout, x[sources] - x0, y[sources] - y0, box, wanted)
            for i, fit in zip(group, fits, strict=True):
                index = indices[i]
                xi, yi = float(x[index]), float(y[index])
                wavelength, bandwidth = cutout.wavelength_at(xi - x0, yi - y0)
                records.append(
                    (
                        str(catalogue["name"][index]), exposure, detector, xi, yi, float(wavelength),
                        float(bandwidth), float(mjy_per_sr_to_microjansky(fit.amplitude, solid_angle[i])),
                        float(mjy_per_sr_to_microjansky(fit.amplitude_err, solid_angle[i])), fit.background,
                        fit.flags, _flag_names(fit.flags, cutout.flag_defs), fit.psf_fraction, fit.n_pixels,
                        _mjd(cutout.meta), float(ra[index]), float(dec[index]), fit.reduced_chi2,
                        fit.n_neighbours,
                    )
                )  # fmt: skip
        records.sort(key=lambda record: record[0])
        table = _measurement_table(records)
        self.log.info(
            "Measured %d of %d targets on exposure %d detector %d.",
            len(records),
            int(np.sum(np.asarray(catalogue["role"]) != "reference")),
            exposure,
            detector,
        )
        return Struct(measurements=table)

    def group_targets(self, x: np.ndarray, y: np.ndarray, shape: tuple[int, int]) -> list[np.ndarray]:
        """Group targets that share a cutout: those in the same tile of ``cutoutTileSize`` pixels.

        Parameters
        ----------
        x, y : `numpy.ndarray`
            0-based pixel positions of the targets on the image.
        shape : `tuple` [`int`, `int`]
            Image shape (rows, columns).

        Returns
        -------
        groups : `list` [`numpy.ndarray`]
            Indices into ``x`` and ``y``, one array per cutout to read.  Each read costs a fixed time
            (headers, WCS, PSF) plus its pixels, so nearby targets are read together; the cutout of a
            group spans at most a tile plus the fit box.
        """
        tile = self.config.cutoutTileSize
        if len(x) == 0:
            return []
        keys = (np.round(y).astype(int) // tile) * (shape[1] // tile + 1) + np.round(x).astype(int) // tile
        order = np.argsort(keys, kind="stable")
        boundaries = np.flatnonzero(np.diff(keys[order])) + 1
        return np.split(order, boundaries)

    def measure_cutout(
        self,
        cutout: SPHERExLevel2Image,
        x: np.ndarray,
        y: np.ndarray,
        box: tuple[slice, slice],
        targets: np.ndarray,
    ) -> list[Struct]:
        """Fit every target of a cutout jointly with the catalogue sources whose PSF reaches its box.

        Parameters
        ----------
        cutout : `~spherex.core.SPHERExLevel2Image`
            The cutout, with its zodi plane, variance, flags and PSF.
        x, y : `numpy.ndarray`
            0-based positions in the cutout of every catalogue source (targets and references).
        box : `tuple` [`slice`, `slice`]
            The cutout's box in the image (rows, columns), to pick the sources that reach it.
        targets : `numpy.ndarray`
            Indices into ``x`` and ``y`` of the targets to measure (sources on the cutout).

        Returns
        -------
        fits : `list` [`lsst.pipe.base.Struct`]
            One per target, as `fit_joint_psf_fluxes`, plus ``flags`` (OR of the flag bits under the
            PSF core, and `BLENDED_BIT` when a catalogue neighbour lies on a core pixel) and
            ``n_neighbours`` (catalogue sources within ``neighbourRadius`` pixels).
        """
        planes = self.fit_planes(cutout)
        half = self.config.cutoutHalfSize
        rows, columns = box[0].stop - box[0].start, box[1].stop - box[1].start
        near = (x >= -half - 0.5) & (x < columns + half - 0.5) & (y >= -half - 0.5) & (y < rows + half - 0.5)
        members = np.flatnonzero(near)
        mx, my = x[members], y[members]
        placed = [psf_stamp(cutout, float(a), float(b), half) for a, b in zip(mx, my, strict=True)]
        stamps = [p[0] for p in placed]
        bboxes = [p[1] for p in placed]
        fits = []
        for m in np.searchsorted(members, targets):
            stamp, bbox = stamps[m], bboxes[m]
            dx, dy = mx - mx[m], my - my[m]
            reach = np.flatnonzero((np.abs(dx) <= 2 * half + 1) & (np.abs(dy) <= 2 * half + 1))
            reach = reach[reach != m]
            design, kept = neighbour_design(bbox, stamps, bboxes, reach, self.config.minNeighbourFraction)
            flags = planes.flags[bbox]
            fit = fit_joint_psf_fluxes(
                planes.data[bbox],
                planes.variance[bbox],
                np.concatenate([stamp[None], design]),
                (flags & planes.mask_bits) == 0,
            )
            core = stamp >= self.config.coreFraction * stamp.max() if stamp.size else stamp.astype(bool)
            fit.flags = int(np.bitwise_or.reduce(flags[core], initial=0))
            distance = np.hypot(dx[reach], dy[reach])
            fit.n_neighbours = int(np.sum(distance <= self.config.neighbourRadius))
            # BLENDED: a catalogue neighbour's pixel is a pixel of the target's PSF core.
            for j in reach:
                r = round(float(my[j])) - bbox[0].start
                c = round(float(mx[j])) - bbox[1].start
                if 0 <= r < core.shape[0] and 0 <= c < core.shape[1] and core[r, c]:
                    fit.flags |= 1 << BLENDED_BIT
                    break
            fits.append(fit)
        return fits

    def fit_planes(self, cutout: SPHERExLevel2Image) -> Struct:
        """Return what the fits read from a cutout: zodi-subtracted data, variance, flags, mask bits.

        Parameters
        ----------
        cutout : `~spherex.core.SPHERExLevel2Image`
            The cutout.

        Returns
        -------
        planes : `lsst.pipe.base.Struct`
            ``data`` (image - zodi), ``variance`` (float64), ``flags`` (int64) and ``mask_bits`` (the
            bits of ``fitMaskFlags`` in this image's flag definitions).
        """
        data = np.asarray(cutout.data, dtype=float)
        if cutout.zodi is not None:
            data = data - np.asarray(cutout.zodi, dtype=float)
        variance = np.asarray(cutout.uncertainty.represent_as(VarianceUncertainty).array, dtype=float)
        flags = np.zeros(data.shape, np.int64) if cutout.flags is None else np.asarray(cutout.flags, np.int64)
        return Struct(
            data=data,
            variance=variance,
            flags=flags,
            mask_bits=_bits(cutout.flag_defs, self.config.fitMaskFlags),
        )


def _reader(image: DeferredDatasetHandle | SPHERExLevel2Image) -> Any:
    """Return ``read(component=..., parameters=...)`` for a deferred handle or an in-memory image.

    ``component="cutouts"`` with ``parameters={"boxes": [...]}`` returns a list of cutouts: read in one
    pass where the storage class has that component, else (repositories made before it) one ``slices``
    read per box.
    """
    if isinstance(image, DeferredDatasetHandle):
        if "cutouts" in image.ref.datasetType.storageClass.derivedComponents:
            return image.get

        def read_by_slices(component: str | None = None, parameters: dict[str, Any] | None = None) -> Any:
            if component == "cutouts":
                return [image.get(parameters={"slices": box}) for box in (parameters or {})["boxes"]]
            return image.get(component=component, parameters=parameters)

        return read_by_slices

    def read(component: str | None = None, parameters: dict[str, Any] | None = None) -> Any:
        if component == "wcs":
            wcs = image.wcs.deepcopy()
            wcs.array_shape = np.shape(image.data)
            return wcs
        if component == "cutouts":
            return [image[box] for box in (parameters or {})["boxes"]]
        if component == "metadata":
            return image.meta
        return image[parameters["slices"]] if parameters else image

    return read


def _bits(flag_defs: dict[str, int] | None, names: list[str]) -> int:
    defs = flag_defs or {}
    return sum(1 << defs[name] for name in set(names) if name in defs)


def _mjd(meta: Any) -> float:
    value = meta.get("MJD-AVG", math.nan) if meta is not None else math.nan
    if isinstance(value, tuple):
        value = value[0]
    return float(value)
