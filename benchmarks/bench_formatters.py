"""Benchmark SPHERExImage I/O through the Butler against plain astropy on the same HDUs.

Run::

    python benchmarks/bench_formatters.py [--size 2040] [--repeat 7] [--cutout 256]

Every figure is the median of ``--repeat`` runs, and every ratio uses a baseline measured in the same
run, alternating with the measured operation.  Files are read from the page cache (both sides alike).

Targets (issue 3):

* ``put`` / ``get`` of a whole image through the Butler within 1.2x of astropy writing / reading the
  same HDUs (``HDUList.writeto``; ``fits.open`` and reading every plane into memory);
* reading the ``variance`` component below 0.5x of a full ``get``;
* a ``--cutout`` square read with the ``slices`` parameter below 0.1x of a full ``get``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.nddata import VarianceUncertainty
from astropy.wcs import WCS
from lsst.daf.butler import Butler, DatasetType
from lsst.daf.butler.script import createRepo

from spherex.core import LEVEL2_FLAG_BITS, SPHERExImage
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
    """Build the same HDUs with astropy alone (what a script without the package would write)."""
    primary = fits.PrimaryHDU()
    for key, value in image.meta.items():
        primary.header[key] = value
    image_header = image.wcs.to_header()
    image_header["BUNIT"] = "MJy sr-1"
    flags_header = fits.Header([("EXTTYPE", "MASK")])
    for name, bit in image.flag_defs.items():
        flags_header[f"HIERARCH MP_{name}"] = bit
    return fits.HDUList(
        [
            primary,
            fits.ImageHDU(image.data, image_header, name="IMAGE"),
            fits.ImageHDU(image.flags, flags_header, name="FLAGS"),
            fits.ImageHDU(image.uncertainty.array, fits.Header([("BUNIT", "MJy2 sr-2")]), name="VARIANCE"),
        ]
    )


def plain_read(path: Path) -> tuple[list[fits.Header], list[np.ndarray]]:
    """Read every header and every plane into memory with astropy alone."""
    with fits.open(path, memmap=False) as hdul:
        return [hdu.header for hdu in hdul], [hdu.data for hdu in hdul[1:]]


def median_seconds(function: Callable[[int], object], repeat: int, offset: int = 0) -> float:
    times = []
    for i in range(repeat):
        start = time.perf_counter()
        function(offset + i)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def interleaved(
    baseline: Callable[[int], object], measured: Callable[[int], object], repeat: int
) -> tuple[float, float]:
    """Return the median times of two operations run alternately ``repeat`` times (after a warm-up)."""
    baseline(-1)
    measured(-1)
    base_times, times = [], []
    for i in range(repeat):
        for function, store in ((baseline, base_times), (measured, times)):
            start = time.perf_counter()
            function(i)
            store.append(time.perf_counter() - start)
    return statistics.median(base_times), statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=2040, help="image side in pixels (default 2040)")
    parser.add_argument("--repeat", type=int, default=7, help="repetitions per figure (default 7)")
    parser.add_argument("--cutout", type=int, default=256, help="cutout side in pixels (default 256)")
    args = parser.parse_args(argv)

    image = make_image(args.size)
    rows: list[tuple[str, float, float, str, float]] = []
    with tempfile.TemporaryDirectory(prefix="bench_formatters_") as tmp:
        root = Path(tmp)
        createRepo(
            str(root / "DATA"), seed_config=SEED_CONFIG, dimension_config=DIMENSION_CONFIG, override=True
        )
        with Butler.from_config(str(root / "DATA"), writeable=True, run=RUN) as butler:
            SimulatorInstrument().register(butler.registry)
            dataset_type = DatasetType(
                "rawexp", ("instrument", "exposure", "detector"), "SPHERExImage", universe=butler.dimensions
            )
            butler.registry.registerDatasetType(dataset_type)
            n_puts = 2 * args.repeat + 2
            butler.registry.insertDimensionData(
                "exposure",
                *[
                    {"instrument": "simulator", "id": i, "obs_id": f"bench{i}", "group_name": "bench"}
                    for i in range(n_puts)
                ],
            )

            def data_id(i: int) -> dict[str, object]:
                return {"instrument": "simulator", "exposure": i + 1, "detector": 1}

            # -- write ------------------------------------------------------------------------------
            def plain_write(i: int) -> None:
                plain_hdulist(image).writeto(root / f"plain_{i}.fits", overwrite=True)

            def butler_put(i: int) -> None:
                butler.put(image, "rawexp", data_id(i))

            base, measured = interleaved(plain_write, butler_put, args.repeat)
            rows.append(("put (write 3 planes)", base, measured, "astropy HDUList.writeto", 1.2))

            # -- read -------------------------------------------------------------------------------
            plain_path = root / "plain_0.fits"
            ref = butler.find_dataset("rawexp", data_id(0), collections=RUN)
            assert ref is not None
            stored = Path(butler.getURI(ref).ospath)
            # Same bytes on both sides, up to header card order: compare like with like.
            assert abs(stored.stat().st_size - plain_path.stat().st_size) <= 2 * 2880

            def butler_get(i: int) -> None:
                butler.get(ref)

            base, full = interleaved(lambda i: plain_read(stored), butler_get, args.repeat)
            rows.append(("get (read 3 planes)", base, full, "astropy fits.open + .data", 1.2))

            def get_variance(i: int) -> None:
                butler.get(ref.makeComponentRef("variance"))

            full_again, component = interleaved(butler_get, get_variance, args.repeat)
            rows.append(("get rawexp.variance", full_again, component, "full butler.get", 0.5))

            start = args.size // 2 - args.cutout // 2
            slices = (slice(start, start + args.cutout), slice(start, start + args.cutout))

            def get_cutout(i: int) -> None:
                butler.get(ref, parameters={"slices": slices})

            full_again, cutout = interleaved(butler_get, get_cutout, args.repeat)
            rows.append(
                (f"get slices {args.cutout}x{args.cutout}", full_again, cutout, "full butler.get", 0.1)
            )

            size_mib = stored.stat().st_size / 2**20
            plain_component = median_seconds(
                lambda i: fits.getdata(stored, "VARIANCE", memmap=False), args.repeat
            )

    print(
        f"SPHERExImage {args.size}x{args.size} (float32 image + variance, int32 flags, "
        f"{size_mib:.1f} MiB), median of {args.repeat}"
    )
    print(f"{'operation':<24} {'baseline':<26} {'base ms':>9} {'ms':>9} {'ratio':>7} {'target':>7}  result")
    failed = False
    for name, base, value, baseline_name, target in rows:
        ratio = value / base
        ok = ratio < target
        failed |= not ok
        print(
            f"{name:<24} {baseline_name:<26} {base * 1e3:9.1f} {value * 1e3:9.1f} {ratio:7.2f} "
            f"{'<' + str(target):>7}  {'ok' if ok else 'MISSED'}"
        )
    print(f"(plain astropy fits.getdata of VARIANCE alone: {plain_component * 1e3:.1f} ms)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
