"""Pictures of a demo repository: a quick look at one detector, and the footprints on the sky."""

from __future__ import annotations

__all__ = ["plot_quicklook", "plot_sky_map"]

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from astropy.visualization import ZScaleInterval  # noqa: E402
from lsst.daf.butler import Butler  # noqa: E402
from lsst.sphgeom import LonLat  # noqa: E402


def plot_quicklook(butler: Butler, exposure: int, detector: int, collection: str, path: Path) -> Path:
    """Show raw, dark and postDark of one exposure and detector side by side.

    Parameters
    ----------
    butler : `lsst.daf.butler.Butler`
        Repository holding the three datasets.
    exposure, detector : `int`
        Which image.
    collection : `str`
        Collection (e.g. the pipeline's output chain) in which all three are found.
    path : `pathlib.Path`
        PNG file to write.

    Returns
    -------
    path : `pathlib.Path`
        The PNG written.
    """
    data_id = {"instrument": "simulator", "exposure": exposure, "detector": detector}
    post = butler.get("postDark", data_id, collections=collection)
    raw = butler.get("rawexp", data_id, collections=collection)
    (record,) = butler.query_dimension_records("exposure", data_id=data_id)
    dark_ref = butler.find_dataset(
        "dark", collections=collection, timespan=record.timespan, instrument="simulator", detector=detector
    )
    dark = butler.get(dark_ref)

    fig, axes = plt.subplots(1, 3, figsize=(15, 5), constrained_layout=True)
    panels = [
        (raw, f"rawexp  exposure={exposure} detector={detector}"),
        (dark, f"dark  detector={detector}\n{dark_ref.run}"),
        (post, f"postDark  exposure={exposure} detector={detector}"),
    ]
    for ax, (image, title) in zip(axes, panels, strict=True):
        vmin, vmax = ZScaleInterval().get_limits(image.data)
        shown = ax.imshow(image.data, origin="lower", cmap="gray", vmin=vmin, vmax=vmax)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("x (pixel)")
        ax.set_ylabel("y (pixel)")
        fig.colorbar(shown, ax=ax, shrink=0.8, label=str(image.unit))
    fig.suptitle("SPHEREx simulator: dark subtraction by ExamplePipeline (zscale stretch)")
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_sky_map(butler: Butler, path: Path) -> Path:
    """Draw every exposure's detector footprints on an RA/Dec plot.

    Parameters
    ----------
    butler : `lsst.daf.butler.Butler`
        Repository with ``exposure_detector_region`` records.
    path : `pathlib.Path`
        PNG file to write.

    Returns
    -------
    path : `pathlib.Path`
        The PNG written.
    """
    records = butler.query_dimension_records("exposure_detector_region", order_by=["exposure", "detector"])
    exposures = sorted({r.exposure for r in records})
    colours = plt.get_cmap("viridis")(np.linspace(0, 0.9, max(len(exposures), 1)))
    fig, ax = plt.subplots(figsize=(9, 7), constrained_layout=True)
    reference = None
    for record in records:
        ra, dec = _vertices_degrees(record.region)
        if reference is None:
            reference = ra[0]
        # Unwrap RA around the first footprint so that fields near RA=0 stay together.
        ra = reference + (ra - reference + 180.0) % 360.0 - 180.0
        colour = colours[exposures.index(record.exposure)]
        # Arrays 4-6 see the same sky as 1-3 (dichroic): draw them dashed.
        style = "-" if record.detector <= 3 else "--"
        ax.fill(
            np.append(ra, ra[0]),
            np.append(dec, dec[0]),
            facecolor=colour,
            alpha=0.12,
            edgecolor=colour,
            linestyle=style,
        )
        ax.text(
            ra.mean(),
            dec.mean(),
            f"{record.exposure}/D{record.detector}",
            ha="center",
            # Arrays 4-6 lie on 1-3: their labels go under the centre, 1-3's above it.
            va="bottom" if record.detector <= 3 else "top",
            fontsize=7,
            color=colour,
        )
    ax.set_xlabel("RA (deg)")
    ax.set_ylabel("Dec (deg)")
    ax.invert_xaxis()
    ax.set_aspect(1.0 / max(np.cos(np.radians(np.mean(ax.get_ylim()))), 0.1))
    common = butler.dimensions.commonSkyPix.name
    ax.set_title(
        f"Detector footprints of {len(exposures)} exposures (label exposure/detector; "
        f"registry common skypix {common})",
        fontsize=10,
    )
    ax.grid(alpha=0.3)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _vertices_degrees(region) -> tuple[np.ndarray, np.ndarray]:
    points = [LonLat(v) for v in region.getVertices()]
    return (
        np.array([p.getLon().asDegrees() for p in points]),
        np.array([p.getLat().asDegrees() for p in points]),
    )
