"""Reading only the PSF zones a cutout needs from a remote Level-2 file.

A QR1/QR2 ``PSF`` cube is 121 planes of 101 x 101 float32 (4.9 MB), more than half of a 512 x 512 file
and 7% of a full 2040 x 2040 one; a cutout uses the planes of the zones its pixels fall in (IRSA's
recipe: the zone whose centre is nearest).  Remotely, where every byte is paid for, a cutout fetches
those planes only: planes are contiguous in the file, so neighbouring zones (and zones closer than
`~spherex.core.fits.file_reader.REMOTE_MERGE_BYTES`) come in one ranged request, and the requests of
one read are in flight together.  Locally the whole cube is read once per file, as before.
"""

from __future__ import annotations

__all__ = ["RemotePSFZones", "zones_covering"]

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import numpy as np

from ..fits.file_reader import REMOTE_MERGE_BYTES, range_concurrency
from ..fits.pixels import read_into_array
from .psf import Level2PSF, PSFPlanes


def zones_covering(psf: Level2PSF, boxes: Sequence[tuple[slice, ...]]) -> set[int]:
    """Return the planes of ``psf`` whose zones hold any pixel of the boxes (or one pixel beyond).

    Parameters
    ----------
    psf : `Level2PSF`
        The PSF of the whole file (origin of its pixel (0, 0)).
    boxes : `~collections.abc.Sequence` [`tuple` [`slice`, `slice`]]
        Normalized cutouts, rows then columns, in the file's pixels.

    Returns
    -------
    zones : `set` [`int`]
        0-based planes.  Nearest-centre zones of a grid of centres are rectangles, so sampling each box
        (widened by a pixel, for positions fitted just outside it) more finely than half the spacing
        of the centres finds every zone it touches.
    """
    spacing = []
    for centres in (psf.x_centers, psf.y_centers):
        steps = np.diff(np.unique(np.round(centres, 3)))
        spacing.append(float(steps.min()) if steps.size else np.inf)
    stride = max(1, int(min(spacing) // 2))
    zones: set[int] = set()
    for rows, columns in boxes:
        xs = np.unique(np.r_[np.arange(columns.start - 1, columns.stop + 1, stride), columns.stop])
        ys = np.unique(np.r_[np.arange(rows.start - 1, rows.stop + 1, stride), rows.stop])
        found = psf.zone_at(xs[None, :] - psf.origin[0], ys[:, None] - psf.origin[1])
        zones.update(int(z) for z in np.unique(found))
    return zones


class RemotePSFZones:
    """Mixin of `SPHERExLevel2FitsReader`: a remote file's cutouts read only the PSF zones they need.

    Expects the reader's ``_source`` (a stream with ``read_at``, for a remote file), ``_fd``,
    ``path``, ``psf_hdu_name``, ``_plane_hdu``, ``remember``, ``normalize_slices`` and ``_parse_psf_zones``
    (the PSF of the file's zone cards, with an empty `PSFPlanes` cube).
    """

    _zone_planes: dict[int, np.ndarray]

    def _psf_by_zone(self) -> Any:
        """Return the PSF HDU if cutouts should read it zone by zone (a plain cube of a remote file)."""
        source = getattr(self, "_source", None)
        if getattr(self, "_fd", None) is not None or not hasattr(source, "read_at"):
            return None
        hdu = self._plane_hdu(self.psf_hdu_name)  # type: ignore[attr-defined]
        if hdu is None or not hdu.raw_readable or len(hdu.shape) != 3:
            return None
        return hdu

    def read_cutouts(self, boxes: Any) -> list[dict[str, Any]]:  # noqa: D102
        hdu = self._psf_by_zone()
        if hdu is not None:
            try:
                normalized = [self.normalize_slices(box) for box in boxes]  # type: ignore[attr-defined]
            except Exception:
                normalized = None  # the base class reports bad boxes, by name
            if normalized:
                self._load_zones(hdu, normalized)
        return super().read_cutouts(boxes)  # type: ignore[misc]

    def _partial_psf(self, hdu: Any, slices: tuple[slice, ...], origin: tuple[int, int]) -> Level2PSF | None:
        """Return the PSF of a cutout with the planes of its zones only (`PSFPlanes`)."""
        layout = self._zone_layout(hdu)
        self._load_zones(hdu, [slices])
        planes = PSFPlanes(hdu.shape, hdu.dtype, self._zone_planes, self.path)  # type: ignore[attr-defined]
        return replace(layout, cube=planes, origin=origin)

    def _zone_layout(self, hdu: Any) -> Level2PSF:
        return self.remember(f"psf-zones:{hdu.index}", lambda: self._parse_psf_zones(hdu))  # type: ignore[attr-defined]

    def _load_zones(self, hdu: Any, boxes: Sequence[tuple[slice, ...]]) -> None:
        """Fetch the planes of the zones of ``boxes`` not fetched yet, merged into few ranged requests."""
        if not hasattr(self, "_zone_planes"):
            self._zone_planes = {}
        missing = sorted(zones_covering(self._zone_layout(hdu), boxes) - set(self._zone_planes))
        if not missing:
            return
        plane_bytes = hdu.shape[1] * hdu.shape[2] * hdu.dtype.itemsize
        gap = max(REMOTE_MERGE_BYTES // plane_bytes, 0)
        ranges: list[list[int]] = []
        for zone in missing:
            if ranges and zone - ranges[-1][1] <= gap:
                ranges[-1][1] = zone + 1
            else:
                ranges.append([zone, zone + 1])

        def fetch(span: list[int]) -> tuple[int, np.ndarray]:
            block = np.empty((span[1] - span[0], *hdu.shape[1:]), hdu.dtype)
            offset = hdu.data_offset + span[0] * plane_bytes
            read_into_array(self._source, block, offset, self.path, hdu.fits_hdu)  # type: ignore[attr-defined]
            return span[0], block

        workers = min(len(ranges), range_concurrency())
        with ThreadPoolExecutor(workers) as pool:
            for first, block in pool.map(fetch, ranges):
                for k, plane in enumerate(block):
                    if first + k in missing:
                        plane.setflags(write=False)
                        self._zone_planes[first + k] = plane
