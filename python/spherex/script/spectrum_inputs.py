"""The images of a ``spherex-spectrum`` run: their headers read ahead, and every one of them measured.

pipe_base skips a quantum whose input the datastore cannot confirm (``NoWorkFound``): for an archive
that answers 502 under load, or a file removed since it was registered, the targets on that image would
silently lose their measurements.  `check_images_measured` turns such a skip into an error naming the
image and why it cannot be read.
"""

from __future__ import annotations

__all__ = ["MissingImageError", "check_images_measured", "prefetch_remote_headers"]

from typing import Any

from lsst.daf.butler import Butler

from ..core.errors import RemoteReadError

IMAGE_DATASET = "spectralImage"
MEASUREMENT_DATASET = "forcedSpectrophotometry"


class MissingImageError(OSError):
    """Images of a run could not be read, so the measurements on them are missing."""


def prefetch_remote_headers(butler: Butler, executor: Any) -> int:
    """Read the headers of the run's remote images several at once (`spherex.archive.prefetch`).

    Returns
    -------
    count : `int`
        Remote images read ahead.
    """
    from ..archive.prefetch import prefetch_headers

    images = executor.predicted.datasets_by_type.get(IMAGE_DATASET, {})
    uris = [butler.getURI(IMAGE_DATASET, data_id) for data_id in images]
    return prefetch_headers(uris) if any(not uri.isLocal for uri in uris) else 0


def _why_unreadable(butler: Butler, data_id: Any) -> str:
    from ..formatters.range_reads import open_byte_ranges

    uri = butler.getURI(IMAGE_DATASET, data_id)
    try:
        if uri.isLocal:
            with open(uri.ospath, "rb") as stream:
                stream.read(1)
        else:
            with open_byte_ranges(uri) as stream:
                stream.pread(1, 0)
    except (RemoteReadError, OSError) as err:
        text = str(err)
        return text if str(uri) in text else f"{uri}: {text}"
    return f"{uri}: not measured (pipe_base skipped its quantum; run with --log-level DEBUG to see why)"


def check_images_measured(butler: Butler, executor: Any, run: str) -> None:
    """Raise if a predicted measurement of the run is missing because its image could not be read.

    Parameters
    ----------
    butler : `lsst.daf.butler.Butler`
        The run's Butler (its collections hold the images).
    executor : `lsst.pipe.base.simple_pipeline_executor.SimplePipelineExecutor`
        The executor, after ``run``.
    run : `str`
        The output RUN collection.

    Raises
    ------
    MissingImageError
        Raised naming the first image that cannot be read and the problem, and how many are missing.
    """
    predicted = executor.predicted.datasets_by_type.get(MEASUREMENT_DATASET, {})
    missing = [
        data_id
        for data_id in predicted
        if butler.find_dataset(MEASUREMENT_DATASET, data_id, collections=run) is None
    ]
    if missing:
        first = _why_unreadable(butler, missing[0])
        raise MissingImageError(
            f"{len(missing)} of {len(predicted)} image(s) could not be read, so the targets on them were "
            f"not measured (nothing was kept); first: {first}"
        )
