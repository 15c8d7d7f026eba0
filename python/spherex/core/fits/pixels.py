"""Reading the pixels of plain (uncompressed, unscaled) FITS image planes straight from the file."""

from __future__ import annotations

__all__ = [
    "RowBlocks",
    "merge_row_ranges",
    "read_into_array",
    "normalize_slices",
    "prefetch_rows",
    "read_raw_pixels",
]

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from ..errors import FitsLayoutError, SPHERExImageError
from .layout import FitsHdu


def normalize_slices(slices: Any, shape: tuple[int, ...], path: str) -> tuple[slice, ...]:
    """Turn a ``slices`` read parameter into one non-empty, forward slice per axis.

    Parameters
    ----------
    slices : `tuple` [`slice`, ...] or `slice`
        Cutout in numpy (row, column) order.
    shape : `tuple` [`int`, ...]
        Shape of the plane.
    path : `str`
        File name, for messages.

    Returns
    -------
    slices : `tuple` [`slice`, ...]
        One slice per axis with explicit start, stop and step.

    Raises
    ------
    SPHERExImageError
        Raised if ``slices`` is not a tuple of slices, has too many axes, selects no pixels or has a
        step below 1.
    """
    if isinstance(slices, slice):
        slices = (slices,)
    if not isinstance(slices, Sequence) or not all(isinstance(s, slice) for s in slices):
        raise SPHERExImageError(
            f"{path}: the 'slices' parameter must be a tuple of Python slices in numpy (row, column) order, "
            f"not {slices!r}"
        )
    if len(slices) > len(shape):
        raise SPHERExImageError(f"{path}: {len(slices)} slices given for an image of shape {shape}")
    full = tuple(slices) + (slice(None),) * (len(shape) - len(slices))
    result = []
    for axis, (item, n) in enumerate(zip(full, shape, strict=True)):
        if item.step is not None and item.step < 1:
            raise SPHERExImageError(f"{path}: slice {item} on axis {axis} must have a positive step")
        start, stop, step = item.indices(n)
        if stop <= start:
            raise SPHERExImageError(
                f"{path}: slice {item} on axis {axis} selects no pixels of an image of shape {shape}"
            )
        result.append(slice(start, stop, step))
    return tuple(result)


def read_raw_pixels(fd: int | Any, hdu: FitsHdu, slices: tuple[slice, ...] | None, path: str) -> np.ndarray:
    """Read a plane, or the rows of a cutout, with one positioned read into the returned array.

    A whole plane is read in one ``preadv`` into a new array (no copy, no memory map).  A cutout reads
    the contiguous rows it spans, ``rows x row length`` bytes, and nothing else: faulting it in through a
    memory map lets the kernel's read-ahead pull in much more of the file.

    Parameters
    ----------
    fd : `int` or binary stream
        File descriptor open for reading, or a remote file's byte-range stream (`read_into_array`).
    hdu : `FitsHdu`
        The plane; `FitsHdu.raw_readable` must be true.
    slices : `tuple` [`slice`, ...] or `None`
        Normalized cutout (see `normalize_slices`), or `None` for the whole plane.
    path : `str`
        File name, for messages.

    Returns
    -------
    pixels : `numpy.ndarray`
        The pixels in the file's (big-endian) byte order.

    Raises
    ------
    FitsLayoutError
        Raised if the file ends inside the plane (it shrank after it was opened).
    """
    dtype, shape = hdu.dtype, hdu.shape
    if slices is None:
        pixels = np.empty(shape, dtype)
        read_into_array(fd, pixels, hdu.data_offset, path, hdu)
        return pixels
    if len(shape) != 2:
        return read_raw_pixels(fd, hdu, None, path)[slices].copy()
    rows, columns = slices
    width = shape[1]
    offset = hdu.data_offset + rows.start * width * dtype.itemsize
    block = np.empty((rows.stop - rows.start, width), dtype)
    if isinstance(fd, int) and hasattr(os, "posix_fadvise"):
        # The rows are all that is wanted: no read-ahead beyond them from a cold cache.
        os.posix_fadvise(fd, offset, block.nbytes, os.POSIX_FADV_RANDOM)
    read_into_array(fd, block, offset, path, hdu)
    return np.ascontiguousarray(block[:: rows.step, columns])


def prefetch_rows(fd: int, hdus: list[FitsHdu], slices: tuple[slice, ...]) -> None:
    """Ask the kernel to start reading the rows of a cutout of several planes at once.

    The reads that follow then wait for all the planes' rows together, not for each plane in turn: from
    a cold cache the planes' rows come from storage concurrently.  From a warm cache it costs one
    system call per plane.

    Parameters
    ----------
    fd : `int`
        File descriptor open for reading.
    hdus : `list` [`FitsHdu`]
        Plain 2-d planes (`FitsHdu.raw_readable`).
    slices : `tuple` [`slice`, ...]
        Normalized cutout.
    """
    if not hasattr(os, "posix_fadvise") or len(slices) != 2:
        return
    rows = slices[0]
    # No read-ahead beyond what is asked for: the rows are all that is wanted.
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
    for hdu in hdus:
        row_bytes = hdu.shape[1] * hdu.dtype.itemsize
        offset = hdu.data_offset + rows.start * row_bytes
        os.posix_fadvise(fd, offset, (rows.stop - rows.start) * row_bytes, os.POSIX_FADV_WILLNEED)


def read_into_array(source: int | Any, array: np.ndarray, offset: int, path: str, hdu: FitsHdu) -> None:
    """Fill ``array`` with the bytes of a file from ``offset``.

    Parameters
    ----------
    source : `int` or binary stream
        A file descriptor (positioned reads) or a seekable stream with ``readinto`` (a remote file's
        byte-range stream: one ranged request for the whole array).
    array : `numpy.ndarray`
        Contiguous array to fill.
    offset : `int`
        Byte offset in the file.
    path : `str`
        File name, for messages.
    hdu : `FitsHdu`
        The plane read, for messages.

    Raises
    ------
    FitsLayoutError
        Raised if the file ends first.
    """
    view = memoryview(array).cast("B")
    done = 0
    concurrent = hasattr(source, "read_at")
    if not isinstance(source, int) and not concurrent:
        source.seek(offset)
    while done < len(view):
        if isinstance(source, int):
            count = os.preadv(source, [view[done:]], offset + done)
        elif concurrent:
            count = source.read_at(view[done:], offset + done)
        else:
            count = source.readinto(view[done:]) or 0
        if count == 0:
            raise FitsLayoutError(
                path, f"HDU {hdu.index} ({hdu.name or 'unnamed'}) ends inside its data (truncated file)"
            )
        done += count


def merge_row_ranges(boxes: Sequence[tuple[slice, ...]], gap: int = 0) -> list[tuple[int, int]]:
    """Merge the row ranges of cutouts that overlap (or lie within ``gap`` rows of each other).

    Parameters
    ----------
    boxes : `~collections.abc.Sequence` [`tuple` [`slice`, ...]]
        Normalized cutouts (`normalize_slices`) of one 2-d plane.
    gap : `int`, optional
        Ranges fewer than this many rows apart are read as one (one request instead of two).

    Returns
    -------
    ranges : `list` [`tuple` [`int`, `int`]]
        Sorted, disjoint ``(first row, stop row)`` pairs covering every cutout's rows.
    """
    merged: list[list[int]] = []
    for start, stop in sorted((box[0].start, box[0].stop) for box in boxes):
        if merged and start <= merged[-1][1] + gap:
            merged[-1][1] = max(merged[-1][1], stop)
        else:
            merged.append([start, stop])
    return [(start, stop) for start, stop in merged]


class RowBlocks:
    """Full-width row ranges of plain 2-d planes, read once and cut into many cutouts.

    One positioned read per merged row range and plane (`merge_row_ranges`) serves every cutout that
    falls in it: the cutouts of many targets on one image cost a pass over the rows they span, not one
    read each.

    Parameters
    ----------
    read_into : `~collections.abc.Callable` [[`numpy.ndarray`, `int`, `FitsHdu`], `None`]
        Fills an array with the file's bytes from an offset (a positioned read of a local file, or a
        ranged read of a remote one).
    """

    def __init__(self, read_into: Callable[[np.ndarray, int, FitsHdu], None]) -> None:
        self._read_into = read_into
        self._blocks: dict[int, list[tuple[int, np.ndarray]]] = {}

    def load(
        self, planes: Sequence[FitsHdu], ranges: Sequence[tuple[int, int]], concurrency: int = 1
    ) -> None:
        """Read the row ranges of plain 2-d planes (`FitsHdu.raw_readable`).

        Parameters
        ----------
        planes : `~collections.abc.Sequence` [`FitsHdu`]
            The planes.
        ranges : `~collections.abc.Sequence` [`tuple` [`int`, `int`]]
            ``(first row, stop row)`` pairs (`merge_row_ranges`).
        concurrency : `int`, optional
            Reads in flight at once (a remote file: each is a request); 1 reads in file order.
        """
        jobs = []
        for hdu in sorted(planes, key=lambda h: h.data_offset):
            width = hdu.shape[1]
            row_bytes = width * hdu.dtype.itemsize
            blocks = self._blocks.setdefault(hdu.index, [])
            for start, stop in ranges:
                block = np.empty((stop - start, width), hdu.dtype)
                blocks.append((start, block))
                jobs.append((block, hdu.data_offset + start * row_bytes, hdu))
        if concurrency <= 1 or len(jobs) <= 1:
            for job in jobs:
                self._read_into(*job)
            return
        with ThreadPoolExecutor(max_workers=min(concurrency, len(jobs))) as pool:
            for _ in pool.map(lambda job: self._read_into(*job), jobs):
                pass

    def cut(self, hdu: FitsHdu, slices: tuple[slice, ...] | None) -> np.ndarray | None:
        """Return a cutout from the rows read, or `None` if they do not hold it.

        Parameters
        ----------
        hdu : `FitsHdu`
            The plane.
        slices : `tuple` [`slice`, ...] or `None`
            Normalized cutout.

        Returns
        -------
        pixels : `numpy.ndarray` or `None`
            A new array in the file's byte order, as `read_raw_pixels` returns.
        """
        if slices is None or len(slices) != 2:
            return None
        rows, columns = slices
        for start, block in self._blocks.get(hdu.index, ()):
            if start <= rows.start and rows.stop <= start + len(block):
                return np.ascontiguousarray(
                    block[rows.start - start : rows.stop - start : rows.step, columns]
                )
        return None
