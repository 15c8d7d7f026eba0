"""Framework overhead of ``pipetask run`` for ExamplePipeline against a plain astropy script.

    python benchmarks/bench_pipeline.py [--exposures 3] [--size 2040]

Simulates ``exposures`` x 6 raw/dark pairs and ingests them.  Each contender then processes the first
exposure (6 quanta), and, separately, all of them: (a) a plain astropy script doing the same reads,
subtraction and writes (one ``python`` process), (b) ``pipetask run -j 1``, (c) ``pipetask run -j 2``,
each as a whole command.  The per-quantum time is the difference of the two runs divided by the
difference in quanta, so that process start-up, imports and quantum-graph building (paid once per
command) cancel out.  Prints per-quantum times and the ratios.
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


def plain_astropy(files: Path, out: Path, exposures: str = "*") -> int:
    """Raw - dark with astropy only, written in the same layout; returns the number of images."""
    out.mkdir()
    n = 0
    for raw_path in sorted(files.glob(f"sim_exposure_{exposures}_array_?.fits")):
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
                    fits.ImageHDU(
                        variance.astype(np.float32), header=raw["VARIANCE"].header, name="VARIANCE"
                    ),
                ]
            )
            hdus.writeto(out / raw_path.name)
        n += 1
    return n


def plain_script(files: Path, out: Path, exposures: str) -> float:
    """Run `plain_astropy` as its own ``python`` process (imports included, as for pipetask)."""
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); from bench_pipeline import plain_astropy; "
        "from pathlib import Path; plain_astropy(Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4])"
    )
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", code, str(Path(__file__).parent), str(files), str(out), exposures], check=True
    )
    return time.perf_counter() - start


def pipetask_run(repo: str, output: str, jobs: int, where: str = "") -> float:
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")
    start = time.perf_counter()
    subprocess.run(
        [
            str(BIN / "pipetask"),
            "run",
            "-j",
            str(jobs),
            "-p",
            PIPELINE,
            "-b",
            repo,
            "-i",
            "rawexpr,darkr",
            "-o",
            output,
            "--register-dataset-types",
            "-d",
            where,
        ],
        check=True,
        capture_output=True,
        env=env,
    )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--exposures", type=int, default=3)
    parser.add_argument("--size", type=int, default=2040)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        simulate(work / "sim", exposures=args.exposures, size=args.size, seed=3, workers=2)
        repo = str(work / "DATA")
        createRepo(
            repo,
            seed_config="resource://spherex/configs/butler.yaml",
            dimension_config="resource://spherex/configs/dimensions.yaml",
            override=True,
        )
        ingest_simulated(repo, [str(work / "sim")], transfer="symlink")
        ingest_simulated(
            repo, [str(work / "sim")], regex="dark_current.fits", ingest_type="dark", transfer="symlink"
        )

        sim = work / "sim"
        plain_one = plain_script(sim, work / "plain_one", "000000")
        plain_all = plain_script(sim, work / "plain_all", "*")
        n = 6 * args.exposures
        times = {"plain astropy script": (plain_one, plain_all)}
        for jobs in (1, 2):
            one = pipetask_run(repo, f"bench_j{jobs}_one", jobs, "exposure = 0")
            every = pipetask_run(repo, f"bench_j{jobs}_all", jobs)
            times[f"pipetask run -j {jobs}"] = (one, every)
        with Butler.from_config(repo) as butler:
            assert len(butler.query_datasets("postDark", collections="bench_j2_all")) == n

    extra = n - 6
    per_quantum = {name: (every - one) / extra for name, (one, every) in times.items()}
    print(
        f"{args.exposures} exposures x 6 quanta of {args.size}x{args.size} images; per quantum = "
        f"(time for all {n} - time for the first 6) / {extra}"
    )
    print(f"{'':24} {'6 quanta':>9} {f'{n} quanta':>10} {'per quantum':>12}")
    for name, (one, every) in times.items():
        print(f"{name:24} {one:8.2f}s {every:9.2f}s {per_quantum[name]:11.3f}s")
    j1, j2, plain = (
        per_quantum["pipetask run -j 1"],
        per_quantum["pipetask run -j 2"],
        per_quantum["plain astropy script"],
    )
    print(f"ratio pipetask -j 1 / plain per quantum: {j1 / plain:.2f} (target <= 1.5)")
    print(f"speed-up -j 2 over -j 1 per quantum:     {j1 / j2:.2f} (target >= 1.6)")


if __name__ == "__main__":
    main()
