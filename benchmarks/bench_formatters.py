"""Benchmark SPHERExImage I/O through the Butler against plain astropy on the same HDUs.

Run::

    python benchmarks/bench_formatters.py [--size 2040] [--repeat 7] [--cutout 256]

Every figure is the median of ``--repeat`` runs, and every ratio uses a baseline measured in the same
run, alternating with the measured operation.  Reads are timed with the file in the page cache (warm)
and evicted from it (cold).

Targets (issues 3 and 15):

* ``put`` / ``get`` of a whole image through the Butler within 1.2x of astropy writing / reading the
  same HDUs (``HDUList.writeto``; ``fits.open`` and reading every plane into memory, and the WCS);
* reading the ``variance`` component below 0.5x of a full ``get``;
* a ``--cutout`` square read with the ``slices`` parameter at most 0.2x of a full ``get`` warm, 0.25x
  cold.

Gets use a `~lsst.daf.butler.DatasetRef` found with its datastore records, as a pipeline's quantum
holds them; the cost of a get by data ID (the registry look-ups a ref with records saves) is printed
separately, measured on a 4x4 image.  The reader caches each file's header scan and parsed WCS (keyed
by path, inode, size and times); the ``first`` rows clear that cache and evict the file before every
read, so they show a file read for the first time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.nddata import VarianceUncertainty
from astropy.wcs import WCS, WCSHDO_P17, WCSHDO_all
from astropy.wcs.wcs import WCSHDO_SIP
from lsst.daf.butler import Butler, DatasetType
from lsst.daf.butler.script import createRepo

from spherex.core import LEVEL2_FLAG_BITS, SPHERExImage, clear_layout_cache
from spherex.instrument import SimulatorInstrument

SEED_CONFIG = "resource://spherex/configs/butler.yaml"
DIMENSION_CONFIG = "resource://spherex/configs/dimensions.yaml"
RUN = "bench"


def make_image(size: int) -> SPHERExImage:
    """Return a SPHEREx-sized image: float32 image and variance, int32 flags, TAN WCS, metadata."""
    rng = np.random.default_rng(42)
    shape = (size, size)
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [150.0, 2.0]
    wcs.wcs.crpix = [size / 2 + 0.5, size / 2 + 0.5]
    wcs.wcs.cdelt = [-6.15 / 3600, 6.15 / 3600]
    flags = np.where(rng.random(shape) < 0.01, np.int32(1 << LEVEL2_FLAG_BITS["HOT"]), np.int32(0))
    return SPHERExImage(
        rng.normal(1.0, 0.1, size=shape).astype(np.float32),
        unit="MJy/sr",
        uncertainty=VarianceUncertainty(rng.uniform(0.01, 0.02, size=shape).astype(np.float32)),
        flags=flags,
        flag_defs=LEVEL2_FLAG_BITS,
        wcs=wcs,
        meta={"DATE-OBS": "2025-05-01T00:00:00.000", "EXPTIME": 112.0, "OBSID": "bench", "DETECTOR": 1},
    )


def plain_hdulist(image: SPHERExImage) -> fits.HDUList:
    """Build, with astropy alone, the HDUs the formatter writes (the files are compared byte for byte)."""
    primary = fits.PrimaryHDU()
    for key, value in image.meta.items():
        primary.header[key] = value
    wcs_cards = image.wcs.to_header(relax=WCSHDO_all | WCSHDO_P17 | WCSHDO_SIP).cards
    image_header = fits.Header([("BUNIT", "MJy sr-1", "Unit of the image"), *wcs_cards])
    flags_header = fits.Header([("EXTTYPE", "MASK", "bitmask; MP_<NAME> = bit name the flags")])
    for name, bit in image.flag_defs.items():
        flags_header.append((f"HIERARCH MP_{name}" if len(name) > 5 else f"MP_{name}", bit))
    variance_header = fits.Header([("BUNIT", "MJy2 sr-2", "Unit of the variance")])
    return fits.HDUList(
        [
            primary,
            fits.ImageHDU(image.data, image_header, name="IMAGE"),
            fits.ImageHDU(image.flags, flags_header, name="FLAGS"),
            fits.ImageHDU(image.uncertainty.array, variance_header, name="VARIANCE"),
        ]
    )


def plain_read(path: Path) -> tuple[list[fits.Header], list[np.ndarray], WCS]:
    """Read every header and every plane into memory, and the image WCS, with astropy alone.

    The WCS is part of what a ``get`` returns, so the baseline parses it too (about 2 ms with SIP).
    """
    with fits.open(path, memmap=False) as hdul:
        return [hdu.header for hdu in hdul], [hdu.data for hdu in hdul[1:]], WCS(hdul["IMAGE"].header)


def evict(path: Path) -> None:
    """Drop ``path`` from the page cache (flushing it first) so that the next read comes from storage."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def interleaved(
    baseline: Callable[[], object],
    measured: Callable[[], object],
    repeat: int,
    prepare: Callable[[], None] = lambda: None,
) -> tuple[float, float]:
    """Return the median times of two operations run alternately ``repeat`` times (after a warm-up).

    ``prepare`` runs, untimed, before every timed call (e.g. to evict files from the page cache).
    """
    baseline()
    measured()
    base_times, times = [], []
    for _ in range(repeat):
        for function, store in ((baseline, base_times), (measured, times)):
            prepare()
            start = time.perf_counter()
            function()
            store.append(time.perf_counter() - start)
    return statistics.median(base_times), statistics.median(times)


def make_butler(root: Path, n_exposures: int) -> Butler:
    """Create a repository with the simulator instrument, ``rawexp`` and ``n_exposures`` exposures."""
    createRepo(str(root), seed_config=SEED_CONFIG, dimension_config=DIMENSION_CONFIG, override=True)
    butler = Butler.from_config(str(root), writeable=True, run=RUN)
    SimulatorInstrument().register(butler.registry)
    butler.registry.registerDatasetType(
        DatasetType(
            "rawexp", ("instrument", "exposure", "detector"), "SPHERExImage", universe=butler.dimensions
        )
    )
    butler.registry.insertDimensionData(
        "exposure",
        *[
            {"instrument": "simulator", "id": i, "obs_id": f"bench{i}", "group_name": "bench"}
            for i in range(n_exposures)
        ],
    )
    return butler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=2040, help="image side in pixels (default 2040)")
    parser.add_argument("--repeat", type=int, default=11, help="repetitions per figure (default 11)")
    parser.add_argument("--cutout", type=int, default=256, help="cutout side in pixels (default 256)")
    args = parser.parse_args(argv)

    image = make_image(args.size)
    # (operation, page cache, baseline, baseline seconds, seconds, target ratio)
    rows: list[tuple[str, str, str, float, float, float]] = []
    with tempfile.TemporaryDirectory(prefix="bench_formatters_") as tmp:
        root = Path(tmp)
        puts = iter(range(1, 10**6))
        with make_butler(root / "DATA", 2 * args.repeat + 10) as butler:

            def data_id(exposure: int) -> dict[str, object]:
                return {"instrument": "simulator", "exposure": exposure, "detector": 1}

            # -- write ------------------------------------------------------------------------------
            # A new file every time, as a put writes: overwriting one file would let the kernel drop
            # the previous copy's dirty pages unwritten, which no repository can do (3-4x faster here).
            plain_paths = (root / f"plain{i}.fits" for i in range(10**6))
            plain_path = root / "plain.fits"

            def plain_write() -> None:
                plain_hdulist(image).writeto(next(plain_paths))

            def butler_put() -> None:
                butler.put(image, "rawexp", data_id(next(puts)))

            base, measured = interleaved(plain_write, butler_put, args.repeat)
            rows.append(("put", "-", "astropy HDUList.writeto", base, measured, 1.2))

            plain_hdulist(image).writeto(plain_path)
            # With its datastore records, as a quantum's refs are: the get then asks the registry nothing.
            ref = butler.find_dataset("rawexp", data_id(1), collections=RUN, datastore_records=True)
            assert ref is not None and ref._datastore_records
            stored = Path(butler.getURI(ref).ospath)
            # Like is compared with like: astropy alone wrote the very bytes the formatter wrote.
            if stored.read_bytes() != plain_path.read_bytes():
                raise RuntimeError(f"{plain_path} differs from {stored}: the baseline is not the same HDUs")
            size_mib = stored.stat().st_size / 2**20

            # -- read -------------------------------------------------------------------------------
            start = args.size // 2 - args.cutout // 2
            slices = (slice(start, start + args.cutout), slice(start, start + args.cutout))

            def butler_get() -> None:
                butler.get(ref)

            def get_variance() -> None:
                butler.get(ref.makeComponentRef("variance"))

            def get_cutout() -> None:
                butler.get(ref, parameters={"slices": slices})

            def first_read() -> None:
                clear_layout_cache()
                evict(stored)

            cutout_name = f"get slices {args.cutout}x{args.cutout}"
            for cache, prepare in (
                ("warm", lambda: None),
                ("cold", lambda: evict(stored)),
                ("first", first_read),
            ):
                base, full = interleaved(lambda: plain_read(stored), butler_get, args.repeat, prepare)
                rows.append(("get", cache, "astropy open+data+WCS", base, full, 1.2))
                if cache == "first":
                    full_again, cutout = interleaved(butler_get, get_cutout, args.repeat, prepare)
                    rows.append((cutout_name, cache, "full butler.get", full_again, cutout, 0.25))
                    continue
                full_again, component = interleaved(butler_get, get_variance, args.repeat, prepare)
                rows.append(("get rawexp.variance", cache, "full butler.get", full_again, component, 0.5))
                full_again, cutout = interleaved(butler_get, get_cutout, args.repeat, prepare)
                target = 0.2 if cache == "warm" else 0.25
                rows.append((cutout_name, cache, "full butler.get", full_again, cutout, target))

            # The Butler's own cost per call, and what a get by data ID adds (registry look-ups).
            tiny = SPHERExImage(np.zeros((4, 4), dtype=np.float32))
            tiny_put = statistics.median(
                _timed(lambda: butler.put(tiny, "rawexp", data_id(next(puts)))) for _ in range(args.repeat)
            )
            tiny_id = data_id(next(puts))
            butler.put(tiny, "rawexp", tiny_id)
            tiny_ref = butler.find_dataset("rawexp", tiny_id, collections=RUN, datastore_records=True)
            by_ref, by_id = interleaved(
                lambda: butler.get(tiny_ref), lambda: butler.get("rawexp", tiny_id), args.repeat
            )

    print(
        f"SPHERExImage {args.size}x{args.size} (float32 image + variance, int32 flags, {size_mib:.1f} MiB); "
        f"median of {args.repeat}; 'cold' = file evicted from the page cache before each read"
    )
    print(
        f"{'operation':<22} {'cache':<5} {'baseline':<26} {'base ms':>8} {'ms':>8} {'ratio':>6} "
        f"{'target':>7}  result"
    )
    failed = False
    for name, cache, baseline_name, base, value, target in rows:
        ratio = value / base
        ok = ratio <= target
        failed |= not ok
        print(
            f"{name:<22} {cache:<5} {baseline_name:<26} {base * 1e3:8.1f} {value * 1e3:8.1f} {ratio:6.2f} "
            f"{'<=' + str(target):>7}  {'ok' if ok else 'MISSED'}"
        )
    print(
        f"Butler cost per call on a 4x4 image: put {tiny_put * 1e3:.1f} ms, get by ref with datastore "
        f"records {by_ref * 1e3:.1f} ms, get by data ID {by_id * 1e3:.1f} ms "
        f"(+{(by_id - by_ref) * 1e3:.1f} ms)"
    )
    print(
        "'warm': file in the page cache; 'cold': evicted before each read; 'first': evicted and the "
        "reader's per-file header cache cleared"
    )
    return 1 if failed else 0


def _timed(function: Callable[[], object]) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


if __name__ == "__main__":
    sys.exit(main())
