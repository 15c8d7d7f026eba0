"""Framework overhead of ``pipetask run`` for ExamplePipeline against a plain astropy script.

    python benchmarks/bench_pipeline.py [--exposures 2] [--size 2040]

Simulates ``exposures`` x 6 raw/dark pairs, ingests them, then times (a) a plain astropy script doing the
same reads, subtraction and writes, (b) ``pipetask run -j 1``, (c) ``pipetask run -j 2``, each as a whole
command (process start, quantum-graph build and all).  Prints per-quantum wall times and the ratios.
Targets: pipetask -j 1 <= 1.5x the plain script; -j 2 at least 1.6x faster than -j 1.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from astropy.io import fits
from lsst.daf.butler import Butler
from lsst.daf.butler.script import createRepo

from spherex.script import ingest_simulated
from spherex.simulator import simulate

PIPELINE = str(Path(__file__).parents[1] / "pipelines" / "ExamplePipeline.yaml")
BIN = Path(sys.executable).parent


def plain_astropy(files: Path, out: Path) -> int:
    """Raw - dark with astropy only, written in the same layout; returns the number of images."""
    out.mkdir()
    n = 0
    for raw_path in sorted(files.glob("sim_exposure_*_array_?.fits")):
        dark_path = raw_path.with_name(raw_path.stem + "_dark_current.fits")
        with fits.open(raw_path) as raw, fits.open(dark_path) as dark:
            image = raw["IMAGE"].data - dark["IMAGE"].data
            variance = raw["VARIANCE"].data + dark["VARIANCE"].data
            flags = raw["FLAGS"].data | dark["FLAGS"].data
            hdus = fits.HDUList(
                [
                    fits.PrimaryHDU(header=raw[0].header),
                    fits.ImageHDU(image.astype(np.float32), header=raw["IMAGE"].header, name="IMAGE"),
                    fits.ImageHDU(flags, header=raw["FLAGS"].header, name="FLAGS"),
                    fits.ImageHDU(variance.astype(np.float32), header=raw["VARIANCE"].header, name="VARIANCE"),
                ]
            )
            hdus.writeto(out / raw_path.name)
        n += 1
    return n


def pipetask_run(repo: str, output: str, jobs: int) -> float:
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")
    start = time.perf_counter()
    subprocess.run(
        [str(BIN / "pipetask"), "run", "-j", str(jobs), "-p", PIPELINE, "-b", repo, "-i", "rawexpr,darkr",
         "-o", output, "--register-dataset-types"],
        check=True, capture_output=True, env=env,
    )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exposures", type=int, default=2)
    parser.add_argument("--size", type=int, default=2040)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        simulate(work / "sim", exposures=args.exposures, size=args.size, seed=3, workers=2)
        repo = str(work / "DATA")
        createRepo(repo, seed_config="resource://spherex/configs/butler.yaml",
                   dimension_config="resource://spherex/configs/dimensions.yaml", override=True)
        ingest_simulated(repo, [str(work / "sim")], transfer="symlink")
        ingest_simulated(repo, [str(work / "sim")], regex="dark_current.fits", ingest_type="dark",
                         transfer="symlink")

        start = time.perf_counter()
        n = plain_astropy(work / "sim", work / "plain")
        plain = time.perf_counter() - start
        j1 = pipetask_run(repo, "bench_j1", 1)
        j2 = pipetask_run(repo, "bench_j2", 2)
        with Butler.from_config(repo) as butler:
            assert len(butler.query_datasets("postDark", collections="bench_j2")) == n

    print(f"{n} quanta of {args.size}x{args.size} images")
    print(f"plain astropy script     {plain:7.2f} s  {plain / n:6.2f} s/quantum")
    print(f"pipetask run -j 1        {j1:7.2f} s  {j1 / n:6.2f} s/quantum")
    print(f"pipetask run -j 2        {j2:7.2f} s  {j2 / n:6.2f} s/quantum")
    print(f"ratio pipetask -j 1 / plain: {j1 / plain:.2f} (target <= 1.5)")
    print(f"speed-up -j 2 over -j 1:     {j1 / j2:.2f} (target >= 1.6)")


if __name__ == "__main__":
    main()
