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
from matplotlib.collections import PolyCollection  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402


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
    # The dark is small next to the stars, so raw and postDark look alike at any one stretch: the
    # fourth panel shows what the pipeline removed, and every title gives the image's median and spread.
    removed = np.asarray(raw.data, dtype=np.float64) - np.asarray(post.data, dtype=np.float64)

    fig, axes = plt.subplots(2, 2, figsize=(11, 10), constrained_layout=True)
    panels = [
        (raw.data, raw.unit, f"rawexp  exposure={exposure} detector={detector}"),
        (dark.data, dark.unit, f"dark  detector={detector}  ({dark_ref.run})"),
        (post.data, post.unit, f"postDark = rawexp - dark  exposure={exposure} detector={detector}"),
        (removed, raw.unit, "rawexp - postDark: what the pipeline subtracted"),
    ]
    for ax, (data, unit, title) in zip(axes.flat, panels, strict=True):
        vmin, vmax = ZScaleInterval().get_limits(data)
        shown = ax.imshow(data, origin="lower", cmap="gray", vmin=vmin, vmax=vmax)
        ax.set_title(f"{title}\n{_statistics(data)}", fontsize=10)
        ax.set_xlabel("x (pixel)")
        ax.set_ylabel("y (pixel)")
        fig.colorbar(shown, ax=ax, shrink=0.8, label=str(unit))
    fig.suptitle(
        "SPHEREx simulator: dark subtraction by ExamplePipeline\n(zscale stretch; finite-pixel statistics)"
    )
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def _statistics(data: np.ndarray) -> str:
    finite = np.asarray(data, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return "no finite pixels"
    return f"median {np.median(finite):.4g}, std {np.std(finite):.4g}, min {finite.min():.4g}"


def plot_sky_map(butler: Butler, path: Path) -> Path:
    """Draw every exposure's detector footprints and the common-skypix pixels they overlap.

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
    skypix = butler.dimensions.commonSkyPix
    fig, ax = plt.subplots(figsize=(10, 8), constrained_layout=True)
    reference = _vertices_degrees(records[0].region)[0][0] if records else 0.0

    def unwrap(ra: np.ndarray) -> np.ndarray:
        # Around the first footprint, so that fields near RA=0 stay together.
        return reference + (ra - reference + 180.0) % 360.0 - 180.0

    # The registry indexes each footprint by the common-skypix pixels of this envelope.
    pixels: set[int] = set()
    for record in records:
        for begin, end in skypix.pixelization.envelope(record.region):
            pixels.update(range(begin, end))
    outlines = []
    for index in sorted(pixels):
        ra, dec = _vertices_degrees(skypix.pixelization.pixel(index))
        outlines.append(np.column_stack([unwrap(ra), dec]))
    ax.add_collection(PolyCollection(outlines, facecolor="none", edgecolor="0.75", linewidth=0.4, zorder=0))

    for record in records:
        ra, dec = _vertices_degrees(record.region)
        ra = unwrap(ra)
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
    if records:
        # The pixel at the centre of the first footprint: what README step 9 queries with --where.
        first = records[0]
        example = skypix.pixelization.index(first.region.getCentroid())
        ra, dec = _vertices_degrees(skypix.pixelization.pixel(example))
        ax.fill(unwrap(ra), dec, facecolor="none", edgecolor="red", linewidth=1.5, zorder=3)
        ax.annotate(
            f"{skypix.name} = {example}",
            (unwrap(ra).mean(), dec.mean()),
            xytext=(40, -40),
            textcoords="offset points",
            color="red",
            fontsize=8,
            arrowprops={"arrowstyle": "-", "color": "red"},
        )
    handles = [
        Patch(facecolor=c, edgecolor=c, alpha=0.4, label=f"exposure {e}") for e, c in zip(exposures, colours)
    ]
    handles += [
        Line2D([], [], color="k", linestyle="-", label="arrays 1-3 (solid)"),
        Line2D([], [], color="k", linestyle="--", label="arrays 4-6 (dashed, same sky)"),
        Patch(
            facecolor="none",
            edgecolor="0.6",
            label=f"{skypix.name} pixels the registry indexes ({len(pixels)})",
        ),
        Patch(facecolor="none", edgecolor="red", label="pixel at the centre of the first footprint"),
    ]
    ax.legend(handles=handles, loc="upper right", fontsize=8, framealpha=0.9)
    ax.set_xlabel("RA (deg)")
    ax.set_ylabel("Dec (deg)")
    ax.autoscale_view()
    ax.invert_xaxis()
    ax.set_aspect(1.0 / max(np.cos(np.radians(np.mean(ax.get_ylim()))), 0.1))
    ax.set_title(
        f"Detector footprints of {len(exposures)} exposures (label exposure/detector)\n"
        f"and the pixels of the registry's common sky pixelization, HEALPix {skypix.name} (nested)",
        fontsize=10,
    )
    ax.grid(alpha=0.3)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def _vertices_degrees(region) -> tuple[np.ndarray, np.ndarray]:
    points = [LonLat(v) for v in region.getVertices()]
    return (
        np.array([p.getLon().asDegrees() for p in points]),
        np.array([p.getLat().asDegrees() for p in points]),
    )
