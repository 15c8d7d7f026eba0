"""Subtract one SPHEREx image (e.g. the dark calibration) from another."""

from __future__ import annotations

__all__ = ["SubtractConfig", "SubtractConnections", "SubtractTask"]

from typing import Any

import astropy.units as u
import numpy as np
from astropy.nddata import VarianceUncertainty
from lsst.daf.butler import DatasetRef
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

from ..core import SPHERExImage


class SubtractConnections(PipelineTaskConnections, dimensions=("instrument", "exposure", "detector")):
    """Connections of `SubtractTask`: an exposure image, the calibration valid at its time, the result."""

    inputImage = cT.Input(
        doc="Image to subtract from.",
        name="rawexp",
        storageClass="SPHERExImage",
        dimensions=("instrument", "exposure", "detector"),
    )
    subtractImage = cT.PrerequisiteInput(
        doc="Calibration image to subtract, found by its validity range at the exposure's time.",
        name="dark",
        storageClass="SPHERExImage",
        dimensions=("instrument", "detector"),
        isCalibration=True,
    )
    outputImage = cT.Output(
        doc="Difference image.",
        name="postDark",
        storageClass="SPHERExImage",
        dimensions=("instrument", "exposure", "detector"),
    )


class SubtractConfig(PipelineTaskConfig, pipelineConnections=SubtractConnections):
    """Configuration of `SubtractTask` (it has no options of its own)."""


class SubtractTask(PipelineTask):
    """Subtract the second image from the first.

    image = input - subtract; variance = input variance + subtract variance; flags = input flags OR
    subtract flags.  The subtracted image is converted to the input's unit when the units are compatible.
    The output keeps the input's header cards and WCS, with a HISTORY line and ``SUBDSID`` / ``SUBRUN``
    cards naming the subtracted dataset.
    """

    ConfigClass = SubtractConfig
    _DefaultName = "subtract"

    def runQuantum(
        self,
        butlerQC: QuantumContext,
        inputRefs: InputQuantizedConnection,
        outputRefs: OutputQuantizedConnection,
    ) -> None:
        """Read the raw and its dark, subtract, and write ``postDark`` naming the dark's dataset.

        Parameters
        ----------
        butlerQC : `lsst.pipe.base.QuantumContext`
            Butler access for this quantum.
        inputRefs : `lsst.pipe.base.InputQuantizedConnection`
            References of the raw (``inputImage``) and of the dark found by validity range.
        outputRefs : `lsst.pipe.base.OutputQuantizedConnection`
            Reference of the output (``outputImage``).
        """
        inputs = butlerQC.get(inputRefs)
        outputs = self.run(**inputs, subtractRef=inputRefs.subtractImage)
        butlerQC.put(outputs, outputRefs)

    def run(
        self,
        inputImage: SPHERExImage,
        subtractImage: SPHERExImage,
        subtractRef: DatasetRef | None = None,
    ) -> Struct:
        """Subtract ``subtractImage`` from ``inputImage``.

        Parameters
        ----------
        inputImage : `spherex.core.SPHERExImage`
            Image to subtract from.
        subtractImage : `spherex.core.SPHERExImage`
            Image to subtract.
        subtractRef : `lsst.daf.butler.DatasetRef`, optional
            The subtracted dataset, named in the output's header.

        Returns
        -------
        result : `lsst.pipe.base.Struct`
            ``outputImage``: the difference, a `spherex.core.SPHERExImage`.

        Raises
        ------
        ValueError
            Raised if the images have different shapes.
        astropy.units.UnitConversionError
            Raised if the subtracted image's unit cannot be converted to the input's.
        """
        if inputImage.shape != subtractImage.shape:
            raise ValueError(
                f"Cannot subtract {_describe(subtractRef)} of shape {subtractImage.shape} "
                f"from an image of shape {inputImage.shape}."
            )
        try:
            scale = subtractImage.unit.to(inputImage.unit)
        except u.UnitConversionError:
            raise u.UnitConversionError(
                f"Cannot subtract {_describe(subtractRef)} in {subtractImage.unit} from an image in "
                f"{inputImage.unit}: the units are not compatible."
            ) from None

        # FITS stores big-endian pixels; numpy's arithmetic on them goes through a slow buffered cast, so
        # every plane is brought to native byte order once (a plain swap) before any arithmetic.
        subtracted = _native(subtractImage.data)
        if scale != 1.0:
            subtracted = subtracted * scale
        data = np.subtract(_native(inputImage.data), subtracted)
        data = data.astype(_native_dtype(inputImage.data.dtype), copy=False)
        variance = np.add(_variance(inputImage, 1.0), _variance(subtractImage, scale))
        flags = np.bitwise_or(_flags(inputImage), _flags(subtractImage))
        flag_defs = dict(subtractImage.flag_defs or {})
        flag_defs.update(inputImage.flag_defs or {})

        meta = inputImage.meta.copy() if hasattr(inputImage.meta, "copy") else dict(inputImage.meta)
        history = f"Subtracted {_describe(subtractRef)}"
        if subtractRef is not None:
            # A UUID fills 38 of the card's 80 columns: a longer comment would be truncated, with a warning.
            meta["SUBDSID"] = (str(subtractRef.id), "UUID of subtracted dataset")
            meta["SUBRUN"] = (subtractRef.run, "RUN collection of the subtracted image")
        _add_history(meta, history)
        self.log.info("%s.", history)

        output = SPHERExImage(
            data,
            unit=inputImage.unit,
            uncertainty=VarianceUncertainty(variance.astype(np.float32, copy=False)),
            flags=flags,
            flag_defs=flag_defs,
            wcs=inputImage.wcs,
            meta=meta,
        )
        return Struct(outputImage=output)


def _describe(ref: DatasetRef | None) -> str:
    if ref is None:
        return "the second image"
    data_id = ", ".join(f"{k}={v}" for k, v in ref.dataId.required.items())
    return f"{ref.datasetType.name}@{{{data_id}}} from {ref.run}"


def _native_dtype(dtype: np.dtype) -> np.dtype:
    return dtype if dtype.isnative else dtype.newbyteorder("=")


def _native(array: Any) -> np.ndarray:
    """Return ``array`` in native byte order (itself if it already is)."""
    array = np.asarray(array)
    return array if array.dtype.isnative else array.astype(_native_dtype(array.dtype))


def _variance(image: SPHERExImage, scale: float) -> np.ndarray:
    if image.uncertainty is None:
        return np.zeros(image.shape, dtype=np.float32)
    uncertainty = image.uncertainty
    if not isinstance(uncertainty, VarianceUncertainty):
        uncertainty = uncertainty.represent_as(VarianceUncertainty)
    variance = _native(uncertainty.array)
    return variance if scale == 1.0 else variance * scale**2


def _flags(image: SPHERExImage) -> np.ndarray:
    if image.flags is None:
        return np.zeros(image.shape, dtype=np.int32)
    flags = _native(image.flags)
    return flags if flags.dtype == np.int32 else flags.astype(np.int32)


def _add_history(meta: Any, text: str) -> None:
    if hasattr(meta, "add_history"):
        meta.add_history(text)
    else:
        meta.setdefault("HISTORY", [])
        meta["HISTORY"] = [*np.atleast_1d(meta["HISTORY"]).tolist(), text]
