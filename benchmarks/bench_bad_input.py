"""Cost of refusing bad input, and of the structure check ingest now makes on every file.

    python benchmarks/bench_bad_input.py [--count 1000] [--size 2040]

(a) Writes a corpus of ``count`` bad files (``tests/bad_fits_corpus.py``) and times, per file,
``check_raw_file`` + header reading (what ingest does before anything is written) and the formatter's
reader; prints the mean and the slowest file, and the peak memory (tracemalloc) of the files whose
headers claim 10^12 pixels.
(b) On a good ``size`` x ``size`` raw, times ``ObservationMetadata.from_file`` (the header read ingest
did before) and ``check_raw_file`` (the added structure check) and prints their ratio.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
from astropy.nddata import VarianceUncertainty
from astropy.utils.exceptions import AstropyWarning
from erfa import ErfaWarning

from spherex.core import SPHERExImage, SPHERExImageError
from spherex.instrument import FileMetadataError, ObservationMetadata, check_raw_file
from spherex.simulator import simulate

sys.path.insert(0, str(Path(__file__).parents[1]))
from tests.bad_fits_corpus import write_corpus  # noqa: E402


def seconds(work, repeat: int = 1) -> float:
    start = time.perf_counter()
    for _ in range(repeat):
        work()
    return (time.perf_counter() - start) / repeat


def refuse(path: Path) -> None:
    try:
        check_raw_file(path)
        ObservationMetadata.from_file(path)
    except FileMetadataError:
        pass


def read(path: Path) -> None:
    try:
        SPHERExImage.from_fits(path)
    except SPHERExImageError:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--size", type=int, default=2040)
    args = parser.parse_args()
    warnings.simplefilter("ignore", AstropyWarning)
    warnings.simplefilter("ignore", ErfaWarning)

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        simulate(work / "small", exposures=1, size=48, seed=1)
        template = work / "small" / "sim_exposure_000000_array_1.fits"
        corpus = write_corpus(work / "corpus", template, count=args.count, seed=1)

        ingest_times = [seconds(lambda p=bad.path: refuse(p)) for bad in corpus]
        read_times = [seconds(lambda p=bad.path: read(p)) for bad in corpus]
        huge = [bad.path for bad in corpus if bad.kind == "huge_naxis"]
        tracemalloc.start()
        for path in huge:
            refuse(path)
            read(path)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        print(f"(a) {len(corpus)} bad files, {len({b.kind for b in corpus})} kinds")
        print(
            f"    ingest checks: mean {statistics.mean(ingest_times) * 1e3:.2f} ms, "
            f"slowest {max(ingest_times) * 1e3:.1f} ms per file"
        )
        print(
            f"    reader:        mean {statistics.mean(read_times) * 1e3:.2f} ms, "
            f"slowest {max(read_times) * 1e3:.1f} ms per file"
        )
        print(f"    {len(huge)} headers claiming 10^12 pixels: peak traced memory {peak / 2**20:.2f} MiB")

        image = SPHERExImage.from_fits(template)
        rng = np.random.default_rng(1)
        big = SPHERExImage(
            rng.normal(size=(args.size, args.size)).astype(np.float32),
            uncertainty=VarianceUncertainty(np.ones((args.size, args.size), np.float32)),
            flags=np.zeros((args.size, args.size), np.int32),
            wcs=image.wcs,
            meta=image.meta,
            unit=image.unit,
        )
        good = work / "sim_exposure_000000_array_1.fits"
        big.write(good)
        headers = seconds(lambda: ObservationMetadata.from_file(good), repeat=20)
        check = seconds(lambda: check_raw_file(good), repeat=20)
        print(
            f"(b) good {args.size}x{args.size} raw: header read {headers * 1e3:.2f} ms,",
            f"structure check {check * 1e3:.2f} ms",
        )
        print(f"    ratio check / header read: {check / headers:.2f}")


if __name__ == "__main__":
    main()
